"""The vulnerability-database layer: versions, matching rules, hostile databases, trust."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from go_processes import vulndb
from go_processes.buildinfo import Module
from go_processes.vulndb import Database, ModuleVersion, Program, Store, match
from vulndb_util import SNAPSHOT_ENTRIES, SNAPSHOT_MODIFIED, osv, snapshot_db, write_db, zip_db

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
    # Platform unknown (no build settings): not ruled out.
    assert _ids(match(db, _prog("v1.0.0"))) == ["GO-2026-0040"]


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
        pytest.skip("needs root to give files to another user")
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
