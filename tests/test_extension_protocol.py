"""The extension as osqueryd sees it: registration, routes, columns, generate, values, errors,
concurrency. Everything goes through the real UNIX sockets of a launched extension process, with
requests built the way osquery 5 (and osquery < 3.0) builds them (tests/osqueryd.py).

Expected values come from the test's own knowledge (the probe table's Python values, osquery's
string rules), from /proc read here, and from the Go toolchain (`go version -m`), never from the
extension's answers.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gobuild
import osqueryd
import pytest
from osqueryd import EQUALS, GREATER_THAN, LIKE, CallError, OsqueryD

PROBE_COLUMNS = [  # (name, type, op) as the probe table declares them, op from osquery's bits
    ("idx", "BIGINT", str(osqueryd.OP_BITS["INDEX"] | osqueryd.OP_BITS["OPTIMIZED"])),
    ("i", "INTEGER", "0"),
    ("b", "BIGINT", "0"),
    ("u", "UNSIGNED BIGINT", "0"),
    ("d", "DOUBLE", "0"),
    ("t", "TEXT", "0"),
    ("bl", "BLOB", "0"),
    ("seen", "TEXT", "0"),
    ("action", "TEXT", str(osqueryd.OP_BITS["ADDITIONAL"] | osqueryd.OP_BITS["HIDDEN"])),
]
INTEGER_TYPES = {"INTEGER", "BIGINT", "UNSIGNED BIGINT"}


@pytest.fixture(scope="module")
def probe() -> Iterator[OsqueryD]:
    with OsqueryD(osqueryd.probe_command()) as osq:
        osq.wait_ready()
        yield osq


@pytest.fixture(scope="module")
def real() -> Iterator[OsqueryD]:
    """The installed go_processes.ext console script, launched as osqueryd launches it."""
    with OsqueryD() as osq:
        osq.wait_ready()
        yield osq


def _stat_ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.fixture(scope="module")
def go_procs() -> Iterator[dict[str, list[int]]]:
    """Two Go processes (the same cached fixture binary) and one non-Go process, killed after."""
    exe = gobuild.build(gobuild.Build())
    procs = [subprocess.Popen([str(exe), "sleep"]) for _ in range(2)]
    procs.append(subprocess.Popen(["sleep", "3600"]))
    try:
        yield {"go": [p.pid for p in procs[:2]], "other": [procs[2].pid]}
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _plain(rows: list[dict[str, str]], drop: tuple[str, ...] = ("seen", "action")) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


# -- registration and routes ------------------------------------------------------------------------


def test_registration_info(probe: OsqueryD) -> None:
    info, registry, status = probe.registration()
    assert status.code == 0
    assert info.name == "go_processes"
    assert info.version == importlib.metadata.version("osquery-go-processes")
    for change in osqueryd.SDK_VERSION_CHANGES:  # osquery refuses an SDK version below its changes
        assert osqueryd.version_at_least(change, info.sdk_version)
    assert set(registry) == {"table"}


def test_probe_routes_carry_types_and_options(probe: OsqueryD) -> None:
    routes = probe.routes("probe")
    assert osqueryd.validate_routes(routes) == []
    assert [(r["id"], r["name"], r["type"], r["op"]) for r in routes] == [
        ("column", n, t, op) for n, t, op in PROBE_COLUMNS
    ]


def test_go_processes_routes(real: OsqueryD) -> None:
    tables = real.registration()[1]["table"]
    assert "go_processes" in tables
    for name, routes in tables.items():
        assert name not in osqueryd.CORE_TABLES
        assert osqueryd.validate_routes(routes) == [], name
    cols = {r["name"]: r for r in tables["go_processes"]}
    assert cols["pid"]["type"] == "BIGINT"
    assert int(cols["pid"]["op"]) == osqueryd.OP_BITS["INDEX"] | osqueryd.OP_BITS["OPTIMIZED"] == 9
    assert cols["ppid"]["type"] == "BIGINT"
    for name in ("exe", "path", "version"):
        assert cols[name]["type"] == "TEXT"
    assert cols["agent"]["type"] == "INTEGER"


def test_columns_action_matches_registration(probe: OsqueryD, real: OsqueryD) -> None:
    for osq in (probe, real):
        for table, routes in osq.registration()[1]["table"].items():
            assert osq.client().columns(table) == routes


# -- generate and values ----------------------------------------------------------------------------


def test_value_rules(probe: OsqueryD) -> None:
    rows = probe.client().generate("probe", probe.context("probe"))
    names = {n for n, _, _ in PROBE_COLUMNS}
    for row in rows:
        assert set(row) == names  # every column present, the undeclared key dropped
        assert all(type(v) is str for v in row.values())
    expected = osqueryd.PROBE_VALUE_ROWS_EXPECTED
    got = _plain(rows)
    # DOUBLE: osquery reads it with strtod; compare the number, not its spelling
    def number(v: str) -> float | None:
        return float(v) if v else None

    assert [number(r["d"]) for r in got] == [number(e["d"]) for e in expected]
    assert [{k: v for k, v in r.items() if k != "d"} for r in got] == [
        {k: v for k, v in e.items() if k != "d"} for e in expected
    ]
    assert all(r["action"] == "" for r in rows)  # a column the table never filled


def test_integers_are_plain_base10(probe: OsqueryD) -> None:
    types = {n: t for n, t, _ in PROBE_COLUMNS}
    for row in probe.client().generate("probe", probe.context("probe")):
        for name, value in row.items():
            if types[name] in INTEGER_TYPES and value:
                assert value == str(int(value, 10)), (name, value)  # canonical: no sign, zeros, junk


def test_generate_without_context(probe: OsqueryD) -> None:
    for ctx in (None, ""):
        rows = probe.client().generate("probe", ctx)
        assert sorted(r["idx"] for r in rows) == ["1", "2", "3"]


def test_osquery5_and_pre30_contexts_mean_the_same(probe: OsqueryD) -> None:
    c = probe.client()
    new = c.generate("probe", probe.context("probe", idx=[1, 3]))
    old = c.generate("probe", probe.context("probe", pre30=True, idx=[1, 3]))
    assert sorted(r["idx"] for r in new) == sorted(r["idx"] for r in old) == ["1", "3"]
    seen_new, seen_old = json.loads(new[0]["seen"]), json.loads(old[0]["seen"])
    assert seen_new["constraints"] == seen_old["constraints"] == {"idx": [[EQUALS, "1"], [EQUALS, "3"]]}
    assert seen_new["cols_used"] == sorted(n for n, _, _ in PROBE_COLUMNS)
    assert seen_old["cols_used"] is None  # pre-3.0 osquery did not say: every column is needed
    # the unconstrained pre-3.0 form (every list is "") returns everything
    assert len(c.generate("probe", probe.context("probe", pre30=True))) == 3


def test_other_operators_reach_the_table(probe: OsqueryD) -> None:
    constraints = {"idx": [(GREATER_THAN, "1")], "t": [(LIKE, "c%")]}
    ctx = osqueryd.osquery5_context(probe.columns("probe"), constraints, cols_used=["idx", "t", "seen"])
    rows = probe.client().generate("probe", ctx)
    assert len(rows) == 3  # the table filters on = only; SQLite re-checks the rest
    seen = json.loads(rows[0]["seen"])
    assert seen["constraints"] == {"idx": [[GREATER_THAN, "1"]], "t": [[LIKE, "c%"]]}
    assert seen["cols_used"] == ["idx", "seen", "t"]


def test_only_the_columns_used_are_sent(probe: OsqueryD) -> None:
    """SQLite reads only colsUsed (an absent column reads as NULL in osquery's DynamicTableRow), so
    the others are not converted or sent; a query that reads no column still gets every row."""
    c = probe.client()
    every = {r["idx"]: r for r in c.generate("probe", probe.context("probe"))}
    some = c.generate("probe", probe.context("probe", cols_used=["idx", "t", "b"]))
    assert sorted(r["idx"] for r in some) == sorted(every) == ["1", "2", "3"]
    for row in some:
        assert set(row) == {"idx", "t", "b"}
        assert row == {k: every[row["idx"]][k] for k in ("idx", "t", "b")}
    none = c.generate("probe", probe.context("probe", cols_used=[]))
    assert len(none) == 3 and all(set(r) == {"idx"} for r in none)  # count(*) still counts rows


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["insert", "update", "delete"])
def test_write_actions_fail_cleanly(probe: OsqueryD, real: OsqueryD, action: str) -> None:
    for osq, table in ((probe, "probe"), (real, "go_processes")):
        r = osq.client().call("table", table, {"action": action, "json_value_array": "[1]", "id": "1"})
        assert r.status.code != 0 and r.status.message
        assert not r.response


@pytest.mark.parametrize(("registry", "item", "request_"), [
    ("table", "no_such_table", {"action": "generate", "context": "{}"}),
    ("config", "probe", {"action": "genConfig"}),
    ("table", "probe", {"action": "frobnicate"}),
    ("table", "probe", {}),
])
def test_unknown_calls_fail_cleanly(probe: OsqueryD, registry: str, item: str, request_: dict) -> None:
    r = probe.client().call(registry, item, request_)
    assert r.status.code != 0 and r.status.message
    assert not r.response


@pytest.mark.parametrize("context", [
    "{", "[1]", "42", '{"constraints": 5}', '{"constraints": [{"list": []}]}',
    '{"constraints": [{"name": "idx", "list": [{"op": "x", "expr": "1"}]}]}',
    '{"constraints": [{"name": "idx", "list": 7}]}',
])
def test_malformed_context_fails_and_server_keeps_answering(probe: OsqueryD, context: str) -> None:
    c = probe.client()
    with pytest.raises(CallError) as e:
        c.generate("probe", context)
    assert e.value.status.code != 0 and e.value.status.message
    assert c.ping().code == 0
    assert len(c.generate("probe", probe.context("probe"))) == 3


def test_exception_in_generate_is_a_status(probe: OsqueryD) -> None:
    c = probe.client()
    with pytest.raises(CallError) as e:
        c.generate("probe", probe.context("probe", action=["fail"]))
    message = e.value.status.message
    assert "probe failure" in message and "\n" not in message
    assert len(c.generate("probe", probe.context("probe"))) == 3
    err = probe.stderr()
    assert "probe failure" in err and "Traceback" not in err


# -- concurrency --------------------------------------------------------------------------------------


def test_ping_is_not_blocked_by_a_slow_generate(probe: OsqueryD, tmp_path: Path) -> None:
    """While one generate is held inside the extension (it cannot return before the test releases
    it), pings and another generate are answered: osqueryd pings before every call and gives up on
    an extension that does not answer. Synchronised on files the probe writes and waits for, so no
    timing is assumed; the clients' timeouts are only watchdogs for a blocked server."""
    result: dict[str, object] = {}

    def slow() -> None:
        try:
            held = probe.context("probe", action=[f"hold:{tmp_path}"])
            result["rows"] = probe.client(timeout=180).generate("probe", held)
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=slow)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "entered").exists():
            assert time.monotonic() < deadline and t.is_alive(), f"the held generate never started: {result}"
            time.sleep(0.01)
        c = probe.client(timeout=60)
        for _ in range(10):  # osqueryd: a fresh connection and a ping before every call
            assert c.ping().code == 0
        assert len(c.generate("probe", probe.context("probe"))) == 3
        assert t.is_alive() and not (tmp_path / "release").exists()  # still held while we were served
    finally:
        (tmp_path / "release").touch()
        t.join(60)
    assert "error" not in result, result.get("error")
    assert len(result["rows"]) == 3  # type: ignore[arg-type]


