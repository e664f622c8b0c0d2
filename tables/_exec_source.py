"""The exec event source behind go_process_events: a reader thread on the kernel's process
connector, the rows it keeps, what it lost and why, and its settings.

One reader thread takes each exec event and reads the process at once (``procs.READER.at_exec``:
a stat and an identity-cache hit for anything already known; for a new executable the file is
opened through /proc/<pid>/exe and the process's details read, and a detector thread reads the
file, so a slow read never delays the next event). Go execs are kept in a bounded
:class:`common.Buffer` (the newest ``events_max``; older ones are dropped and counted), pruned of
rows older than ``events_expiry`` when read. Nothing is lost silently: the kernel's drops
(ENOBUFS, after which the subscription is renewed), processes gone before they could be read and
rows over the bound are counted and shown by go_process_events_status.

A supervisor thread runs the reader: if the reader dies (any exception), the supervisor says so
and starts it again after a back-off (0.5 s doubling to 60 s; reset after a minute of running),
so the extension never goes down with it. Without the privilege to subscribe (CAP_NET_ADMIN) the
source stops and says so, as it does in a namespace the kernel's process connector does not serve
(a container without the host's pid, user or network namespace); every other table keeps serving.

Settings, first that is set (as for the vulnerability database): the extension's flags
``--events_expiry`` / ``--events_max``, the environment variables ``GO_PROCESSES_EVENTS_EXPIRY`` /
``GO_PROCESSES_EVENTS_MAX``, the lines ``events_expiry =`` / ``events_max =`` of the config file,
else 3600 s and 50,000 (osquery's own ``--events_expiry`` and ``--events_max`` defaults).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Literal

from ..buildinfo import Identity
from ..common import Buffer, Cache
from ..procs import READER, Exec, Opened
from ..vulndb import DEFAULT_CONFIG, ENV_CONFIG, VulnDBError, config_value
from . import _shared

log = logging.getLogger(__name__)

DEFAULT_EXPIRY = 3600
DEFAULT_MAX = 50_000
_MAX_MAX = 10_000_000  # a typo must not ask for unbounded memory
_SETTINGS = {"events_expiry": ("GO_PROCESSES_EVENTS_EXPIRY", DEFAULT_EXPIRY),
             "events_max": ("GO_PROCESSES_EVENTS_MAX", DEFAULT_MAX)}
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 60.0
_STEADY = 60.0  # a reader that ran this long starts the back-off afresh when it dies
# Between the kernel's switch of a process's executable and its stamp on the exec event: shorter
# than any program takes to start and exec again.
_EXEC_WINDOW_NS = 500_000
_SWITCH_INTERVAL = 0.0002  # seconds a thread may hold the GIL while another waits
_PENDING = 256  # new executables opened and waiting for the detector thread (each holds an fd)

_explicit: dict[str, int] = {}


def set_options(expiry: int | None = None, max_rows: int | None = None) -> None:
    """Use these (the extension's flags) instead of the environment, config file and default."""
    for name, value in (("events_expiry", expiry), ("events_max", max_rows)):
        if value is None:
            _explicit.pop(name, None)
        else:
            _explicit[name] = value


def settings() -> tuple[int, int, list[str]]:
    """(expiry in seconds, newest rows kept, problems with the settings found): a value that is
    not a whole number in range, or a config file we must not believe, is reported and the
    default used."""
    out: dict[str, int] = {}
    problems: list[str] = []
    config = os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG
    for name, (env, default) in _SETTINGS.items():
        value: object = _explicit.get(name)
        where = "flag"
        if value is None and os.environ.get(env):
            value, where = os.environ[env], env
        if value is None:
            try:
                value, where = config_value(config, name), config
            except VulnDBError as e:
                problems.append(f"{name}: {e.reason}")
                value = None
        try:
            number = default if value is None else int(str(value).strip())
        except ValueError:
            number = -1
        if not 1 <= number <= _MAX_MAX:
            problems.append(f"{name} = {value!r} ({where}) is not a whole number from 1 to {_MAX_MAX}; "
                            f"using {default}")
            number = default
        out[name] = number
    return out["events_expiry"], out["events_max"], problems


@dataclass(frozen=True, slots=True)
class ExecEvent:
    eid: int  # sequence number, as osquery's events have
    time: int  # unix seconds of the exec (the kernel's timestamp)
    exec: Exec


class Source:
    """The reader thread, its supervisor, the kept rows and the counters (one per extension)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.reader: threading.Thread | None = None
        self.expiry, self.max_rows = DEFAULT_EXPIRY, DEFAULT_MAX
        self.rows: Buffer[ExecEvent] = Buffer(self.max_rows)
        self.state = "stopped"  # running, restarting, no privilege, unsupported, stopped
        self.error = ""  # why it is not running, or why it last died
        self.since: float | None = None  # when the running subscription began
        self.problems: list[str] = []
        self.restarts = 0
        self.execs = 0  # exec events received
        self.go_execs = 0  # rows recorded
        self.kernel_drops = 0  # ENOBUFS: the kernel dropped events (one or more each time)
        self.gone = 0  # exited or exec'd again before they could be read
        self.backlog_drops = 0  # new executables not read: _PENDING were already waiting
        self._eid = 0
        self._count = threading.Lock()  # the reader and the detector thread both count
        self._switch = sys.getswitchinterval()
        # pid -> (CLOCK_MONOTONIC ns of its last read, the Go executable that read found)
        self._last_read: Cache[int, tuple[int, Identity | None]] = Cache(8192)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Read the settings and start the supervisor (which starts the reader); returns at once."""
        with self._lock:
            if self._supervisor is not None and self._supervisor.is_alive():
                return
            self.expiry, self.max_rows, self.problems = settings()
            for p in self.problems:
                log.warning("go_process_events: %s", p)
            self.rows = Buffer(self.max_rows)
            self.restarts = self.execs = self.go_execs = self.kernel_drops = self.gone = 0
            self.backlog_drops = self._eid = 0
            self.error = ""
            if not sys.platform.startswith("linux"):
                self.state, self.error = "unsupported", "the kernel process connector is Linux only"
                return
            self._stop.clear()
            self.state = "starting"
            # The reader must stat a new process within its first millisecond; while the detector
            # thread parses an executable it holds the GIL, which it would otherwise hand over
            # only every 5 ms.
            self._switch = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch, _SWITCH_INTERVAL))
            self._supervisor = threading.Thread(target=self._supervise, name="go_process_events supervisor",
                                                daemon=True)
            self._supervisor.start()

    def stop(self) -> None:
        """Stop the reader and its supervisor (within about a second)."""
        self._stop.set()
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.join(5)
        self._supervisor = None
        sys.setswitchinterval(self._switch)
        if self.state not in ("no privilege", "unsupported"):
            self.state, self.since = "stopped", None

    # -- threads ----------------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self._stop.is_set():
            began = time.monotonic()
            reader = threading.Thread(target=self._read, name="go_process_events reader", daemon=True)
            self.reader = reader
            try:
                reader.start()
                reader.join()
            except Exception as e:  # cannot start a thread (limits): back off as for a death
                self.error = f"reader could not start: {e}"
            if self._stop.is_set() or self.state in ("no privilege", "unsupported"):
                return
            if self.state == "running":  # it died without saying why (killed)
                self.error = "reader thread ended unexpectedly"
            self.state, self.since = "restarting", None
            if time.monotonic() - began >= _STEADY:
                backoff = _BACKOFF_FIRST
            log.warning("go_process_events: %s; restarting in %.1f s", self.error, backoff)
            if self._stop.wait(backoff):
                return
            self.restarts += 1
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _read(self) -> None:
        from ..procs._connector import Overrun, Subscription, Unsupported

        pending: queue.Queue[tuple[int, Opened] | None] = queue.Queue(_PENDING)
        detector = threading.Thread(target=self._detect, args=(pending,), name="go_process_events detector",
                                    daemon=True)
        try:
            try:
                sub = Subscription()
            except PermissionError as e:
                self.state = "no privilege"
                self.error = (f"no privilege: subscribing to the kernel's process connector needs "
                              f"CAP_NET_ADMIN (run as root): {e.strerror or e}")
                log.warning("go_process_events: %s; the table answers no rows", self.error)
                return
            except Unsupported as e:
                self.state, self.error = "unsupported", f"unsupported: {e}"
                log.warning("go_process_events: %s; the table answers no rows", self.error)
                return
            try:
                detector.start()
                self.state, self.since = "running", time.time()
                while not self._stop.is_set():
                    try:
                        events = sub.read()
                    except Overrun as e:
                        with self._count:
                            self.kernel_drops += 1
                        self._handle(e.events, pending)
                        sub.close()
                        sub = Subscription()
                        continue
                    self._handle(events, pending)
            finally:
                sub.close()
                self._finish(pending, detector)
        except BaseException as e:  # whatever kills the reader is the supervisor's to report
            self.error = f"reader died: {type(e).__name__}: {e}"
            self.state = "restarting"

    def _handle(self, events: list[tuple[int, int]], pending: queue.Queue[tuple[int, Opened] | None]) -> None:
        if not events:
            return
        # The kernel stamps events with CLOCK_MONOTONIC; the row's time is the wall clock then.
        offset = time.time() - time.monotonic()
        at_exec, last_read = READER.at_exec, self._last_read
        for tgid, ts in events:
            self.execs += 1
            # The exe link changes a moment before the kernel stamps the exec event: an exec
            # stamped before (or just after) our read of this pid's previous exec may be what that
            # read saw. Then that earlier exec was replaced before it could be read (a loss) and
            # this one was handled with it.
            before = last_read.get(tgid)
            if before is not None and ts < before[0]:
                self._lost()
                continue
            read_at = time.monotonic_ns()
            found = at_exec(tgid, _shared.DETECTOR)
            seen = found.process.exe_identity if isinstance(found, (Exec, Opened)) and found.process else None
            last_read.put(tgid, (read_at, seen))
            if (seen is not None and before is not None and before[1] == seen
                    and ts - before[0] < _EXEC_WINDOW_NS):
                self._lost()
                continue
            if found is None:
                continue
            when = int(ts / 1e9 + offset)
            if isinstance(found, Opened):  # a new executable: read on the detector thread
                try:
                    pending.put_nowait((when, found))
                except queue.Full:
                    found.close()
                    with self._count:
                        self.backlog_drops += 1
                continue
            self._record(when, found)

    def _detect(self, pending: queue.Queue[tuple[int, Opened] | None]) -> None:
        """The detector thread: reads the new executables the reader opened, in order."""
        while True:
            item = pending.get()
            if item is None:
                return
            when, opened = item
            try:
                found = opened.read(_shared.DETECTOR)
            except Exception as e:  # the detector returns errors as values; never let one end us
                log.warning("go_process_events: reading a new executable failed: %s", e)
                opened.close()
                continue
            if found is not None:
                self._record(when, found)

    def _finish(self, pending: queue.Queue[tuple[int, Opened] | None], detector: threading.Thread) -> None:
        """Stop the detector thread and close what it did not read."""
        if detector.is_alive():
            with contextlib.suppress(queue.Full):
                pending.put(None, timeout=2)
            detector.join(2)
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].close()

    def _record(self, when: int, found: Exec | Literal["gone"]) -> None:
        if not isinstance(found, Exec):
            self._lost()
            return
        with self._count:
            self._eid += 1
            self.go_execs += 1
            self.rows.put(ExecEvent(self._eid, when, found))

    def _lost(self) -> None:
        with self._count:
            self.gone += 1

    # -- what queries read ------------------------------------------------------------------

    def kept(self) -> tuple[list[ExecEvent], int]:
        """The rows within the expiry, oldest first, and how many were dropped over the bound."""
        limit = time.time() - self.expiry
        self.rows.expire(lambda e: e.time < limit)
        items, dropped = self.rows.snapshot()
        # Times of execs on different CPUs may arrive slightly out of order: filter, not bisect.
        return [e for e in items if e.time >= limit], dropped

    def running(self) -> bool:
        return self.state == "running"


SOURCE = Source()
