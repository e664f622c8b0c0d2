"""go_modules through the osqueryd stand-in, against real running Go processes.

The oracle is the Go toolchain reading the very file each process runs: `go version -m -json
/proc/<pid>/exe`; the process facts (pid, executable path) come from /proc read here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from fixtures import ModuleRow, build_fixture, ensure_proxy, go_modules_rows
from gobuild import go_version_m
from osqueryd import EQUALS, OsqueryD, osquery5_context

expected_rows = go_modules_rows


def as_rows(rows: list[dict[str, str]]) -> set[ModuleRow]:
    keys = ("module", "version", "sum", "replace_module", "replace_version", "replace_sum", "main")
    return {tuple(r[k] for k in keys) for r in rows}


def _start(path, *args) -> subprocess.Popen:
    p = subprocess.Popen([str(path), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60  # a watchdog: the exec happens in milliseconds
    while time.monotonic() < deadline:  # wait for the exec to have happened
        try:
            if os.path.samefile(f"/proc/{p.pid}/exe", path):
                return p
        except OSError:
            pass
        time.sleep(0.01)
    p.kill()
    raise AssertionError(f"{path} did not start")


@pytest.fixture(scope="module")
def procs():
    ensure_proxy()
    exes = {"mods": build_fixture("mods"), "default": build_fixture("default"), "old": build_fixture("old")}
    started = {name: _start(exe, "sleep") for name, exe in exes.items()}
    try:
        yield started
    finally:
        for p in started.values():
            p.send_signal(signal.SIGKILL)
            p.wait(10)


@pytest.fixture(scope="module")
def osq():
    o = OsqueryD()
    try:
        o.wait_ready()
        yield o
    finally:
        o.close()


def generate(osq: OsqueryD, constraints: dict | None = None, cols_used=None) -> list[dict[str, str]]:
    ctx = osquery5_context(osq.columns("go_modules"), constraints or {}, cols_used)
    return osq.client(timeout=60).generate("go_modules", ctx)


def test_routes(osq):
    ops = {r["name"]: int(r["op"]) for r in osq.routes("go_modules")}
    assert ops["pid"] == 1 | 8  # INDEX | OPTIMIZED
    assert ops["module"] == 4  # ADDITIONAL: constraints reach generate, not an index
    assert dict(osq.columns("go_modules"))["pid"] == "BIGINT"


@pytest.mark.parametrize("name", ["mods", "default", "old"])
def test_rows_of_one_pid_equal_go_version_m(osq, procs, name):
    pid = procs[name].pid
    rows = generate(osq, {"pid": [(EQUALS, str(pid))]})
    info = go_version_m(f"/proc/{pid}/exe")
    assert info is not None
    assert as_rows(rows) == expected_rows(info)
    assert len(rows) == len(as_rows(rows))
    assert {r["pid"] for r in rows} == {str(pid)}
    assert {r["path"] for r in rows} == {os.readlink(f"/proc/{pid}/exe")}


def test_mods_fixture_has_the_interesting_shapes(osq, procs):
    """Guards the oracle comparison against vacuity: a summed dep, a local and a version replace."""
    rows = {r["module"]: r for r in generate(osq, {"pid": [(EQUALS, str(procs["mods"].pid))]})}
    assert rows["example.com/mods"]["main"] == "1"
    assert rows["example.com/lib"]["sum"].startswith("h1:")
    assert rows["example.com/greet"]["replace_module"] == "./greet"
    assert rows["example.com/util"]["replace_version"] == "v1.1.0"
    assert rows["example.com/util"]["replace_sum"].startswith("h1:")
    assert rows["stdlib"]["version"].startswith("go1.")


def test_pid_in_list_in_one_call(osq, procs):
    pids = [procs["mods"].pid, procs["default"].pid]
    rows = generate(osq, {"pid": [(EQUALS, str(p)) for p in pids]})
    assert {int(r["pid"]) for r in rows} == set(pids)


def test_non_go_and_bad_pids_give_nothing(osq, procs):
    assert generate(osq, {"pid": [(EQUALS, str(os.getpid()))]}) == []  # python is not Go
    # Not a plain integer (pid = 1000.0): no push-down; SQLite, which re-checks every row, filters.
    pid = procs["mods"].pid
    assert pid in {int(r["pid"]) for r in generate(osq, {"pid": [(EQUALS, f"{pid}.0")]})}
    assert generate(osq, {"pid": [(EQUALS, "999999999")]}) == []


def test_module_constraint(osq, procs):
    rows = generate(osq, {"module": [(EQUALS, "example.com/lib")]})
    assert rows and {r["module"] for r in rows} == {"example.com/lib"}
    assert str(procs["mods"].pid) in {r["pid"] for r in rows}
    stdlib = generate(osq, {"module": [(EQUALS, "stdlib")], "pid": [(EQUALS, str(procs["old"].pid))]})
    info = go_version_m(f"/proc/{procs['old'].pid}/exe")
    assert info is not None
    assert [(r["module"], r["version"]) for r in stdlib] == [("stdlib", info["GoVersion"])]


def test_full_scan_covers_every_go_process(osq, procs):
    rows = generate(osq)
    by_pid: dict[int, set[ModuleRow]] = {}
    for r in rows:
        by_pid.setdefault(int(r["pid"]), set()).add(as_rows([r]).pop())
    for p in procs.values():
        info = go_version_m(f"/proc/{p.pid}/exe")
        assert info is not None
        assert by_pid[p.pid] == expected_rows(info)
    assert os.getpid() not in by_pid
    for pid in by_pid:  # every listed process runs something the Go toolchain calls Go
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue  # exited since
        if go_version_m(f"/proc/{pid}/exe") is None:
            # The toolchain could not read it: only an exit (or exec) since the readlink excuses that.
            try:
                still = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            assert still != exe or go_version_m(f"/proc/{pid}/exe") is not None, exe


def test_stdlib_version_spelling():
    """The stdlib row's version: the release, without a GOEXPERIMENT suffix."""
    from go_processes.buildinfo import go_release

    assert go_release("go1.21.4 X:arenas") == "go1.21.4"
    assert go_release("go1.22.0") == "go1.22.0"
    assert go_release("") == ""
