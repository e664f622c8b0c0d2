"""The vulnerability-database layer: versions, matching rules, hostile databases, trust."""

from __future__ import annotations

import http.server
import json
import os
import pwd
import shutil
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gobuild
import osqueryd
import pytest
from go_processes import vulndb
from go_processes.buildinfo import Module
from go_processes.vulndb import Database, ModuleVersion, Program, Store, match
from go_processes.vulndb import _db as bounds
from skips import NEEDS_ROOT, skip
from vulndb_util import (
    SNAPSHOT_ENTRIES,
    SNAPSHOT_MODIFIED,
    fix_modes,
    layout_members,
    osv,
    raw_zip,
    snapshot_db,
    write_db,
    zip_db,
)

__all__ = ["snapshot_db"]  # the fixture, imported for pytest


# --- versions -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("go", "semver"), [
    ("go1.22rc1", "1.22.0-rc.1"),
    ("go1.20beta1", "1.20.0-beta.1"),
    ("go1.21", "1.21.0"),
    ("go1.21.4", "1.21.4"),
    ("go1.21.4 X:arenas", "1.21.4"),
    ("go1.9.7", "1.9.7"),
    ("devel go1.23-a1b2c3 Tue Jan 1 00:00:00 2026 +0000", ""),
    ("", ""),
])
def test_go_release_names_map_to_semver(go, semver):
    assert vulndb.go_semver(go) == semver


def test_semver_precedence_follows_the_spec():
    # semver.org section 11's own example, then the database's "1.14.0-0" floor and a pseudo-version.
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.14.0-0", "1.14.0",
               "1.14.1-0.20210101000000-abcdefabcdef", "1.14.1", "2.0.0"]
    keys = [vulndb.key(v) for v in ordered]
    assert None not in keys
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert vulndb.key("v1.2.3") == vulndb.key("1.2.3") == vulndb.key("1.2.3+build.5")
    for bad in ("1.2", "01.2.3", "1.2.3-", "latest", "(devel)", ""):
        assert vulndb.key(bad) is None, bad


# --- matching on hand-made databases --------------------------------------------------------------

MOD = "example.com/lib"


def _db(tmp_path: Path, *entries, **kw) -> Database:
    return Database(str(write_db(tmp_path / "db", list(entries), **kw)))


def _ids(findings):
    return sorted(f.entry.id for f in findings)


def _prog(version: str, module: str = MOD, **kw) -> Program:
    return Program(go_version=kw.pop("go_version", ""), modules=(ModuleVersion(module, version),), **kw)


def test_ranges_with_several_introduced_and_fixed_events(tmp_path):
    db = _db(tmp_path, osv("GO-2026-0001", MOD, [{"introduced": "0"}, {"fixed": "1.2.0"},
                                                   {"introduced": "1.3.0"}, {"fixed": "1.3.5"}]))
    expect = {"v1.0.0": "v1.2.0", "v1.1.9": "v1.2.0", "v1.2.0": None, "v1.2.9": None,
              "v1.3.0": "v1.3.5", "v1.3.4": "v1.3.5", "v1.3.5": None, "v1.4.0": None,
              "v1.3.0-rc.1": None, "v1.2.0-rc.1": "v1.2.0", "v0.0.0-20200101000000-abcdefabcdef": "v1.2.0"}
    for version, fixed in expect.items():
        found = match(db, _prog(version))
        assert [f.fixed_version for f in found] == ([fixed] if fixed else []), version
        if found:
            assert (found[0].module, found[0].version, found[0].level) == (MOD, version, "module")


def test_entry_without_fix_affects_every_later_version(tmp_path):
    db = _db(tmp_path, osv("GO-2026-0002", MOD, [{"introduced": "1.5.0"}]))
    assert [f.fixed_version for f in match(db, _prog("v9.0.0"))] == [""]
    assert match(db, _prog("v1.4.9")) == []


def test_stdlib_prereleases_and_experiments(tmp_path):
    db = _db(tmp_path,
             osv("GO-2026-0010", "stdlib", [{"introduced": "1.22.0-0"}, {"fixed": "1.22.3"}]),
             osv("GO-2026-0011", "stdlib", [{"introduced": "0"}, {"fixed": "1.22.0-rc.2"}]))
    cases = {"go1.21.9": ["GO-2026-0011"], "go1.22rc1": ["GO-2026-0010", "GO-2026-0011"],
             "go1.22rc2": ["GO-2026-0010"], "go1.22.2 X:arenas": ["GO-2026-0010"], "go1.22.3": [],
             "devel go1.23-abc": []}
    for go, ids in cases.items():
        found = match(db, Program(go_version=go))
        assert _ids(found) == ids, go
    fixed = {f.entry.id: f.fixed_version for f in match(db, Program(go_version="go1.22rc1"))}
    assert fixed == {"GO-2026-0010": "go1.22.3", "GO-2026-0011": "go1.22rc2"}
    assert {f.version for f in match(db, Program(go_version="go1.22.2 X:arenas"))} == {"go1.22.2"}


def test_incompatible_versions(tmp_path):
    mod = "github.com/goharbor/harbor"
    db = _db(tmp_path, osv("GO-2026-0020", mod, [{"introduced": "0"}, {"fixed": "2.8.6+incompatible"}]))
    assert [f.fixed_version for f in match(db, _prog("v2.8.5+incompatible", mod))] == ["v2.8.6+incompatible"]
    assert match(db, _prog("v2.8.6+incompatible", mod)) == []


def test_withdrawn_entries_are_reported_as_withdrawn(tmp_path):
    db = _db(tmp_path, osv("GO-2026-0030", MOD, [{"introduced": "0"}], withdrawn="2026-02-01T00:00:00Z"))
    (f,) = match(db, _prog("v1.0.0"))
    assert f.entry.withdrawn == "2026-02-01T00:00:00Z"


