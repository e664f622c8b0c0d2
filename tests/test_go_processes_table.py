"""The go_processes table over real processes: rows against the Go toolchain's reading of each
/proc/<pid>/exe, push-down of pid constraints and colsUsed, the agent columns, and churn."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import test_procs
from fixtures import build_fixture
from test_procs import Spawner, Started, proc_stat, start_agent

# The process tests' fixtures (each module gets its own instances of the module-scoped ones).
spawner, zoo, oracle = test_procs.spawner, test_procs.zoo, test_procs.oracle
agent_user, agent_exe = test_procs.agent_user, test_procs.agent_exe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks Linux /proc")

from go_processes.procs import Agent, Process  # noqa: E402
from go_processes.tables import ColumnOptions, ColumnType, QueryContext, all_tables  # noqa: E402
from go_processes.tables.go_processes import TABLE  # noqa: E402

AGENT_COLUMNS = {"agent", "agent_port", "agent_address"}


def context(pids: list[int] | None = None, cols: list[str] | None = None) -> QueryContext:
    """A context exactly as osquery 5 sends it (JSON, one entry per column)."""
    constraints = []
    for c in TABLE.columns:
        items = [{"op": 2, "expr": str(p)} for p in pids] if c.name == "pid" and pids is not None else []
        constraints.append({"name": c.name, "list": items, "affinity": c.type.value})
    raw: dict = {"constraints": constraints}
    if cols is not None:
        raw["colsUsed"] = cols
        raw["colsUsedBitset"] = sum(1 << i for i, c in enumerate(TABLE.columns) if c.name in cols)
    return QueryContext.parse(json.dumps(raw))


def rows_by_pid(ctx: QueryContext | None = None) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for r in TABLE.generate(ctx or QueryContext()):
        assert r["pid"] not in out, "one row per process"
        out[r["pid"]] = dict(r)  # type: ignore[index]
    return out


def test_table_definition() -> None:
    assert [t for t in all_tables() if t.name == "go_processes"] == [TABLE]  # registered once, this one
    names = [c.name for c in TABLE.columns]
    assert len(names) == len(set(names))
    assert not {"rowid", "n", "index"} & set(names)
    for c in TABLE.columns:
        assert c.description.strip(), c.name
        assert isinstance(c.type, ColumnType)
    pid = TABLE.column("pid")
    assert pid.type == ColumnType.BIGINT and pid.options == ColumnOptions.INDEX | ColumnOptions.OPTIMIZED
    assert TABLE.column("ppid").type == ColumnType.BIGINT
    for name in ("exe", "path", "version", "agent", "module", "module_version", "vcs_revision", "vcs_time",
                 "vcs_modified", "goos", "goarch", "cgo_enabled", "compiler", "build_mode", "on_disk",
                 "detection", "agent_port", "agent_address"):
        TABLE.column(name)
    assert not [c.name for c in TABLE.columns if c.options & ColumnOptions.HIDDEN]
    assert TABLE.examples and all("go_processes" in e for e in TABLE.examples)


def test_rows_match_the_go_toolchain(zoo: dict[str, Started], oracle: dict[str, dict | None]) -> None:
    rows = rows_by_pid()
    names = {c.name for c in TABLE.columns}
    for kind, s in zoo.items():
        if not s.go:
            assert s.pid not in rows, f"non-Go process {kind} is a row"
            continue
        r = rows.get(s.pid)
        assert r is not None, kind
        assert set(r) == names
        assert r["ppid"] == proc_stat(s.pid)[2] == os.getpid()
        assert (r["exe"], r["path"], r["on_disk"]) == (s.name, s.path, s.on_disk), kind
        assert r["agent"] == 0 and r["agent_port"] is None and r["agent_address"] == ""
        assert r["uid"] == os.getuid()  # started by this test, as its own user
        for v in r.values():
            assert v is None or isinstance(v, (int, str)), (kind, r)
        if kind == "gccgo":
            assert (r["detection"], r["version"], r["compiler"]) == ("gccgo", "", "gccgo")
            continue
        want = oracle[kind]
        assert want is not None
        settings = {s["Key"]: s.get("Value", "") for s in want.get("Settings", [])}
        assert r["version"] == want["GoVersion"], kind
        assert (r["module"], r["module_version"]) == (want["Main"]["Path"], want["Main"]["Version"]), kind
        assert r["main_package"] == want["Path"]
        assert r["detection"] == "buildinfo"
        assert (r["goos"], r["goarch"]) == (settings["GOOS"], settings["GOARCH"]), kind
        assert r["cgo_enabled"] == int(settings["CGO_ENABLED"] == "1"), kind
        assert r["compiler"] == settings.get("-compiler", ""), kind
        assert r["build_mode"] == settings.get("-buildmode", ""), kind
        assert r["vcs_revision"] == settings.get("vcs.revision", "")
        assert r["vcs_modified"] == ({"true": 1, "false": 0}.get(settings.get("vcs.modified", "")))


def test_pid_constraints_answer_without_walking_proc(zoo: dict[str, Started],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from go_processes.procs import _linux

    def no_walk() -> None:
        raise AssertionError("walked /proc for a pid constraint")

    monkeypatch.setattr(_linux, "_pids", no_walk)
    go = [s.pid for s in zoo.values() if s.go]
    non_go = [s.pid for s in zoo.values() if not s.go]
    assert set(rows_by_pid(context([go[0]]))) == {go[0]}
    assert set(rows_by_pid(context(go + non_go))) == set(go)  # an IN list in one call (OPTIMIZED)
    assert rows_by_pid(context(non_go)) == {}
    tids = [int(t) for t in os.listdir(f"/proc/{go[0]}/task") if int(t) != go[0]]
    assert rows_by_pid(context(tids)) == {}
    # The pre-3.0 form: op as a string, empty lists as "".
    old = {"constraints": [{"name": "pid", "list": [{"op": "2", "expr": str(go[0])}], "affinity": "BIGINT"},
                           {"name": "path", "list": "", "affinity": "TEXT"}]}
    assert set(rows_by_pid(QueryContext.parse(json.dumps(old)))) == {go[0]}


def _sqlite_keeps(pid: int, literal: str) -> str | None:
    """The constraint text osquery would send for ``pid = <literal>`` (SQLite's text of the value)
    when SQLite itself keeps a row with that pid (column affinity as osquery declares BIGINT),
    else None."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (pid BIGINT)")
    db.execute("INSERT INTO t VALUES (?)", (pid,))
    [(kept,)] = db.execute(f"SELECT count(*) FROM t WHERE pid = {literal}")
    [(text,)] = db.execute(f"SELECT CAST({literal} AS TEXT)")
    return text if kept else None


