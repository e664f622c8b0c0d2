"""The go_process_events_status table: one row saying whether the exec event source behind
go_process_events runs, since when, and every loss it counted, so that an empty or short answer
is never silent (no privilege, a reader that died and was restarted, a kernel that dropped events).
"""

from __future__ import annotations

from collections.abc import Iterator

from ._api import Column, QueryContext, Row, Table
from ._api import ColumnType as T
from ._exec_source import SOURCE

COLUMNS = (
    Column("running", T.INTEGER, "1 when the reader is subscribed to exec events, else 0"),
    Column("state", T.TEXT,
           "running, starting, restarting (the reader died; it is restarted after a back-off), "
           "no privilege (subscribing needs CAP_NET_ADMIN), unsupported (not Linux, or a pid, user or "
           "network namespace other than the host's: the kernel serves only those) or stopped"),
    Column("since", T.BIGINT,
           "When the running subscription began, seconds since the epoch; NULL when not running"),
    Column("error", T.TEXT,
           "Why the source is not running, or why the reader last died; empty when it never did"),
    Column("restarts", T.BIGINT, "Times the reader was restarted after it died"),
    Column("execs", T.BIGINT, "Exec events received (of any program)"),
    Column("go_execs", T.BIGINT, "Execs of Go programs recorded as rows"),
    Column("kernel_drops", T.BIGINT,
           "Times the kernel dropped events because the reader fell behind (ENOBUFS; each time one "
           "or more events are lost and the subscription is renewed)"),
    Column("gone_before_read", T.BIGINT,
           "Execs whose process exited or exec'd again before its executable could be read"),
    Column("backlog_drops", T.BIGINT,
           "New executables left unread because 256 opened ones were already waiting to be read"),
    Column("dropped_over_bound", T.BIGINT, "Rows dropped, oldest first, to keep at most events_max"),
    Column("rows", T.BIGINT, "Rows go_process_events holds now"),
    Column("events_expiry", T.BIGINT, "Seconds a row is kept (setting events_expiry)"),
    Column("events_max", T.BIGINT, "Rows kept at most (setting events_max)"),
    Column("settings_error", T.TEXT, "Problems with the settings (then defaults are used); empty when none"),
)


def generate(context: QueryContext) -> Iterator[Row]:
    s = SOURCE
    events, dropped = s.kept()
    yield {
        "running": 1 if s.running() else 0,
        "state": s.state,
        "since": int(s.since) if s.since is not None and s.running() else None,
        "error": s.error,
        "restarts": s.restarts,
        "execs": s.execs,
        "go_execs": s.go_execs,
        "kernel_drops": s.kernel_drops,
        "gone_before_read": s.gone,
        "backlog_drops": s.backlog_drops,
        "dropped_over_bound": dropped,
        "rows": len(events),
        "events_expiry": s.expiry,
        "events_max": s.max_rows,
        "settings_error": "; ".join(s.problems),
    }


TABLE = Table(
    name="go_process_events_status",
    description="The exec event source behind go_process_events: whether it runs, since when, why "
    "not (no privilege), and every loss it counted. One row.",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT running, state, since, error, kernel_drops, gone_before_read, dropped_over_bound "
        "FROM go_process_events_status;",
    ),
)
