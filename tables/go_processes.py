"""The go_processes table: every running Go program, what it was built from, and its gops agent.

Named to join osquery's own tables (``processes``, ``listening_ports``) by ``pid``. Only Go
processes are rows. ``pid =``/``IN`` constraints look up those pids without walking every process
(a JOIN calls generate once per outer row). What costs a read per row is done only when the query
reads a column that needs it (as osquery's processes.cpp does): the agent columns, uid
(/proc/<pid>/status), path and on_disk (a readlink), the cgroup columns (/proc/<pid>/cgroup) and
the namespace columns (two readlinks of /proc/<pid>/ns/*), and fips_mode, godebug and
godebug_insecure (the GODEBUG variable of /proc/<pid>/environ, nothing else of it, by the rules in
``buildinfo/_godebug.py``). The container columns say which
container and Kubernetes pod a process runs in, named to join osquery's tables:
``JOIN docker_containers ON id = container_id``, ``JOIN process_namespaces USING (pid)``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..buildinfo import BuildInfo
from ..buildinfo import godebug as rules
from ..common import Cache
from ..procs import Placement, Process, godebug, gops_agent, kernel_fips, placement, running_go
from . import _build_columns as build_columns
from . import _shared
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnOptions as Opt
from ._api import ColumnType as T

_AGENT_COLUMNS = ("agent", "agent_port", "agent_address")
_CGROUP_COLUMNS = ("container_id", "container_runtime", "pod_uid", "cgroup_path")
_NAMESPACE_COLUMNS = ("pid_namespace", "mnt_namespace")
PLACEMENT_COLUMNS = _CGROUP_COLUMNS + _NAMESPACE_COLUMNS  # named as procs.Placement's fields
_GODEBUG_COLUMNS = ("fips_mode", "godebug", "godebug_insecure")

COLUMNS = (
    Column("pid", T.BIGINT, "Process (or thread group) ID", Opt.INDEX | Opt.OPTIMIZED),
    Column("ppid", T.BIGINT, "Parent process ID"),
    Column("exe", T.TEXT,
           "Process name as gops shows it: comm, or argv[0]'s base name when comm is truncated"),
    Column("path", T.TEXT,
           "Path to the executable as the process sees it (inside its chroot or container), without the "
           "' (deleted)' suffix"),
    build_columns.column("version"),
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
    Column("container_id", T.TEXT,
           "Full id of the container the process runs in, as its runtime names it (docker, containerd, "
           "cri-o, podman: 64 hex digits; lxc, systemd-nspawn: the container's name), read from its "
           "cgroup path; empty on the host or when the path is not a layout a runtime builds"),
    Column("container_runtime", T.TEXT,
           "Runtime the cgroup path names: docker, containerd, cri-o, podman, lxc or systemd-nspawn; "
           "empty when it names none (also for containerd/cri-dockerd pods under the cgroupfs driver)"),
    Column("pod_uid", T.TEXT,
           "UID of the Kubernetes pod whose cgroup holds the container; empty outside pods"),
    Column("cgroup_path", T.TEXT,
           "The process's cgroup path as osquery's processes.cgroup_path spells it (first line of "
           "/proc/<pid>/cgroup)"),
    Column("pid_namespace", T.TEXT, "pid namespace inode, as in osquery's process_namespaces"),
    Column("mnt_namespace", T.TEXT, "mnt namespace inode, as in osquery's process_namespaces"),
    *build_columns.columns_except("version"),
    Column("fips_mode", T.TEXT,
           "Whether the Go Cryptographic Module runs in FIPS 140 mode (crypto/fips140.Enabled): off, on, "
           "only or debug, from the fips140 setting of the process's GODEBUG over the build's default "
           "(auto, of Red Hat's Go toolchain: on when the kernel runs in FIPS mode, else off); empty "
           "before Go 1.24; unknown when the environment cannot be read"),
    Column("godebug", T.TEXT,
           "GODEBUG settings in effect that differ from the defaults of the program's Go version: "
           "godebug_default overlaid by the GODEBUG variable the process was started with, name=value "
           "sorted, comma-separated; settings that version ignores are left out, and a ? marks one "
           "unknown to the settings table (a program newer than it); unknown when the environment "
           "cannot be read (denied, or over 256 KiB)"),
    Column("godebug_insecure", T.TEXT,
           "The settings of godebug that turn insecure behaviour back on (tlsrsakex=1, tls3des=1, "
           "tls10server=1, x509sha1=1 ...; the list is in buildinfo/_godebug.py), comma-separated; "
           "unknown when the environment cannot be read"),
)


def generate(context: QueryContext) -> Iterator[Row]:
    pids = context.equals_int("pid")
    with_agent = context.uses(*_AGENT_COLUMNS)
    with_cgroup = context.uses(*_CGROUP_COLUMNS)
    with_ns = context.uses(*_NAMESPACE_COLUMNS)
    with_uid = context.uses("uid")
    with_path = context.uses("path", "on_disk")
    with_godebug = context.uses(*_GODEBUG_COLUMNS)
    for proc, info in running_go(_shared.DETECTOR, pids, uid=with_uid, path=with_path):
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
        if with_cgroup or with_ns:
            row.update(placement_values(placement(proc.pid, cgroup=with_cgroup, namespaces=with_ns,
                                                  start_time=proc.start_time)))
        row.update(build_columns.values(info))
        if with_godebug:
            _godebug_columns(row, proc, info)
        yield row


def placement_values(where: Placement) -> dict[str, object]:
    """The container and namespace columns of a row, from where the process runs."""
    return {name: getattr(where, name) for name in PLACEMENT_COLUMNS}


# (id(info), the kernel's FIPS mode) -> (info, fips_mode, godebug, godebug_insecure) of a process
# without a GODEBUG variable (nearly every one): then a pure function of those two, memoised as
# build_columns.values is.
_WITHOUT_ENV: Cache[tuple[int, bool | None], tuple[BuildInfo, str, str, str]] = Cache(4096)


def _godebug_columns(row: dict[str, object], proc: Process, info: BuildInfo) -> None:
    env = godebug(proc)
    host_fips = kernel_fips()
    if env == "":
        key = (id(info), host_fips)
        cached = _WITHOUT_ENV.get(key)
        if cached is None or cached[0] is not info:
            cached = (info, *_posture(info, env, host_fips))
            _WITHOUT_ENV.put(key, cached)
        _, row["fips_mode"], row["godebug"], row["godebug_insecure"] = cached
        return
    row["fips_mode"], row["godebug"], row["godebug_insecure"] = _posture(info, env, host_fips)


def _posture(info: BuildInfo, env: str | None, host_fips: bool | None) -> tuple[str, str, str]:
    """fips_mode, godebug and godebug_insecure for the GODEBUG variable ``env`` (None: unreadable)."""
    fips_mode = rules.fips_mode(info, env, env is not None, host_fips)
    if env is None:
        return fips_mode, "unknown", "unknown"
    settings = rules.effective(info, env)
    return fips_mode, rules.render(settings), rules.render(rules.insecure(settings))


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
        "SELECT container_runtime, container_id, pod_uid, pid, exe, version FROM go_processes "
        "WHERE container_id != '';",
        "SELECT c.name, g.pid, g.exe, g.version FROM go_processes g "
        "JOIN docker_containers c ON c.id = g.container_id;",
    ),
)