def test_goos_goarch_filters(tmp_path):
    db = _db(tmp_path, osv("GO-2026-0040", MOD, [{"introduced": "0"}],
                           [{"path": MOD + "/win", "goos": ["windows"], "goarch": ["amd64", "386"]}]))
    assert match(db, _prog("v1.0.0", goos="linux", goarch="amd64")) == []
    assert match(db, _prog("v1.0.0", goos="windows", goarch="arm64")) == []
    assert _ids(match(db, _prog("v1.0.0", goos="windows", goarch="386"))) == ["GO-2026-0040"]
    # Platform unknown (no build settings): not ruled out, except by the file format.
    assert _ids(match(db, _prog("v1.0.0"))) == ["GO-2026-0040"]
    assert _ids(match(db, _prog("v1.0.0", format="pe"))) == ["GO-2026-0040"]
    assert match(db, _prog("v1.0.0", format="elf")) == []
    assert match(db, _prog("v1.0.0", format="macho")) == []


def test_replaced_modules_match_under_the_replacement(tmp_path):
    db = _db(tmp_path,
             osv("GO-2026-0050", "example.com/orig", [{"introduced": "0"}]),
             osv("GO-2026-0051", "example.com/fork", [{"introduced": "0"}, {"fixed": "2.0.1"}]))
    replaced = Module("example.com/orig", "v1.0.0", replace=Module("example.com/fork", "v2.0.0"))
    mods = vulndb.modules_of(None, [replaced])
    assert mods == (ModuleVersion("example.com/fork", "v2.0.0"),)
    assert _ids(match(db, Program(modules=mods))) == ["GO-2026-0051"]
    # A directory replacement has no version: nothing is invented for it.
    local = Module("example.com/orig", "v1.0.0", replace=Module("../orig"))
    assert vulndb.modules_of(Module("example.com/main", "(devel)"), [local]) == ()


def test_toolchain_advisories_are_not_about_programs(tmp_path):
    db = _db(tmp_path, osv("GO-2026-0060", "toolchain", [{"introduced": "0"}, {"fixed": "1.30.0"}]))
    assert match(db, Program(go_version="go1.19.13", modules=(ModuleVersion("toolchain", "v1.0.0"),))) == []


def test_levels_from_the_function_list(tmp_path):
    db = _db(tmp_path,
             osv("GO-2026-0070", "stdlib", [{"introduced": "0"}],
                 [{"path": "net/http", "symbols": ["Server.Serve", "ListenAndServe"]}]),
             osv("GO-2026-0071", "stdlib", [{"introduced": "0"}], [{"path": "net/mail"}]))

    def levels(symbols):
        found = match(db, Program(go_version="go1.19.1", symbols=symbols))
        return {f.entry.id: (f.level, f.packages, f.symbols) for f in found}

    both = {"net/http": frozenset({"Server.Serve", "Get"}), "net/mail": frozenset({"ParseAddress"})}
    assert levels(both) == {
        "GO-2026-0070": ("symbol", ("net/http",), ("net/http.Server.Serve",)),
        "GO-2026-0071": ("symbol", ("net/mail",), ("net/mail.*",)),
    }
    assert levels({"net/http": frozenset({"Get"})}) == {
        "GO-2026-0070": ("package", ("net/http",), ()), "GO-2026-0071": ("module", (), ())}
    assert levels({"fmt": frozenset({"Println"})}) == {
        "GO-2026-0070": ("module", (), ()), "GO-2026-0071": ("module", (), ())}
    assert levels(None) == {"GO-2026-0070": ("module", (), ()), "GO-2026-0071": ("module", (), ())}


@pytest.mark.parametrize(("name", "split"), [
    ("net/http.(*Server).Serve", ("net/http", "Server.Serve")),
    ("net/http.(*Server).Serve.func1", ("net/http", "Server.Serve")),
    ("net/http.(*conn).serve.func1.1", ("net/http", "conn.serve")),
    ("net/http.ListenAndServe", ("net/http", "ListenAndServe")),
    ("net/http.Header.Get", ("net/http", "Header.Get")),
    ("gopkg.in/yaml%2ev2.Unmarshal", ("gopkg.in/yaml.v2", "Unmarshal")),
    ("example.com/g.Map[...]", ("example.com/g", "Map")),
    ("example.com/g.(*List[...]).Push", ("example.com/g", "List.Push")),
    ("runtime.main", ("runtime", "main")),
    ("type:.eq.[2]interface {}", None),
    ("go:buildid", None),
    # Go 1.19 and older spell the linker's symbols with a dot: no package "type" or "go".
    ("type..eq.[2]interface {}", None),
    ("go.shape.int", None),
    # A type argument's path holds slashes and dots: the package ends before the first bracket,
    # however deep the brackets nest.
    ("example.com/g.Map[example.com/k.K,example.com/v.V]", ("example.com/g", "Map")),
    ("example.com/g.F" + "[a/b.T" * 12 + "]" * 12, ("example.com/g", "F")),
])
def test_function_names_as_osv_writes_symbols(name, split):
    assert vulndb.split_function(name) == split


def test_main_package_functions_count_under_the_main_package_path():
    syms = vulndb.package_symbols(["main.main", "main.handler", "fmt.Println"], "example.com/cmd/tool")
    assert syms == {"example.com/cmd/tool": frozenset({"main", "handler"}), "fmt": frozenset({"Println"})}


# --- the database as input --------------------------------------------------------------------------

def test_malformed_and_huge_entries_fail_alone(tmp_path):
    good = osv("GO-2026-0100", "example.com/bad", [{"introduced": "0"}])
    bad_event = osv("GO-2026-0105", "example.com/bad", [{"introduced": "not-a-version"}])
    db = _db(tmp_path, good, bad_event, raw={
        "GO-2026-0101": b"{not json",
        "GO-2026-0102": json.dumps(osv("GO-2026-9999", "example.com/bad", [])).encode(),  # wrong id
        "GO-2026-0103": b'{"id": "GO-2026-0103", "modified": "x", "affected": "all"}',
        "GO-2026-0104": b" " * (2 << 20),
    })
    assert _ids(match(db, _prog("v1.0.0", "example.com/bad"))) == ["GO-2026-0100"]
    assert sorted(db.errors) == ["GO-2026-0101", "GO-2026-0102", "GO-2026-0103", "GO-2026-0104",
                                 "GO-2026-0105"]
    assert "not valid JSON" in db.errors["GO-2026-0101"]
    assert "GO-2026-9999" in db.errors["GO-2026-0102"]
    assert "not a list" in db.errors["GO-2026-0103"]
    assert "bound" in db.errors["GO-2026-0104"]
    assert "not-a-version" in db.errors["GO-2026-0105"]


