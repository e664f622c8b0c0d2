"""A test stand-in for osqueryd's side of the extension protocol (no osqueryd exists here).

Built from the ``osquery`` package's generated Thrift classes and thrift's stock transports only
(nothing from go_processes), it does what osqueryd 5 does with an extension. Where each behaviour
comes from in osquery's source (osquery/osquery, paths below osquery/):
- the ExtensionManager service on a UNIX socket, one thread per connection: extensions/interface.cpp
  ExtensionRunnerCore::startServer (a TThreadedServer with buffered transport, binary protocol);
- registerExtension, as ExtensionManagerInterface::registerExtension (extensions/interface.cpp):
  "Duplicate extension registered" when an extension of that name is registered; "Incompatible
  extension SDK version" when the SDK is below an entry of kSDKVersionChanges (1.7.7, compared as
  utils/info/version.cpp versionAtLeast does); then a uuid (rand() + 1 as uint16, never one in
  use) and the broadcast handed to RegistryFactory::addBroadcast (registry/registry_factory.cpp),
  whose failure comes back as "Failed adding registry: " + its message. addBroadcast first checks
  every item of every registry for a name already registered (a table of osquery's own, of fleetd
  or launcher, or of an extension registered earlier) and refuses the *whole* broadcast with
  "Registry item <name> conflicts with another item of the same name." (the wording of
  osquery/osquery#8260, 2024; earlier releases said "Duplicate registry item: <name>"); only then
  does each registry's addExternal run, where a table without columns is "Invalid route info"
  (core/tables.cpp TablePlugin::addExternal). Success is code 0, message "OK", the uuid;
- deregisterExtension: "No extension UUID found" for an unknown uuid (interface.cpp);
- ping: code 0, "pong" (ExtensionInterface::ping); options(): a few of osqueryd's flags;
- holds, as taken, every name in ``tests/data/taken-table-names.tsv`` (osquery's own tables
  from specs/, fleetd's, Kolide launcher's) when that file is there, else a handful of osquery's;
- launches the extension with osquery's argv ``[--verbose] --socket S --timeout T --interval I``
  (extensions/extensions.cpp applyExtensionDelay / loadExtensions);
- talks to the extension on ``<socket>.<uuid>`` (getExtensionSocket) with a fresh connection per
  request (as osqueryd's EXClient does) and builds generate contexts exactly as osquery 5
  serializes them (core/tables.cpp setRequestFromContext), or in the pre-3.0 form.
Not modelled: the "Unknown registry: <name>" answer for a registry osquery lacks (our extension
broadcasts tables only), and osquery's own SQL (query, getQueryColumns answer code 1).

Usage::

    with OsqueryD() as osq:            # launches go_processes.ext
        uuid = osq.wait_ready()
        rows = osq.client().generate("go_processes", osq.context("go_processes", pid=[1234]))
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from osquery.extensions import Extension, ExtensionManager
from osquery.extensions.ttypes import (
    ExtensionResponse,
    ExtensionStatus,
    InternalExtensionInfo,
    InternalOptionInfo,
)
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

# TSocket logs every refused connection; waiting for a socket to appear is not an error here.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)

# Table names already registered on the hosts we deploy to (osquery's own, fleetd's, launcher's),
# carried in tests/data (its README says where the list comes from).
TAKEN_NAMES_FILE = Path(__file__).resolve().parent / "data" / "taken-table-names.tsv"


def taken_table_names(path: Path = TAKEN_NAMES_FILE) -> dict[str, str]:
    """name -> source (osquery-core, fleetd, launcher) from the list of taken names."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        source, _, name = line.partition("\t")
        out[name.strip()] = source.strip()
    return out


TAKEN_TABLES = taken_table_names()
CORE_TABLES = frozenset(TAKEN_TABLES)
# core/sql/column.cpp
VALID_TYPES = frozenset({"TEXT", "INTEGER", "BIGINT", "UNSIGNED BIGINT", "DOUBLE", "BLOB"})
OP_BITS = {"INDEX": 1, "REQUIRED": 2, "ADDITIONAL": 4, "OPTIMIZED": 8, "HIDDEN": 16}  # core/sql/column.h
FORBIDDEN_COLUMN_NAMES = frozenset({"rowid", "n", "index"})
SDK_VERSION_CHANGES = ("1.7.7",)  # interface.cpp kSDKVersionChanges