@pytest.mark.parametrize("spelling", ["{}.0", "{}e0", "'{}.0'", "' {}'", "'{}e0'", "{}.0 + 0"])
def test_equal_values_that_are_not_plain_integers_miss_no_row(zoo: dict[str, Started], spelling: str) -> None:
    """WHERE pid = 1000.0: SQLite keeps the row, so the table must return it (SQLite filters the
    rest); the same for go_modules' pid push-down."""
    from go_processes.tables.go_modules import TABLE as MODULES

    pid = zoo["default"].pid
    expr = _sqlite_keeps(pid, spelling.format(pid))
    assert expr is not None and expr != str(pid), spelling  # SQLite matches it, and not as plain text
    ctx = QueryContext.parse({"constraints": [{"name": "pid", "list": [{"op": 2, "expr": expr}]}]})
    assert pid in rows_by_pid(ctx)
    assert pid in {r["pid"] for r in MODULES.generate(ctx)}
    # Mixed with plain values in one IN list, still no row is missed.
    ctx = QueryContext.parse({"constraints": [{"name": "pid", "list": [
        {"op": 2, "expr": "1"}, {"op": 2, "expr": expr}]}]})
    assert pid in rows_by_pid(ctx)


def test_cols_used_skips_agent_work(zoo: dict[str, Started], monkeypatch: pytest.MonkeyPatch) -> None:
    from go_processes.tables import go_processes as module

    calls: list[int] = []
    real = module.gops_agent

    def counting(proc: Process) -> Agent | None:
        calls.append(proc.pid)
        return real(proc)

    monkeypatch.setattr(module, "gops_agent", counting)
    pid = zoo["default"].pid
    rows_by_pid(context([pid], ["pid", "ppid", "exe", "path", "version"]))
    assert calls == []
    rows_by_pid(context([pid], ["pid", "agent_port"]))
    assert calls == [pid]
    calls.clear()
    rows_by_pid(QueryContext())  # colsUsed absent: every column
    assert pid in calls


