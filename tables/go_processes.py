"""The go_processes table: every running Go program, what it was built from, and its gops agent.

Named to join osquery's own tables (``processes``, ``listening_ports``) by ``pid``. Only Go
processes are rows. ``pid =``/``IN`` constraints look up those pids without walking every process
(a JOIN calls generate once per outer row); the agent columns are computed only when the query
reads one of them.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..procs import go_executables, gops_agent
from . import _executable as executable
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnOptions as Opt
from ._api import ColumnType as T
from ._shared import DETECTOR

_AGENT_COLUMNS = ("agent", "agent_port", "agent_address")

COLUMNS = (
    Column("pid", T.BIGINT, "Process (or thread group) ID", Opt.INDEX | Opt.OPTIMIZED),
    Column("ppid", T.BIGINT, "Parent process ID"),
    Column("exe", T.TEXT,
           "Process name as gops shows it: comm, or argv[0]'s base name when comm is truncated"),
    Column("path", T.TEXT,
           "Path to the executable as the process sees it, without the ' (deleted)' suffix"),
    executable.column("version"),
    Column("agent", T.INTEGER,
           "1 when a gops agent is really listening: the process's own pidfile names a port on which the "
           "process itself holds a TCP socket in LISTEN; else 0"),
    Column("agent_port", T.INTEGER, "TCP port of the listening gops agent; NULL when none"),
    Column("agent_address", T.TEXT,
           "Local address the gops agent listens on (127.0.0.1 by default; 0.0.0.0 or :: is exposed); "
           "empty when none"),
    Column("on_disk", T.INTEGER,
           "1 the executable is present on disk, 0 it was deleted, -1 unknown (as in processes)"),
    Column("uid", T.BIGINT, "Real user ID of the process"),
    *executable.columns_except("version"),
)


def generate(context: QueryContext) -> Iterator[Row]:
    pids = context.equals_int("pid")
    with_agent = context.uses(*_AGENT_COLUMNS)
    for proc, info in go_executables(DETECTOR, pids):
        agent = gops_agent(proc) if with_agent else None
        listening = agent is not None and agent.listening
        row: dict[str, object] = {
            "pid": proc.pid,
            "ppid": proc.ppid,
            "exe": proc.name,
            "path": proc.path,
            "agent": 1 if listening else 0,
            "agent_port": agent.port if agent is not None and listening else None,
            "agent_address": agent.address if agent is not None and listening else "",
            "on_disk": proc.on_disk,
            "uid": proc.uid if proc.uid >= 0 else None,
        }
        row.update(executable.values(info, proc.exe_identity))
        yield row


TABLE = Table(
    name="go_processes",
    description="Running Go programs: Go version, main module, build settings and gops agent, "
    "one row per process.",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT pid, exe, version, module, path FROM go_processes;",
        "SELECT version, COUNT(*) AS processes FROM go_processes GROUP BY version ORDER BY processes DESC;",
        "SELECT p.pid, p.exe, p.version, l.address, l.port FROM listening_ports l "
        "JOIN go_processes p USING (pid);",
        "SELECT g.pid, g.exe, g.version, p.cmdline, p.start_time FROM go_processes g "
        "JOIN processes p USING (pid);",
        "SELECT pid, exe, agent_address, agent_port FROM go_processes "
        "WHERE agent = 1 AND agent_address NOT IN ('127.0.0.1', '::1');",
        "SELECT pid, exe, path FROM go_processes WHERE on_disk = 0;",
        "SELECT pid, exe, module, vcs_revision, vcs_modified FROM go_processes WHERE vcs_modified = 1;",
        "SELECT * FROM go_processes WHERE pid IN (SELECT pid FROM processes WHERE name = 'dockerd');",
    ),
)