def test_many_clients_at_once(real: OsqueryD, go_procs: dict[str, list[int]]) -> None:
    errors: list[BaseException] = []
    ping_latencies: list[float] = []
    stop = threading.Event()
    go_pids = {str(p) for p in go_procs["go"]}

    def pinger() -> None:
        c = real.client(timeout=30)  # a watchdog for a blocked server, not a latency goal (bench/)
        while not stop.is_set():
            start = time.monotonic()
            try:
                assert c.ping().code == 0
            except BaseException as e:
                errors.append(e)
                return
            ping_latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    def worker(n: int) -> None:
        c = real.client(timeout=30, persistent=n % 2 == 1)  # osquery's fresh connections, and one kept open
        try:
            for i in range(8):
                if i % 2:
                    rows = c.generate("go_processes", real.context("go_processes", pid=sorted(go_pids)))
                else:
                    rows = c.generate("go_processes", real.context("go_processes"))
                assert go_pids <= {r["pid"] for r in rows}
                assert c.ping().code == 0
        except BaseException as e:
            errors.append(e)
        finally:
            c.close()

    p = threading.Thread(target=pinger)
    p.start()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    stop.set()
    p.join(10)
    assert not errors, errors[:3]  # every ping answered within the client's timeout
    assert ping_latencies, "the pinger never got an answer"