def test_missing_index_or_bad_modified_is_a_clear_error(tmp_path):
    root = write_db(tmp_path / "db", [osv("GO-2026-0110", MOD, [{"introduced": "0"}])])
    (root / "index" / "db.json").write_text('{"modified": "yesterday"}')
    with pytest.raises(vulndb.Malformed, match="modified"):
        Database(str(root))
    (root / "index" / "db.json").unlink()
    with pytest.raises(vulndb.Malformed, match=r"db\.json is missing"):
        Database(str(root))
    with pytest.raises(vulndb.NotInstalled):
        Database(str(tmp_path / "nowhere"))


def test_zip_reads_the_layout_and_never_uses_member_names_as_paths(tmp_path):
    src = write_db(tmp_path / "src", [osv("GO-2026-0120", MOD, [{"introduced": "0"}, {"fixed": "1.1.0"}])])
    evil = tmp_path / "evil"
    bad = json.dumps(osv("GO-2026-0120", MOD, [{"introduced": "0"}, {"fixed": "9.9.9"}])).encode()
    z = zip_db(src, tmp_path / "vulndb.zip", prefix="vulndb/", extra={
        f"../../{evil.relative_to('/')}/ID/GO-2026-0120.json": bad,
        f"{evil}/ID/GO-2026-0120.json": bad,
        "a/b/ID/GO-2026-0120.json": bad,
    })
    from_zip = match(Database(str(z)), _prog("v1.0.0"))
    from_dir = match(Database(str(src)), _prog("v1.0.0"))
    assert [f.fixed_version for f in from_zip] == [f.fixed_version for f in from_dir] == ["v1.1.0"]
    assert not evil.exists()
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not a zip")
    os.chmod(tmp_path / "junk.zip", 0o644)
    with pytest.raises(vulndb.Malformed, match="zip"):
        Database(str(tmp_path / "junk.zip"))


def test_links_fifos_and_bombs_in_the_database_fail_alone(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(osv("GO-2026-0601", "example.com/bad", [{"introduced": "0"}])))
    good = osv("GO-2026-0600", "example.com/bad", [{"introduced": "0"}])
    root = write_db(tmp_path / "db", [good], raw={"GO-2026-0601": b"", "GO-2026-0602": b""})
    (root / "ID" / "GO-2026-0601.json").unlink()
    (root / "ID" / "GO-2026-0601.json").symlink_to(secret)  # a link is never followed
    (root / "ID" / "GO-2026-0602.json").unlink()
    os.mkfifo(root / "ID" / "GO-2026-0602.json")  # a FIFO never blocks a query
    db = Database(str(root))
    assert _ids(match(db, _prog("v1.0.0", "example.com/bad"))) == ["GO-2026-0600"]
    assert "Too many levels of symbolic links" in db.errors["GO-2026-0601"]
    assert "not a regular file" in db.errors["GO-2026-0602"]
    # A zip member that inflates past the bound is an error for that entry only.
    z = zip_db(write_db(tmp_path / "zsrc", [good]), tmp_path / "bomb.zip",
               extra={"ID/GO-2026-0603.json": b"[" + b" " * (4 << 20) + b"]"})
    zdb = Database(str(z))
    assert zdb.entry("GO-2026-0603") is None and "bound" in zdb.errors["GO-2026-0603"]
    assert zdb.entry("GO-2026-0600") is not None


def test_the_real_snapshot_loads_whole(snapshot_db):
    db = Database(str(snapshot_db))
    assert db.modified == SNAPSHOT_MODIFIED
    assert len(db) == SNAPSHOT_ENTRIES == len(list((snapshot_db / "ID").glob("GO-*.json")))
    assert db.load_all() == 0, dict(list(db.errors.items())[:5])
    # The index and the entries agree on stdlib (counted from the files themselves).
    stdlib = {p.stem for p in (snapshot_db / "ID").glob("*.json")
              if any(a["package"]["name"] == "stdlib" for a in json.loads(p.read_text())["affected"])}
    assert {e.id for e in db.for_module("stdlib")} == stdlib


# --- trust ----------------------------------------------------------------------------------------

def _nobody() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no user 'nobody' on this host")


@pytest.fixture
def store(monkeypatch) -> Iterator[Store]:
    monkeypatch.delenv(vulndb.ENV_LOCATION, raising=False)
    monkeypatch.setenv(vulndb.ENV_CONFIG, "/nonexistent/go-processes.conf")
    yield Store()
    vulndb.set_location(None)


def test_a_database_others_can_write_is_refused_until_fixed(tmp_path, store):
    if os.geteuid() != 0:
        skip(NEEDS_ROOT, "to give files to another user")
    root = write_db(tmp_path / "db", [osv("GO-2026-0130", MOD, [{"introduced": "0"}])])
    vulndb.set_location(str(root))
    assert store.get().database is not None

    os.chown(root, _nobody(), -1)
    status = store.get()
    assert status.database is None
    assert status.error.startswith("refused:") and f"owned by uid {_nobody()}" in status.error
    os.chown(root, 0, -1)
    os.chmod(root, 0o757)
    status = store.get()
    assert status.database is None and "writable by group or others" in status.error
    os.chmod(root, 0o755)
    os.chmod(root / "ID", 0o775)
    status = store.get()
    assert status.database is None and "ID" in status.error
    os.chmod(root / "ID", 0o755)
    status = store.get()
    assert status.database is not None and status.error == ""

    # One entry file writable by others: that entry is refused, the others load.
    os.chmod(root / "ID" / "GO-2026-0130.json", 0o666)
    db = store.get().database
    assert db is not None and match(db, _prog("v1.0.0")) == []
    assert "writable by group or others" in db.errors["GO-2026-0130"]


def test_a_directory_above_the_database_is_checked_too(tmp_path, store):
    parent = tmp_path / "parent"
    root = write_db(parent / "db", [osv("GO-2026-0140", MOD, [{"introduced": "0"}])])
    vulndb.set_location(str(root))
    os.chmod(parent, 0o777)
    assert f"{parent} is writable" in store.get().error
    os.chmod(parent, 0o1777)  # sticky and ours above it: nobody else can rename our directory
    assert store.get().database is not None
    os.chmod(parent, 0o755)
    link = tmp_path / "link"
    link.symlink_to(root)
    vulndb.set_location(str(link))
    assert store.get().database is not None