EQUALS, GREATER_THAN, LESS_THAN_OR_EQUALS, LESS_THAN, GREATER_THAN_OR_EQUALS = 2, 4, 8, 16, 32
LIKE, GLOB = 65, 66


def default_command() -> list[str]:
    """The installed ``go_processes.ext`` console script."""
    found = shutil.which("go_processes.ext")
    if not found:
        candidate = os.path.join(sysconfig.get_path("scripts"), "go_processes.ext")
        found = candidate if os.path.exists(candidate) else None
    if not found:
        raise FileNotFoundError("go_processes.ext is not installed (pip install .)")
    return [found]


def _split(version: str) -> list[str]:
    return [p.strip() for p in version.split(".") if p.strip()]


def version_at_least(required: str, sdk: str) -> bool:
    """osquery/utils/info/version.cpp versionAtLeast(v, sdk): is ``sdk`` at least ``required``?"""
    if required == "0.0.0" or sdk == "0.0.0":
        return True
    req, build = _split(required), _split(sdk)
    for index, chunk in enumerate(build):
        if len(req) <= index:
            return True
        try:
            a, b = int(chunk), int(req[index])
        except ValueError:
            if chunk < req[index]:
                return False
            continue
        if a < b:
            return False
        if a > b:
            return True
    return True


def validate_routes(routes: Sequence[Mapping[str, str]]) -> list[str]:
    """Problems osquery would have with a table's routes (stricter: it would silently mangle them)."""
    problems = []
    if not routes:
        problems.append("no routes (osquery: Invalid route info)")
    seen = set()
    for r in routes:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in r.items()):
            problems.append(f"non-string key or value in {r!r}")
            continue
        if r.get("id") != "column":
            problems.append(f"route is not a column: {r!r}")
            continue
        name = r.get("name", "")
        if not name or name in FORBIDDEN_COLUMN_NAMES or name in seen:
            problems.append(f"bad or duplicate column name {name!r}")
        seen.add(name)
        if r.get("type") not in VALID_TYPES:
            problems.append(f"column {name}: type {r.get('type')!r} is not one osquery accepts")
        op = r.get("op", "0")
        if not op.isdigit() or int(op) & ~sum(OP_BITS.values()):
            problems.append(f"column {name}: op {op!r} is not a combination of osquery's option bits")
    return problems


def conflict_message(name: str) -> str:
    """osquery 5's answer to a broadcast naming an item that is already registered (interface.cpp
    "Failed adding registry: " + registry_factory.cpp addBroadcast's message)."""
    return f"Failed adding registry: Registry item {name} conflicts with another item of the same name."