def test_agent_columns(spawner: Spawner, agent_exe: str, agent_user: pwd.struct_passwd,
                       tmp_path: Path) -> None:
    p, port = start_agent(spawner, agent_exe, {"HOME": str(tmp_path)})  # this test's own agent
    q, qport = start_agent(spawner, agent_exe, {"HOME": test_procs.user_dir(agent_user)}, agent_user)
    rows = rows_by_pid(context([p.pid, q.pid]))
    agent_cols = ("agent", "agent_port", "agent_address")
    assert tuple(rows[p.pid][c] for c in agent_cols) == (1, port, "127.0.0.1")
    assert tuple(rows[q.pid][c] for c in agent_cols) == (1, qport, "127.0.0.1")
    assert rows[q.pid]["uid"] == agent_user.pw_uid
    assert rows[q.pid]["module"] == "example.com/agent"
    p.terminate()  # a clean gops shutdown removes the pidfile
    p.wait(timeout=10)
    assert p.pid not in rows_by_pid(context([p.pid]))


def test_agent_without_home_when_uid_is_not_asked(spawner: Spawner, agent_exe: str,
                                                  agent_user: pwd.struct_passwd) -> None:
    """No HOME, XDG_CONFIG_HOME or GOPS_CONFIG_DIR: the pidfile is under the real uid's passwd home,
    which the agent columns find even when the query does not read uid (so the scan skipped it)."""
    p, port = start_agent(spawner, agent_exe, {}, agent_user, cwd=agent_user.pw_dir)
    rows = rows_by_pid(context([p.pid], ["pid", "agent", "agent_port"]))
    assert (rows[p.pid]["agent"], rows[p.pid]["agent_port"]) == (1, port)
    assert rows[p.pid]["uid"] is None  # not read by the scan: the query did not ask for it


def test_zombie_is_not_a_row(spawner: Spawner) -> None:
    z = spawner.popen([str(build_fixture("default"))])
    deadline = time.monotonic() + 60  # a watchdog for a process that never turns zombie
    while proc_stat(z.pid)[1] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert z.pid not in rows_by_pid()
    assert rows_by_pid(context([z.pid])) == {}
    z.wait()


def test_queries_survive_churn(zoo: dict[str, Started]) -> None:
    """Processes start and die continuously while full and single-pid queries run."""
    exe = str(build_fixture("default"))
    stop = threading.Event()
    pids: list[int] = []
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                batch = [subprocess.Popen([exe, "sleep"] if i % 2 else [exe], stdout=subprocess.DEVNULL)
                         for i in range(4)]
                pids.extend(p.pid for p in batch)
                time.sleep(0.005)
                for p in batch:
                    p.kill()
                for p in batch:
                    p.wait()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=churn)
    t.start()
    queries = 0
    try:
        # A count of queries against a count of churned processes, not a time window (a loaded
        # machine would do less in one); the deadline is only a watchdog for a hang.
        deadline = time.monotonic() + 300
        while queries < 60 or len(pids) < 40:
            assert time.monotonic() < deadline, f"{queries} queries, {len(pids)} processes in 300 s"
            assert not errors, errors
            rows = rows_by_pid()
            assert zoo["default"].pid in rows
            rows_by_pid(context(pids[-8:]))
            rows_by_pid(context(pids[-8:], ["pid", "agent"]))
            queries += 3
    finally:
        stop.set()
        t.join(30)
    assert not errors