def test_location_from_environment_and_config_file(tmp_path, store, monkeypatch):
    root = write_db(tmp_path / "db", [osv("GO-2026-0150", MOD, [{"introduced": "0"}])])
    conf = tmp_path / "go-processes.conf"
    conf.write_text(f"# where the database is\nvulndb = {root}\n")
    os.chmod(conf, 0o644)
    monkeypatch.setenv(vulndb.ENV_CONFIG, str(conf))
    assert vulndb.location() == (str(root), str(conf))
    assert store.get().database is not None
    os.chmod(conf, 0o666)
    status = store.get()
    assert status.database is None and "config file refused" in status.error
    monkeypatch.setenv(vulndb.ENV_LOCATION, str(tmp_path / "elsewhere"))
    assert vulndb.location() == (str(tmp_path / "elsewhere"), vulndb.ENV_LOCATION)
    assert "no vulnerability database" in store.get().error
    vulndb.set_location(str(root))
    assert vulndb.location() == (str(root), "flag")


def test_reloads_when_the_files_change(tmp_path, store):
    root = write_db(tmp_path / "db", [osv("GO-2026-0160", MOD, [{"introduced": "0"}])])
    vulndb.set_location(str(root))
    first = store.get().database
    assert first is not None and store.get().database is first
    write_db(root, [osv("GO-2026-0160", MOD, [{"introduced": "0"}]),
                    osv("GO-2026-0161", MOD, [{"introduced": "0"}])], modified="2026-03-01T00:00:00Z")
    second = store.get().database
    assert second is not first and second is not None
    assert second.modified == "2026-03-01T00:00:00Z"
    assert _ids(match(second, _prog("v1.0.0"))) == ["GO-2026-0160", "GO-2026-0161"]


# --- update ---------------------------------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (needed to make a test CA)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