class ManagerHandler(ExtensionManager.Iface):
    """What osqueryd's ExtensionManagerHandler does, with a record of every registration."""

    def __init__(self, core_tables: Iterable[str] = CORE_TABLES) -> None:
        self.core_tables = set(core_tables)
        self.lock = threading.Lock()
        self.registered = threading.Condition(self.lock)
        self.extensions_: dict[int, InternalExtensionInfo] = {}
        self.registries: dict[int, dict[str, dict[str, list[dict[str, str]]]]] = {}
        self.attempts: list[tuple[InternalExtensionInfo, dict, ExtensionStatus]] = []
        self.next_uuid: int | None = None  # force the next uuid (tests of a stale socket)
        self.pings = 0

    def ping(self) -> ExtensionStatus:
        with self.lock:
            self.pings += 1
        return ExtensionStatus(code=0, message="pong", uuid=0)

    def call(self, registry, item, request):  # the manager is also an Extension; not used here
        return ExtensionResponse(status=ExtensionStatus(code=1, message="not supported by the stand-in"),
                                 response=[])

    def shutdown(self) -> None:
        pass

    def extensions(self) -> dict[int, InternalExtensionInfo]:
        with self.lock:
            return dict(self.extensions_)

    def options(self) -> dict[str, InternalOptionInfo]:
        flags = {"config_plugin": "filesystem", "logger_plugin": "filesystem", "extensions_interval": "3"}
        return {k: InternalOptionInfo(value=v, default_value=v, type="string") for k, v in flags.items()}

    def _register(self, info: InternalExtensionInfo, registry: dict) -> ExtensionStatus:
        if any(e.name == info.name for e in self.extensions_.values()):
            return ExtensionStatus(code=1, message="Duplicate extension registered")
        for change in SDK_VERSION_CHANGES:
            if not version_at_least(change, info.sdk_version or ""):
                return ExtensionStatus(code=1, message="Incompatible extension SDK version")
        uuid = self.next_uuid if self.next_uuid is not None else random.randint(1, 65535)
        self.next_uuid = None
        while uuid in self.extensions_:
            uuid = random.randint(1, 65535)
        existing = {(reg, name) for regs in self.registries.values() for reg, items in regs.items()
                    for name in items}
        # addBroadcast: every name of every registry is checked before any registry adds anything.
        for reg, items in (registry or {}).items():
            for name in items:
                if (reg == "table" and name in self.core_tables) or (reg, name) in existing:
                    return ExtensionStatus(code=1, message=conflict_message(name))
        for reg, items in (registry or {}).items():
            for _name, routes in items.items():
                if reg == "table" and not routes:  # TablePlugin::addExternal
                    return ExtensionStatus(code=1, message="Failed adding registry: Invalid route info")
        self.extensions_[uuid] = info
        self.registries[uuid] = registry
        return ExtensionStatus(code=0, message="OK", uuid=uuid)

    def registerExtension(self, info, registry):
        with self.registered:
            status = self._register(info, registry)
            self.attempts.append((info, registry, status))
            self.registered.notify_all()
            return status

    def deregisterExtension(self, uuid):
        with self.lock:
            if uuid not in self.extensions_:
                return ExtensionStatus(code=1, message="No extension UUID found", uuid=0)
            del self.extensions_[uuid]
            del self.registries[uuid]
            return ExtensionStatus(code=0, message="OK", uuid=uuid)

    def query(self, sql):
        return ExtensionResponse(status=ExtensionStatus(code=1, message="no SQL engine in the stand-in"),
                                 response=[])

    def getQueryColumns(self, sql):
        return self.query(sql)