# -- the go_processes table through the socket -------------------------------------------------------


def _oracle_version(pid: int) -> str:
    info = gobuild.go_version_m(f"/proc/{pid}/exe")
    assert info is not None, f"the Go toolchain does not recognise /proc/{pid}/exe"
    return info["GoVersion"]


def test_rows_match_the_go_toolchain(real: OsqueryD, go_procs: dict[str, list[int]]) -> None:
    rows = real.client().generate("go_processes", real.context("go_processes"))
    by_pid = {r["pid"]: r for r in rows}
    types = dict(real.columns("go_processes"))
    for row in rows:
        assert set(row) == set(types)
        for name, value in row.items():
            assert type(value) is str
            if types[name] in INTEGER_TYPES and value:
                int(value, 10)
    for pid in go_procs["go"]:
        row = by_pid[str(pid)]
        assert row["version"] == _oracle_version(pid)
        assert row["ppid"] == str(_stat_ppid(pid)) == str(os.getpid())
        assert row["path"] == os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        assert row["agent"] == "0"
    for pid in go_procs["other"]:
        assert str(pid) not in by_pid


def test_pid_equals(real: OsqueryD, go_procs: dict[str, list[int]]) -> None:
    c = real.client()
    go = go_procs["go"][0]
    rows = c.generate("go_processes", real.context("go_processes", pid=[go]))
    assert [r["pid"] for r in rows] == [str(go)]
    assert rows[0]["version"] == _oracle_version(go)
    assert c.generate("go_processes", real.context("go_processes", pid=[go_procs["other"][0]])) == []
    assert c.generate("go_processes", real.context("go_processes", pid=[2**22 + 12345])) == []
    # Not a plain integer: no push-down (SQLite, which re-checks every row, filters them).
    rows = c.generate("go_processes", real.context("go_processes", pid=[f"{go}.0"]))
    assert str(go) in {r["pid"] for r in rows}