SERVED: dict[str, bytes] = {}  # more paths the test server answers, added by tests
TRICKLE = 0.25  # seconds between the parts of a RAW answer
_OK = b"HTTP/1.1 200 OK\r\n"
RAW: dict[str, list[bytes]] = {
    "/bad-status": [b"HTTX/1.1 ??? nonsense\r\n\r\n"],
    "/many-headers": [_OK + b"X-A: b\r\n" * 101 + b"\r\n"],
    "/chunked-truncated": [_OK + b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + b"x" * 10],
    # one byte at a time, for a minute: only a total deadline ends these
    "/trickle-body": [_OK + b"Content-Length: 1000\r\n\r\n", *[b"x"] * 240],
    "/trickle-headers": [_OK, *[b"X-Slow: 1\r\n"[i:i + 1] for i in range(11)] * 20],
}


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 with a certificate from a CA made here, serving databases."""
    d = tmp_path_factory.mktemp("https")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
             "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "srv.key",
             "-out", "srv.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", "srv.pem", "-extfile", "ext.cnf", cwd=d)

    def db_zip(name, modified, ids):
        src = write_db(d / name, [osv(i, MOD, [{"introduced": "0"}, {"fixed": "1.1.0"}]) for i in ids],
                       modified=modified)
        return zip_db(src, d / f"{name}.zip").read_bytes()

    good = db_zip("good", "2026-02-01T00:00:00Z", ["GO-2026-0201", "GO-2026-0202"])
    files = {
        "/good.zip": good,
        "/newer.zip": db_zip("newer", "2026-03-01T00:00:00Z",
                             ["GO-2026-0201", "GO-2026-0202", "GO-2026-0203"]),
        "/older.zip": db_zip("older", "2025-01-01T00:00:00Z", ["GO-2026-0201"]),
        "/truncated.zip": good[: len(good) // 2],
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/to-http":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/good.zip")
                self.end_headers()
                return
            if self.path == "/short-body":  # announces more than it sends, then closes
                self.send_response(200)
                self.send_header("Content-Length", str(len(good)))
                self.end_headers()
                self.wfile.write(good[:100])
                return
            raw = RAW.get(self.path)
            if raw is not None:  # answers http.client must refuse, written as they are
                self.close_connection = True
                for i, part in enumerate(raw):
                    if i:
                        time.sleep(TRICKLE)
                    try:
                        self.wfile.write(part)
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up
                return
            body = files.get(self.path, SERVED.get(self.path))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}", str(d / "ca.pem")
    server.shutdown()


def _cli(*args: str, env: dict[str, str] | None = None, umask: int | None = None):
    full_env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "go_processes", *args], capture_output=True, text=True,
                          timeout=120, env=full_env,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def _installed(location: Path) -> tuple[str, str]:
    return os.readlink(location), (location / "index" / "db.json").read_text()


def test_update_over_https_installs_with_safe_modes_whatever_the_umask(https_server, tmp_path):
    url, ca = https_server
    location = tmp_path / "lib" / "vulndb"
    r = _cli("vulndb", "update", "--source", f"{url}/good.zip", "--cafile", ca, "--location", str(location),
             umask=0o000)
    assert r.returncode == 0, r.stderr
    assert "installed 2 entries modified 2026-02-01T00:00:00Z" in r.stdout
    assert location.is_symlink()
    for d, _dirs, files in os.walk(location.resolve()):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o755, d
        for f in files:
            st = os.stat(os.path.join(d, f))
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, os.geteuid()), f
    assert stat.S_IMODE(os.stat(location.parent).st_mode) == 0o755
    db = Database(str(location))
    assert (db.modified, db.ids()) == ("2026-02-01T00:00:00Z", ["GO-2026-0201", "GO-2026-0202"])
    # The CA can come from SSL_CERT_FILE too; then a newer copy replaces it by one rename.
    old_target = os.readlink(location)
    r = _cli("vulndb", "update", "--source", f"{url}/newer.zip", "--location", str(location),
             env={"SSL_CERT_FILE": ca}, umask=0o077)
    assert r.returncode == 0, r.stderr
    assert "(was 2026-02-01T00:00:00Z)" in r.stdout
    assert os.readlink(location) != old_target and not (location.parent / old_target).exists()
    assert Database(str(location)).modified == "2026-03-01T00:00:00Z"
    r = _cli("vulndb", "update", "--source", f"{url}/newer.zip", "--cafile", ca, "--location", str(location))
    assert r.returncode == 0 and "already up to date" in r.stdout


@pytest.mark.parametrize(("path", "cafile", "message"), [
    ("/truncated.zip", True, "not a valid database zip"),
    ("/short-body", True, "cannot download"),
    ("/older.zip", True, "older than the installed one"),
    ("/missing.zip", True, "cannot download"),
    ("/good.zip", False, "CERTIFICATE_VERIFY_FAILED"),
    ("/to-http", True, "not HTTPS"),
])
def test_a_failed_update_leaves_the_installed_copy(https_server, tmp_path, path, cafile, message):
    url, ca = https_server
    location = tmp_path / "vulndb"
    assert _cli("vulndb", "update", "--source", f"{url}/newer.zip", "--cafile", ca,
                "--location", str(location)).returncode == 0
    before = _installed(location)
    r = _cli("vulndb", "update", "--source", url + path, *(("--cafile", ca) if cafile else ()),
             "--location", str(location))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "failed, nothing changed" in r.stderr and message in r.stderr, r.stderr
    assert _installed(location) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["vulndb", before[0], ".vulndb.lock"])


def test_force_installs_an_older_copy(https_server, tmp_path):
    url, ca = https_server
    location = tmp_path / "vulndb"
    for source, extra in (("newer", ()), ("older", ("--force",))):
        r = _cli("vulndb", "update", "--source", f"{url}/{source}.zip", "--cafile", ca, *extra,
                 "--location", str(location))
        assert r.returncode == 0, r.stderr
    assert Database(str(location)).modified == "2025-01-01T00:00:00Z"


def test_plain_http_is_refused_and_local_sources_work(tmp_path):
    location = tmp_path / "vulndb"
    r = _cli("vulndb", "update", "--source", "http://127.0.0.1:9/vulndb.zip", "--location", str(location))
    assert r.returncode == 1 and "only https://" in r.stderr
    src = write_db(tmp_path / "src", [osv("GO-2026-0301", MOD, [{"introduced": "0"}])])
    z = zip_db(src, tmp_path / "air-gapped.zip", prefix="vulndb/")
    for source in (str(src), str(z)):
        r = _cli("vulndb", "update", "--force", "--source", source, "--location", str(location))
        assert r.returncode == 0, r.stderr
        assert Database(str(location)).ids() == ["GO-2026-0301"]
    # A source with an entry that does not parse is refused whole.
    (src / "ID" / "GO-2026-0302.json").write_text('{"id": "GO-2026-0302", "affected": 7}')
    r = _cli("vulndb", "update", "--force", "--source", str(src), "--location", str(location))
    assert r.returncode == 1 and "GO-2026-0302" in r.stderr


def test_the_shared_store_sees_an_update_at_once(tmp_path, store):
    location = tmp_path / "vulndb"
    vulndb.set_location(str(location))
    assert "no vulnerability database" in store.get().error
    src = write_db(tmp_path / "src", [osv("GO-2026-0401", MOD, [{"introduced": "0"}])])
    vulndb.update(str(location), str(src))
    assert store.get().database.ids() == ["GO-2026-0401"]
    write_db(src, [osv("GO-2026-0402", MOD, [{"introduced": "0"}])], modified="2026-05-01T00:00:00Z")
    vulndb.update(str(location), str(src))
    assert store.get().database.ids() == ["GO-2026-0401", "GO-2026-0402"]


def test_update_can_install_the_zip_itself(tmp_path):
    src = write_db(tmp_path / "src", [osv("GO-2026-0501", MOD, [{"introduced": "0"}])])
    location = tmp_path / "lib" / "vulndb.zip"
    done = vulndb.update(str(location), str(src))
    assert (done.changed, done.entries, done.previous) == (True, 1, "")
    assert stat.S_IMODE(location.stat().st_mode) == 0o644 and not location.is_symlink()
    assert Database(str(location)).ids() == ["GO-2026-0501"]
    assert sorted(p.name for p in location.parent.iterdir()) == [".vulndb.lock", "vulndb.zip"]


# --- hostile databases and sources (issue 22) -------------------------------------------------------

def _index_at_the_limit(root: Path) -> int:
    """index/modules.json at the format's bounds: as many items as entries allowed, all for one
    module path, each naming another ID (the worst case for de-duplicating per module)."""
    n = bounds.MAX_ENTRIES
    items = [{"path": MOD, "vulns": [{"id": f"GO-2026-{i:05d}"}]} for i in range(n)]
    (root / "index" / "modules.json").write_text(json.dumps(items, separators=(",", ":")))
    return n


def test_an_index_at_the_format_limits_opens_in_linear_time(tmp_path):
    root = write_db(tmp_path / "db", [osv("GO-2026-0001", MOD, [{"introduced": "0"}])])
    n = _index_at_the_limit(root)
    # A hang guard, not a timing goal (that is bench_vulndb.py's): linear is well under a second,
    # the quadratic de-duplication took minutes at 50,000 items and half an hour at 200,000.
    code = ("import sys; from go_processes.vulndb import Database; db = Database(sys.argv[1]); "
            "ids = db.index_ids(sys.argv[2]); print(len(ids), ids[0], ids[-1], len(set(ids)))")
    r = subprocess.run([sys.executable, "-c", code, str(root), MOD], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(n), "GO-2026-00000", f"GO-2026-{n - 1:05d}", str(n)]


# The peak RSS of this process image: VmHWM (getrusage's maxrss also counts the parent's before exec).
_MEASURED = ("import sys; from go_processes.main import main; rc = main(sys.argv[1:]); "
             "hwm = [x.split()[1] for x in open('/proc/self/status') if x.startswith('VmHWM:')][0]; "
             "print(f'maxrss_kb={hwm}', file=sys.stderr); sys.exit(rc)")


def _cli_measured(*args: str) -> tuple[int, str, float]:
    """The command's exit code, stderr and peak RSS in MB (VmHWM at exit)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    r = subprocess.run([sys.executable, "-c", _MEASURED, *args], capture_output=True, text=True, timeout=120,
                       env=env)
    assert "Traceback" not in r.stderr, r.stderr
    rss = [int(line.split("=")[1]) / 1024 for line in r.stderr.splitlines() if line.startswith("maxrss_kb=")]
    assert rss, r.stderr
    return r.returncode, r.stderr, rss[0]