class ManagerServer:
    """Serves a ManagerHandler on a UNIX socket, one thread per connection (as osqueryd does)."""

    def __init__(self, path: str, handler: ManagerHandler) -> None:
        self.path = path
        self.handler = handler
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._accept, name="osqueryd-manager", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        sock = TSocket.TSocket()
        sock.setHandle(conn)
        trans = TTransport.TBufferedTransport(sock)
        proto = TBinaryProtocol.TBinaryProtocol(trans)
        processor = ExtensionManager.Processor(self.handler)
        try:
            while not self._stop.is_set():
                processor.process(proto, proto)
        except (TTransport.TTransportException, OSError, EOFError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def close(self) -> None:
        """Stop answering: no more connections, live ones cut, socket file gone."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class CallError(Exception):
    """A call answered with a non-zero status."""

    def __init__(self, status: ExtensionStatus) -> None:
        super().__init__(f"code {status.code}: {status.message}")
        self.status = status


class ExtensionClient:
    """osqueryd's client for ``<socket>.<uuid>``: a fresh connection per request by default."""

    def __init__(self, path: str, timeout: float = 10.0, persistent: bool = False,
                 protocol: Any = TBinaryProtocol.TBinaryProtocol) -> None:
        self.path = path
        self.timeout = timeout
        self.persistent = persistent
        self.protocol = protocol  # benchmarks pass a C-accelerated one (osqueryd's client is C++)
        self._client: Any = None
        self._trans: Any = None  # the kept connection's transport

    def _open(self) -> tuple[Any, Any]:
        sock = TSocket.TSocket(unix_socket=self.path)
        sock.setTimeout(int(self.timeout * 1000))
        trans = TTransport.TBufferedTransport(sock)
        trans.open()
        return Extension.Client(self.protocol(trans)), trans

    def _do(self, method: str, *args: Any) -> Any:
        if self.persistent:
            if self._client is None:
                self._client, self._trans = self._open()
            return getattr(self._client, method)(*args)
        client, trans = self._open()
        try:
            return getattr(client, method)(*args)
        finally:
            trans.close()

    def close(self) -> None:
        if self._client is not None:
            self._trans.close()
            self._client = self._trans = None

    def ping(self) -> ExtensionStatus:
        return self._do("ping")

    def shutdown(self) -> None:
        self._do("shutdown")

    def call(self, registry: str, item: str, request: Mapping[str, str]) -> ExtensionResponse:
        return self._do("call", registry, item, dict(request))

    def columns(self, table: str) -> list[dict[str, str]]:
        r = self.call("table", table, {"action": "columns"})
        if r.status.code != 0:
            raise CallError(r.status)
        return r.response

    def generate(self, table: str, context: str | None = None) -> list[dict[str, str]]:
        """Rows, or CallError on a non-zero status (osquery fails the query then)."""
        request = {"action": "generate"}
        if context is not None:
            request["context"] = context
        r = self.call("table", table, request)
        if r.status.code != 0:
            raise CallError(r.status)
        return r.response


def osquery5_context(columns: Sequence[tuple[str, str]],
                     constraints: Mapping[str, Sequence[tuple[int, str]]] | None = None,
                     cols_used: Iterable[str] | None = None) -> str:
    """The context JSON exactly as osquery 5's TablePlugin::setRequestFromContext writes it.

    ``columns`` are (name, type) in the table's order. The constraint map is a std::map, so
    entries come sorted by column name, one per column; ``op`` is a number, ``expr`` a string.
    ``colsUsed`` defaults to every column; ``colsUsedBitset`` has bit i for column i.
    """
    constraints = constraints or {}
    unknown = set(constraints) - {n for n, _ in columns}
    if unknown:
        raise ValueError(f"constraints on unknown columns {unknown}")
    entries = [
        {"name": name, "list": [{"op": int(op), "expr": str(expr)} for op, expr in constraints.get(name, ())],
         "affinity": kind}
        for name, kind in sorted(columns)
    ]
    used = [n for n, _ in columns] if cols_used is None else list(cols_used)
    bitset = sum(1 << i for i, (n, _) in enumerate(columns) if n in used)
    doc: dict[str, Any] = {"constraints": entries, "colsUsed": used}
    if bitset:
        doc["colsUsedBitset"] = bitset
    return json.dumps(doc, separators=(",", ":"))


def pre30_context(columns: Sequence[tuple[str, str]],
                  constraints: Mapping[str, Sequence[tuple[int, str]]] | None = None) -> str:
    """The pre-3.0 form (boost property_tree write_json): every scalar a string, an empty list
    written as "", a "limit" key, no colsUsed."""
    constraints = constraints or {}
    entries = []
    for name, kind in sorted(columns):
        items = [{"op": str(int(op)), "expr": str(expr)} for op, expr in constraints.get(name, ())]
        entries.append({"name": name, "list": items if items else "", "affinity": kind})
    return json.dumps({"limit": "0", "constraints": entries}, separators=(",", ":"))


class OsqueryD:
    """Manager socket + the launched extension. Use as a context manager."""

    def __init__(self, command: Sequence[str] | None = None, *, timeout: int = 3, interval: int = 3,
                 verbose: bool = False, extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 core_tables: Iterable[str] = CORE_TABLES, launch: bool = True) -> None:
        self.command = list(command) if command is not None else default_command()
        self.timeout = timeout
        self.interval = interval
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.env = dict(env) if env is not None else None
        self._dir = tempfile.mkdtemp(prefix="osqd-", dir="/tmp")  # short: AF_UNIX paths are limited
        self.socket = os.path.join(self._dir, "osquery.em")
        self.handler = ManagerHandler(core_tables)
        self.manager: ManagerServer | None = ManagerServer(self.socket, self.handler)
        self.procs: list[subprocess.Popen] = []
        self._stderr_files: list[Path] = []
        self.launched_at = 0.0
        if launch:
            self.launch()

    # -- the extension process ----------------------------------------------------------

    def argv(self) -> list[str]:
        args = ["--verbose"] if self.verbose else []
        args += ["--socket", self.socket, "--timeout", str(self.timeout), "--interval", str(self.interval)]
        return [*self.command, *args, *self.extra_args]

    def launch(self) -> subprocess.Popen:
        """Start (another) extension process as osqueryd would."""
        err = Path(self._dir) / f"stderr.{len(self.procs)}"
        self._stderr_files.append(err)
        env = {**os.environ, **self.env} if self.env is not None else None
        with open(err, "wb") as f:
            self.launched_at = time.monotonic()
            proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=f, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    @property
    def proc(self) -> subprocess.Popen:
        return self.procs[-1]

    def stderr(self, index: int = -1) -> str:
        return self._stderr_files[index].read_text(errors="replace")

    def wait_registered(self, timeout: float = 60.0, count: int = 1) -> ExtensionStatus:
        """The status of the ``count``-th registration attempt (fails if the process dies first)."""
        deadline = time.monotonic() + timeout
        with self.handler.registered:
            while len(self.handler.attempts) < count:
                if self.proc.poll() is not None:
                    raise AssertionError(f"extension exited with {self.proc.returncode} before registering:\n"
                                         f"{self.stderr()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no registration within {timeout}s:\n{self.stderr()}")
                self.handler.registered.wait(min(left, 0.1))
            return self.handler.attempts[count - 1][2]

    def registration(self, index: int = -1) -> tuple[InternalExtensionInfo, dict, ExtensionStatus]:
        return self.handler.attempts[index]

    def extension_path(self, uuid: int | None = None) -> str:
        if uuid is None:
            uuid = self.handler.attempts[-1][2].uuid
        return f"{self.socket}.{uuid}"

    def wait_ready(self, timeout: float = 60.0) -> int:
        """Wait for a successful registration and a served ping (as extensionPathActive does)."""
        status = self.wait_registered(timeout)
        if status.code != 0:
            raise AssertionError(f"registration refused: {status.message}")
        deadline = time.monotonic() + timeout
        client = ExtensionClient(self.extension_path(status.uuid), timeout=2)
        while True:
            try:
                if client.ping().code == 0:
                    return status.uuid
            except (TTransport.TTransportException, OSError):
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"extension exited with {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"extension socket not served within {timeout}s")
            time.sleep(0.02)

    def client(self, timeout: float = 10.0, persistent: bool = False, **kw: Any) -> ExtensionClient:
        return ExtensionClient(self.extension_path(), timeout=timeout, persistent=persistent, **kw)

    def routes(self, table: str) -> list[dict[str, str]]:
        return self.handler.attempts[-1][1]["table"][table]

    def columns(self, table: str) -> list[tuple[str, str]]:
        return [(r["name"], r["type"]) for r in self.routes(table) if r.get("id") == "column"]

    def context(self, table: str, cols_used: Iterable[str] | None = None, pre30: bool = False,
                **equals: Iterable[Any]) -> str:
        """A context for ``table`` with ``column = v`` constraints (several values: an IN list)."""
        cons = {name: [(EQUALS, str(v)) for v in values] for name, values in equals.items()}
        if pre30:
            return pre30_context(self.columns(table), cons)
        return osquery5_context(self.columns(table), cons, cols_used)

    # -- stopping ------------------------------------------------------------------------

    def close_manager(self) -> None:
        """Stop answering, as when osqueryd exits: the extension should notice and exit."""
        if self.manager is not None:
            self.manager.close()
            self.manager = None

    def wait_exit(self, timeout: float, index: int = -1) -> int | None:
        try:
            return self.procs[index].wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.close_manager()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> OsqueryD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def python_command(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter that can import the tests' helper modules."""
    tests = str(Path(__file__).parent)
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {tests!r}); {code}"]


# -- a test-only table exercising the protocol ---------------------------------------------------
# Launched with probe_command(); it lives here (not in go_processes) so that the shipped extension
# serves only real tables. Control through the ADDITIONAL column `action`:
#   action = 'hold:DIR' create DIR/entered, then wait (at most 120 s) until DIR/release exists: a
#                       generate that is provably in progress until the test lets it go
#   action = 'fail'     raise inside generate      action = 'many:N'  N plain rows instead

PROBE_VALUE_ROWS_EXPECTED = [  # what osquery must receive for the three value rows, column by column
    {"idx": "1", "i": "", "b": "1", "u": "18446744073709551615", "d": "0.1", "t": "ab", "bl": "\ufffdbytes"},
    {"idx": "2", "i": "0", "b": "-9223372036854775808", "u": "", "d": "", "t": "", "bl": ""},
    {"idx": "3", "i": "3", "b": "9", "u": "", "d": "1e+300", "t": "caf\ufffd", "bl": "x"},
]


def probe_table(name: str = "probe") -> Any:
    import enum

    from go_processes.tables import Column, ColumnOptions, ColumnType, Table

    class Flag(enum.IntFlag):
        A = 1
        B = 8

    def value_rows() -> list[dict[str, Any]]:
        return [
            {"idx": 1, "i": None, "b": True, "u": 2**64 - 1, "d": 0.1, "t": "a\x00b", "bl": b"\xffbytes",
             "not_a_column": 1},
            {"idx": 2, "i": False, "b": -(2**63), "d": float("nan"), "t": None, "bl": None},
            {"idx": 3, "i": 3.9, "b": Flag.A | Flag.B, "u": float("inf"), "d": 1e300,
             "t": os.fsdecode(b"caf\xe9"), "bl": bytearray(b"x")},
        ]

    def generate(ctx: Any) -> list[dict[str, Any]]:
        for action in sorted(ctx.equals("action") or ()):
            if action.startswith("hold:"):
                held = Path(action[5:])
                (held / "entered").touch()
                deadline = time.monotonic() + 120
                while not (held / "release").exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            elif action == "fail":
                raise RuntimeError("probe failure\nsecond line")
        many = [a for a in (ctx.equals("action") or ()) if a.startswith("many:")]
        rows = ([{"idx": n, "t": "x" * 64} for n in range(int(many[0][5:]))] if many else value_rows())
        wanted = ctx.equals_int("idx")
        if wanted is not None:
            rows = [r for r in rows if r["idx"] in wanted]
        seen = json.dumps({
            "constraints": {k: [[c.op, c.expr] for c in v] for k, v in sorted(ctx.constraints.items()) if v},
            "cols_used": None if ctx.cols_used is None else sorted(ctx.cols_used),
        }, sort_keys=True)
        for r in rows:
            r["seen"] = seen
        return rows

    return Table(
        name=name,
        description="test probe",
        columns=(
            Column("idx", ColumnType.BIGINT, "row number", ColumnOptions.INDEX | ColumnOptions.OPTIMIZED),
            Column("i", ColumnType.INTEGER, ""),
            Column("b", ColumnType.BIGINT, ""),
            Column("u", ColumnType.UNSIGNED_BIGINT, ""),
            Column("d", ColumnType.DOUBLE, ""),
            Column("t", ColumnType.TEXT, ""),
            Column("bl", ColumnType.BLOB, ""),
            Column("seen", ColumnType.TEXT, "the parsed context, as JSON"),
            Column("action", ColumnType.TEXT, "control", ColumnOptions.ADDITIONAL | ColumnOptions.HIDDEN),
        ),
        generate=generate,
    )


def probe_command(*names: str) -> list[str]:
    """Run the extension's real entry point serving only probe tables (default: one named probe)."""
    names = names or ("probe",)
    return python_command(
        "import osqueryd; from go_processes.extension.main import main; "
        f"main(sys.argv[1:], [osqueryd.probe_table(n) for n in {list(names)!r}])"
    )