def test_pid_in_list(real: OsqueryD, go_procs: dict[str, list[int]]) -> None:
    pids = [*go_procs["go"], *go_procs["other"]]
    rows = real.client().generate("go_processes", real.context("go_processes", pid=pids))
    assert sorted(r["pid"] for r in rows) == sorted(str(p) for p in go_procs["go"])


def test_pre30_context_on_go_processes(real: OsqueryD, go_procs: dict[str, list[int]]) -> None:
    go = go_procs["go"][1]
    rows = real.client().generate("go_processes", real.context("go_processes", pre30=True, pid=[go]))
    assert [r["pid"] for r in rows] == [str(go)]


def test_queries_keep_succeeding_under_churn(real: OsqueryD) -> None:
    """Processes start and die continuously; every query must still answer status 0."""
    exe = str(gobuild.build(gobuild.Build()))
    stop = threading.Event()
    started: list[int] = []
    churn_errors: list[BaseException] = []

    def churn() -> None:
        live: list[subprocess.Popen] = []
        try:
            while not stop.is_set():
                live.append(subprocess.Popen([exe, "sleep"]))
                live.append(subprocess.Popen(["sleep", "3600"]))
                started.append(live[-2].pid)
                if len(live) > 12:
                    for p in live[:4]:
                        p.kill()
                    for p in live[:4]:
                        p.wait()
                    del live[:4]
                time.sleep(0.01)
        except BaseException as e:
            churn_errors.append(e)
        finally:
            for p in live:
                p.kill()
                p.wait()

    t = threading.Thread(target=churn)
    t.start()
    c = real.client(timeout=30)
    queries = 0
    try:
        # Counts, not a time window (a loaded machine does less per second); the deadline is only
        # a watchdog for a hang.
        deadline = time.monotonic() + 300
        while queries < 20 or len(started) < 20:
            assert time.monotonic() < deadline, (queries, len(started))
            assert not churn_errors, churn_errors
            c.generate("go_processes", real.context("go_processes"))
            if started:
                recent = started[-3:]
                rows = c.generate("go_processes", real.context("go_processes", pid=recent))
                assert {r["pid"] for r in rows} <= {str(p) for p in recent}
            queries += 1
    finally:
        stop.set()
        t.join(30)
    assert not churn_errors, churn_errors
    assert c.ping().code == 0


def _frame_call_with_string_length(length: int) -> bytes:
    # TBinaryProtocol strict message header for call(), then field 1 (registry, a string) claiming
    # ``length`` bytes that never come.
    name = b"call"
    return (struct.pack("!iI", -2147418112 | 1, len(name)) + name + struct.pack("!i", 1)
            + struct.pack("!bh", 11, 1) + struct.pack("!i", length))


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"\x80\x01\x00\x01\x00\x00\x00\x07nothing",  # a call of a method that does not exist
    _frame_call_with_string_length(2**31 - 1),  # a 2 GiB string: refused, not awaited
])
def test_garbage_on_the_socket_drops_only_that_connection(probe: OsqueryD, payload: bytes) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(probe.extension_path())
    s.sendall(payload)
    if payload.startswith(b"\x80\x01\x00\x01\x00\x00\x00\x07"):
        s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(4096):  # the server answers (an exception message) or just closes
            pass
    except TimeoutError:
        pytest.fail("the extension kept a hostile connection open instead of dropping it")
    finally:
        s.close()
    c = probe.client(timeout=2)
    assert c.ping().code == 0
    assert len(c.generate("probe", probe.context("probe"))) == 3