def _snapshot_copy(snapshot_db: Path, dest: Path) -> Path:
    """A copy of the real database whose files are hard links (fast): replace a file, never write
    into one, or the shared snapshot changes too."""
    shutil.copytree(snapshot_db, dest, copy_function=os.link)
    return dest


def _snapshot_members(snapshot_db: Path) -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(snapshot_db)), p.read_bytes()) for p in sorted(snapshot_db.rglob("*.json"))]


def _entry_of_size(vid: str, size: int) -> bytes:
    """A valid entry padded with blanks (JSON allows them) to ``size`` bytes."""
    return json.dumps(osv(vid, MOD, [{"introduced": "0"}])).encode().ljust(size)


def _over_total() -> list[tuple[str, bytes]]:
    """Valid 1 MB entries, a few more than the total bound allows."""
    n = bounds.MAX_TOTAL // bounds.MAX_ENTRY + 8
    return [(f"GO-2099-{i:04d}", _entry_of_size(f"GO-2099-{i:04d}", bounds.MAX_ENTRY)) for i in range(n)]


@pytest.mark.parametrize("kind", ["zip", "https", "directory of sparse files"])
def test_an_update_over_the_total_bound_is_refused_before_anything_is_staged(https_server, snapshot_db,
                                                                            tmp_path, kind):
    # The real database, and 136 more valid entries of 1 MB each.
    url, ca = https_server
    if kind == "directory of sparse files":
        source = _snapshot_copy(snapshot_db, tmp_path / "src")
        for i in range(bounds.MAX_TOTAL // bounds.MAX_ENTRY + 8):
            with open(source / "ID" / f"GO-2099-{i:04d}.json", "wb") as f:
                f.truncate(bounds.MAX_ENTRY)  # 1 MB each, no disk
        args: tuple[str, ...] = ("--source", str(source))
    else:
        z = raw_zip(tmp_path / "big.zip", [*_snapshot_members(snapshot_db), *(
            (f"ID/{vid}.json", body) for vid, body in _over_total())])
        assert z.stat().st_size < 4 << 20  # a zip of 4 MB that unpacks to 142 MB
        if kind == "zip":
            args = ("--source", str(z))
        else:
            SERVED["/big.zip"] = z.read_bytes()
            args = ("--source", f"{url}/big.zip", "--cafile", ca)
    lib = tmp_path / "lib"
    lib.mkdir()
    rc, err, rss = _cli_measured("vulndb", "update", *args, "--location", str(lib / "vulndb"))
    assert rc == 1 and "failed, nothing changed" in err, err
    assert f"over the {bounds.MAX_TOTAL}-byte bound" in err, err
    assert sorted(p.name for p in lib.iterdir()) == [".vulndb.lock"]
    assert rss < 100, f"the refused update peaked at {rss:.0f} MB"


def test_an_update_with_more_entries_than_the_bound_is_refused(snapshot_db, tmp_path):
    # The installed copy (the real database) is a .zip: the update must not replace it with one
    # the loader refuses.
    location = tmp_path / "lib" / "vulndb.zip"
    vulndb.update(str(location), str(snapshot_db))
    before = location.read_bytes()
    body = b'{"id": "GO-2026-0001", "modified": "2026-01-01T00:00:00Z"}'
    ids = [f"GO-2027-{i:05d}" for i in range(bounds.MAX_ENTRIES + 17)]
    members = layout_members((vid, body.replace(b"GO-2026-0001", vid.encode())) for vid in ids)
    z = raw_zip(tmp_path / "many.zip", members, deflate=False)
    rc, err, rss = _cli_measured("vulndb", "update", "--force", "--source", str(z),
                                 "--location", str(location))
    assert rc == 1 and "failed, nothing changed" in err and f"bound of {bounds.MAX_ENTRIES + 16}" in err, err
    assert location.read_bytes() == before and len(Database(str(location))) == SNAPSHOT_ENTRIES
    assert sorted(p.name for p in location.parent.iterdir()) == [".vulndb.lock", "vulndb.zip"]
    assert rss < 100, f"the refused update peaked at {rss:.0f} MB"


def test_the_loader_and_the_updater_share_the_bounds(tmp_path, monkeypatch):
    # Directory sources and installed directories, at bounds made small for the test.
    monkeypatch.setattr(bounds, "MAX_ENTRIES", 3)
    monkeypatch.setattr(bounds, "MAX_TOTAL", 4096)
    entries = [osv(f"GO-2026-000{i}", MOD, [{"introduced": "0"}]) for i in range(1, 5)]
    many = write_db(tmp_path / "many", entries)
    with pytest.raises(vulndb.Malformed, match="4 entries, over the bound of 3"):
        Database(str(many))
    with pytest.raises(vulndb.UpdateError, match="over the bound of 3"):
        vulndb.update(str(tmp_path / "a" / "vulndb"), str(many))
    big = write_db(tmp_path / "big", entries[:2])
    (big / "ID" / "GO-2026-0001.json").write_bytes(_entry_of_size("GO-2026-0001", 4000))
    assert Database(str(big)).size() > 4096
    with pytest.raises(vulndb.UpdateError, match=r"unpacks to 4\d\d\d bytes, over the 4096-byte bound"):
        vulndb.update(str(tmp_path / "b" / "vulndb"), str(big))
    assert not (tmp_path / "b" / "vulndb").exists()


def test_a_local_source_others_can_write_is_refused(tmp_path):
    location = tmp_path / "lib" / "vulndb"
    src = write_db(tmp_path / "shared" / "src", [osv("GO-2026-0701", MOD, [{"introduced": "0"}])])
    z = zip_db(src, tmp_path / "shared" / "vulndb.zip")
    os.chmod(src, 0o777)
    os.chmod(z, 0o666)
    for source in (src, z):
        r = _cli("vulndb", "update", "--source", str(source), "--location", str(location))
        assert r.returncode == 1 and "refusing the source" in r.stderr, r.stderr
        assert "writable by group or others" in r.stderr
        assert not location.exists()
    os.chmod(src, 0o755)
    os.chmod(z, 0o644)
    os.chmod(src / "ID" / "GO-2026-0701.json", 0o646)  # one file of it
    r = _cli("vulndb", "update", "--source", str(src), "--location", str(location))
    assert r.returncode == 1 and "GO-2026-0701.json is writable by group or others" in r.stderr, r.stderr
    os.chmod(src / "ID" / "GO-2026-0701.json", 0o644)
    os.chmod(tmp_path / "shared", 0o777)  # a directory above: whoever may rename it swaps the source
    for source in (src, z):
        r = _cli("vulndb", "update", "--source", str(source), "--location", str(location))
        assert r.returncode == 1 and f"{tmp_path / 'shared'} is writable" in r.stderr, r.stderr
    os.chmod(tmp_path / "shared", 0o755)
    for source in (src, z):
        r = _cli("vulndb", "update", "--force", "--source", str(source), "--location", str(location))
        assert r.returncode == 0, r.stderr


def test_a_local_source_owned_by_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        skip(NEEDS_ROOT, "to give files to another user")
    location = tmp_path / "lib" / "vulndb"
    src = write_db(tmp_path / "src", [osv("GO-2026-0702", MOD, [{"introduced": "0"}])])
    z = zip_db(src, tmp_path / "vulndb.zip")
    for path in (src, z, src / "ID" / "GO-2026-0702.json"):
        os.chown(path, _nobody(), -1)
        source = z if path == z else src
        r = _cli("vulndb", "update", "--source", str(source), "--location", str(location))
        assert r.returncode == 1 and f"owned by uid {_nobody()}" in r.stderr, r.stderr
        assert not location.exists()
        os.chown(path, 0, -1)


@pytest.mark.parametrize(("source", "message"), [
    ("/bad-status", "BadStatusLine"),
    ("/many-headers", "got more than 100 headers"),
    ("/chunked-truncated", "IncompleteRead"),
    ("https://127.0.0.1:abc/vulndb.zip", "nonnumeric port"),
    ("https://[::1/vulndb.zip", "Invalid IPv6 URL"),
])
def test_a_broken_server_or_url_is_a_clear_refusal(https_server, tmp_path, source, message):
    url, ca = https_server
    if source.startswith("/"):
        source = url + source
    r = _cli("vulndb", "update", "--source", source, "--cafile", ca, "--location", str(tmp_path / "vulndb"))
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1 and "failed, nothing changed: cannot download" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vulndb.lock"]


def _bad_member_zips(tmp_path: Path) -> dict[str, Path]:
    """Zips of a good entry and GO-2026-0802 broken: encrypted, or deflate data inflate rejects."""
    index = [{"path": MOD, "vulns": [{"id": "GO-2026-0801"}, {"id": "GO-2026-0802"}]}]
    members = [("index/db.json", b'{"modified": "2026-09-01T00:00:00Z"}'),
               ("index/modules.json", json.dumps(index).encode()),
               *((f"ID/{v}.json", json.dumps(osv(v, MOD, [{"introduced": "0"}])).encode())
                 for v in ("GO-2026-0801", "GO-2026-0802"))]
    return {name: raw_zip(tmp_path / f"{name.replace(' ', '-')}.zip", members,
                          damage={"ID/GO-2026-0802.json": damage})
            for name, damage in (("encrypted", (1, None)), ("corrupt deflate", (0, b"\xff" * 64)))}


def test_a_bad_zip_member_is_a_clear_refusal_and_fails_only_its_entry(tmp_path, store):
    for name, z in _bad_member_zips(tmp_path).items():
        # As an update's source: refused whole, with a message.
        r = _cli("vulndb", "update", "--source", str(z), "--location", str(tmp_path / "lib" / "vulndb"))
        assert "Traceback" not in r.stderr, r.stderr
        assert r.returncode == 1 and "GO-2026-0802" in r.stderr, r.stderr
        # Placed at the location by hand: that entry is invalid, the other one still matches.
        vulndb.set_location(str(z))
        db = store.get().database
        assert db is not None, name
        assert _ids(match(db, _prog("v1.0.0"))) == ["GO-2026-0801"], name
        assert list(db.errors) == ["GO-2026-0802"], name
        assert ("encrypted" if name == "encrypted" else "Error -3") in db.errors["GO-2026-0802"]
    assert not (tmp_path / "lib" / "vulndb").exists()


@pytest.mark.parametrize("path", ["/trickle-headers", "/trickle-body"])
def test_a_stalled_download_ends_at_the_deadline_and_frees_the_lock(https_server, tmp_path, monkeypatch,
                                                                    path):
    url, ca = https_server
    monkeypatch.setattr(vulndb._update, "DEADLINE", 2.0, raising=False)
    location = tmp_path / "vulndb"
    errors: list[str] = []

    def stalled() -> None:
        try:
            vulndb.update(str(location), url + path, cafile=ca)
        except vulndb.UpdateError as e:
            errors.append(e.reason)

    t = threading.Thread(target=stalled, daemon=True)
    t.start()
    time.sleep(0.5)
    with pytest.raises(vulndb.UpdateError, match="another update is running"):
        vulndb.update(str(location), f"{url}/good.zip", cafile=ca)
    t.join(20)  # the server trickles for a minute
    assert not t.is_alive(), "the stalled update is still running"
    assert errors and "not done within 2 s" in errors[0], errors
    assert vulndb.update(str(location), f"{url}/good.zip", cafile=ca).changed


def test_a_symlink_at_the_location_is_replaced_never_followed_for_removal(snapshot_db, tmp_path):
    elsewhere = _snapshot_copy(snapshot_db, tmp_path / "elsewhere")  # a copy of the real database
    (elsewhere / "unrelated.txt").write_text("not the updater's")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "vulndb").symlink_to(elsewhere)
    src = write_db(tmp_path / "src", [osv("GO-2026-0902", MOD, [{"introduced": "0"}])])
    done = vulndb.update(str(lib / "vulndb"), str(src), force=True)
    assert done.changed and done.previous == SNAPSHOT_MODIFIED
    assert (elsewhere / "unrelated.txt").read_text() == "not the updater's"
    assert len(Database(str(elsewhere))) == SNAPSHOT_ENTRIES
    assert (lib / "vulndb").is_symlink() and Database(str(lib / "vulndb")).ids() == ["GO-2026-0902"]
    # The copies it made itself are still cleaned up.
    first = os.readlink(lib / "vulndb")
    write_db(src, [osv("GO-2026-0903", MOD, [{"introduced": "0"}])], modified="2026-02-01T00:00:00Z")
    vulndb.update(str(lib / "vulndb"), str(src), force=True)
    assert not (lib / first).exists() and os.readlink(lib / "vulndb") != first


