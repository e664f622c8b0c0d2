"""The go_process_events table: every exec of a Go program since the extension started, even one
that exits before any query, with its Go version and main module (osquery's process_events, for
Go programs only).

Rows come from the exec event source (``_exec_source``): the kernel's process connector, read on
a thread from the extension's start. ``time`` constraints (``>``, ``>=``, ``<``, ``<=``, ``=``,
so also ``BETWEEN``) are applied here; SQLite re-checks every predicate on the rows.
go_process_events_status says whether the source runs and what it lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import _build_columns as build_columns
from ._api import PLAIN_INT, Column, ColumnOptions, QueryContext, Row, Table
from ._api import ColumnType as T
from ._api import Operator as Op
from ._exec_source import SOURCE
from .go_processes import PLACEMENT_COLUMNS, placement_values
from .go_processes import TABLE as _PROCESSES

COLUMNS = (
    Column("time", T.BIGINT, "Time of the exec, seconds since the epoch (the kernel's timestamp)",
           ColumnOptions.ADDITIONAL),
    Column("pid", T.BIGINT, "Process ID"),
    Column("ppid", T.BIGINT, "Parent process ID at the exec"),
    Column("uid", T.BIGINT, "Real user ID of the process at the exec"),
    Column("path", T.TEXT,
           "Path of the executable as the process saw it at the exec, without the ' (deleted)' suffix"),
    Column("cmdline", T.TEXT, "Command line (argv joined by spaces, at most 8 KiB), as in process_events"),
    build_columns.column("version"),
    *(_PROCESSES.column(name) for name in PLACEMENT_COLUMNS),
    *build_columns.columns_except("version"),
    Column("eid", T.BIGINT, "Event sequence number, increasing from 1 since the extension started"),
)

_TESTS: dict[int, Callable[[int, int], bool]] = {
    Op.EQUALS: lambda t, v: t == v,
    Op.GREATER_THAN: lambda t, v: t > v,
    Op.GREATER_THAN_OR_EQUALS: lambda t, v: t >= v,
    Op.LESS_THAN: lambda t, v: t < v,
    Op.LESS_THAN_OR_EQUALS: lambda t, v: t <= v,
}


def _time_filter(context: QueryContext) -> list[tuple[Callable[[int, int], bool], int]]:
    """The ``time`` constraints that can be applied exactly: a value that is not a plain integer
    (SQLite also compares 1.7e9 or '1700000000.5') is left to SQLite's re-check."""
    out = []
    for c in context.constraints_on("time"):
        test = _TESTS.get(c.op)
        if test is not None and PLAIN_INT.fullmatch(c.expr):
            out.append((test, int(c.expr)))
    return out


def generate(context: QueryContext) -> Iterator[Row]:
    events, _ = SOURCE.kept()
    if not SOURCE.running():
        context.notice(f"go_process_events: the exec event source is not running ({SOURCE.state}"
                       f"{': ' + SOURCE.error if SOURCE.error else ''}); see go_process_events_status")
    tests = _time_filter(context)
    for event in events:
        if not all(test(event.time, value) for test, value in tests):
            continue
        ex = event.exec
        proc, where = ex.process, ex.placement
        row: dict[str, object] = {
            "time": event.time,
            "pid": proc.pid,
            "ppid": proc.ppid,
            "uid": proc.uid if proc.uid >= 0 else None,
            "path": proc.path,
            "cmdline": ex.cmdline,
            **placement_values(where),
            "eid": event.eid,
        }
        row.update(build_columns.values(ex.info))
        yield row


TABLE = Table(
    name="go_process_events",
    description="Every exec of a Go program since the extension started, read at the exec (short-lived "
    "and deleted executables included) from the kernel's process connector; rows are kept for "
    "events_expiry seconds (default 3600), at most the newest events_max (default 50,000). Needs "
    "CAP_NET_ADMIN (root); go_process_events_status says whether it runs and what was lost.",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT time, pid, path, cmdline, version, module FROM go_process_events "
        "WHERE time > CAST(strftime('%s', 'now') AS INTEGER) - 600;",
        "SELECT module, version, COUNT(*) AS execs FROM go_process_events "
        "GROUP BY module, version ORDER BY execs DESC;",
        "SELECT time, path, version, container_id FROM go_process_events WHERE container_id != '';",
    ),
    start=SOURCE.start,
    stop=SOURCE.stop,
)