def test_nothing_is_created_under_a_directory_we_do_not_trust(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(vulndb.UpdateError, match="is writable by group or others"):
        vulndb.update(str(shared / "new" / "vulndb"), str(tmp_path / "nonexistent"))
    assert list(shared.iterdir()) == []
    if os.geteuid() != 0:
        return
    # Another user's directory, with that user's symlink pointing somewhere else.
    alice = tmp_path / "alice"
    alice.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (alice / "link").symlink_to(elsewhere)
    os.lchown(alice / "link", _nobody(), -1)
    os.chown(alice, _nobody(), -1)
    with pytest.raises(vulndb.UpdateError, match=f"owned by uid {_nobody()}"):
        vulndb.update(str(alice / "link" / "sub" / "vulndb"), str(tmp_path / "nonexistent"))
    assert list(elsewhere.iterdir()) == []


def test_a_lone_surrogate_in_one_advisory_fails_neither_the_table_nor_the_cli(snapshot_db, tmp_path):
    exe = gobuild.build(gobuild.Build(program=gobuild.Program(), toolchain="old"))  # Go 1.19
    # The real database, and one more stdlib advisory with lone surrogates in its text.
    root = _snapshot_copy(snapshot_db, tmp_path / "db")
    bad = osv("GO-2099-1001", "stdlib", [{"introduced": "0"}], summary="lone \ud800 surrogate",
              aliases=["CVE-2099-\udfff"])
    (root / "ID" / "GO-2099-1001.json").write_text(json.dumps(bad))
    assert b"\\ud800" in (root / "ID" / "GO-2099-1001.json").read_bytes()  # as JSON escapes it
    index = json.loads((root / "index" / "modules.json").read_text())
    next(m for m in index if m["path"] == "stdlib")["vulns"].append({"id": "GO-2099-1001"})
    (root / "index" / "modules.json").unlink()  # a link to the shared snapshot's file
    (root / "index" / "modules.json").write_text(json.dumps(index))
    fix_modes(root)

    def rows(location: Path) -> dict[str, str]:
        env = {vulndb.ENV_LOCATION: str(location), vulndb.ENV_CONFIG: "/nonexistent/x.conf"}
        with osqueryd.OsqueryD(env=env) as osq:
            osq.wait_ready()
            ctx = osqueryd.osquery5_context(osq.columns("go_vulnerabilities"), {"path": [(2, str(exe))]})
            return {r["osv_id"]: r["summary"] for r in osq.client().generate("go_vulnerabilities", ctx)}

    real = rows(snapshot_db)
    assert len(real) > 50  # Go 1.19's stdlib findings
    assert rows(root) == {**real, "GO-2099-1001": "lone \ufffd surrogate"}
    r = _cli("vulns", "--vulndb", str(root), str(exe))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "GO-2099-1001" in r.stdout and all(vid in r.stdout for vid in real)
    # The conversion every table's values go through repairs such text too.
    from go_processes.extension._values import row_converter
    from go_processes.tables.go_vulnerabilities import TABLE
    (converted,) = row_converter(TABLE)([{"summary": "lone \ud800", "path": "/x\udcff"}], None)
    assert converted["summary"].encode() and converted["path"] == "/x\ufffd"
    entry = Database(str(root)).entry("GO-2099-1001")
    assert entry is not None
    assert (entry.summary, entry.aliases) == ("lone \ufffd surrogate", ("CVE-2099-\ufffd",))


def test_text_output_shows_control_characters_escaped(tmp_path):
    built = gobuild.build(gobuild.Build(program=gobuild.Program(), toolchain="old"))
    evil_dir = tmp_path / "bin\x1b[2K\rforged"
    evil_dir.mkdir()
    exe = evil_dir / "prog"
    shutil.copy(built, exe)
    summary = "title\x1b]0;pwned\x07 \x1b[2K\rGO-2099-0001  symbol  forged\nline\u202eevil"
    root = write_db(tmp_path / "db", [osv("GO-2026-1101", "stdlib", [{"introduced": "0"}], summary=summary)])
    r = _cli("vulns", "--vulndb", str(root), str(exe))
    assert r.returncode == 0, r.stderr
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in r.stdout, repr(raw)
    lines = r.stdout.splitlines()
    assert lines[0] == str(exe).replace("\x1b", "\\x1b").replace("\r", "\\r")
    assert len(lines) == 3 and lines[1].startswith("  GO-2026-1101  module ")
    assert lines[2] == ("      title\\x1b]0;pwned\\x07 \\x1b[2K\\rGO-2099-0001  symbol  forged"
                        "\\nline\\u202eevil")
    # JSON keeps the text as it is (its own escaping makes it safe).
    r = _cli("vulns", "--json", "--vulndb", str(root), str(exe))
    assert [(x["summary"], x["path"]) for x in json.loads(r.stdout)] == [(summary, str(exe))]


def test_a_symlinked_config_file_is_followed_when_trusted(tmp_path, store, monkeypatch):
    root = write_db(tmp_path / "db", [osv("GO-2026-1201", MOD, [{"introduced": "0"}])])
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "real.conf"
    conf.write_text(f"vulndb = {root}\n")
    os.chmod(conf, 0o644)
    link = tmp_path / "go-processes.conf"
    link.symlink_to(conf)
    monkeypatch.setenv(vulndb.ENV_CONFIG, str(link))
    assert vulndb.location() == (str(root), str(link))
    assert store.get().database is not None
    os.chmod(tmp_path / "etc", 0o777)  # the link's target is checked as any path is
    assert "config file refused" in store.get().error
    os.chmod(tmp_path / "etc", 0o755)
    if os.geteuid() == 0:
        os.lchown(link, _nobody(), -1)
        status = store.get()
        assert status.database is None and "config file refused" in status.error
        assert f"symlink owned by uid {_nobody()}" in status.error
