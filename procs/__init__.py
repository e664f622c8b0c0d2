"""The process side: which processes run, what executable each one runs, and whether a gops agent
listens inside it. One public API; the platform module is chosen once, at import (as psutil does):
``_linux`` walks /proc directly, ``_psutil`` serves every other platform.

Nothing here parses executables: callers hand :func:`executable` a ``buildinfo.Detector``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..buildinfo import BuildInfo, BuildInfoError, Detector, FuncTable, Identity, Result


@dataclass(frozen=True, slots=True)
class Process:
    """One live, non-zombie, user-space process (a thread group leader, never a thread)."""

    pid: int
    ppid: int
    name: str  # as gops shows it: comm, or argv[0]'s base name when comm is truncated
    path: str  # the executable's path as the process sees it, without " (deleted)"; "" unknown
    on_disk: int  # 1 the executable is present on disk, 0 deleted, -1 unknown (as osquery's processes)
    uid: int  # real uid; -1 unknown
    start_time: int  # platform start-time stamp: with pid it names one process instance
    exe_identity: Identity | None  # (dev, ino, size, mtime_ns, ctime_ns) of the executable itself


@dataclass(frozen=True, slots=True)
class Agent:
    """What was found of a gops agent for one process."""

    pidfile: str  # the <config dir>/<pid> path, as the target process sees it
    port: int  # the port number the pidfile holds
    address: str  # the address the process listens on for that port; "" when not listening
    listening: bool  # True only when the process itself has a TCP socket in LISTEN on ``port``


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a process runs: its cgroup, the container and pod that cgroup names, and its pid and
    mount namespaces. Every field is "" when unknown or not applicable (a host process)."""

    cgroup_path: str  # as osquery's processes.cgroup_path: the first line of /proc/<pid>/cgroup
    container_id: str  # the runtime's full id (docker, containerd, cri-o, podman) or lxc/machine name
    container_runtime: str  # docker, containerd, cri-o, podman, lxc, systemd-nspawn, or ""
    pod_uid: str  # Kubernetes pod uid, dashes restored
    pid_namespace: str  # namespace inodes as decimal text, as osquery's process_namespaces
    mnt_namespace: str


if sys.platform.startswith("linux"):
    from . import _cgroup
    from . import _linux as _platform
else:  # pragma: no cover - exercised on macOS/Windows/BSD only
    from . import _psutil as _platform  # type: ignore[no-redef]

    _cgroup = None  # type: ignore[assignment]


def processes(pids: Iterable[int] | None = None) -> Iterator[Process]:
    """Live processes; only ``pids`` when given (without walking every process).

    A process that exits mid-scan or cannot be read is left out; nothing is raised for it.
    """
    return _platform.processes(pids)


def executable_functions(proc: Process, detector: Detector) -> FuncTable | BuildInfoError | None:
    """The function table (``buildinfo.FuncTable``, or the ``BuildInfoError`` that prevented it)
    of the file ``proc`` runs, opened as :func:`executable` opens it and cached by the detector
    under the same identity; None when the executable cannot be identified."""
    return _platform.executable_functions(proc, detector)


def executable(proc: Process, detector: Detector) -> Result | None:
    """The detector's answer for the file ``proc`` runs (read through the process itself, e.g.
    /proc/<pid>/exe, so deleted and other-namespace executables are read correctly); None when the
    executable cannot be identified (kernel threads, permission denied, the process exited)."""
    return _platform.executable(proc, detector)


def executables(detector: Detector, pids: Iterable[int] | None = None) -> Iterator[tuple[Process, Result]]:
    """:func:`processes` paired with :func:`executable`'s answer (a BuildInfo or the error that
    says why there is none). Processes whose executable cannot be identified are left out."""
    for proc, result in _platform.scan(pids, detector):
        if result is not None:
            yield proc, result


def go_executables(
    detector: Detector, pids: Iterable[int] | None = None, uid: bool = True, path: bool = True
) -> Iterator[tuple[Process, BuildInfo]]:
    """The Go processes only, with their build info. The answer comes first (from the detector's
    cache, by the executable's identity), so a process that is not Go costs one stat: a full scan
    of a host where few processes are Go stays cheap. ``uid=False`` / ``path=False``: the caller
    does not need ``Process.uid`` / ``Process.path`` and ``on_disk``, which are then left unknown
    (-1, "", -1) and not read."""
    for proc, result in _platform.scan(pids, detector, go_only=True, uid=uid, path=path):
        if isinstance(result, BuildInfo):
            yield proc, result


def gops_agent(proc: Process) -> Agent | None:
    """The gops agent of ``proc`` if its pidfile exists in the target's own config dir, else None."""
    return _platform.gops_agent(proc)


def placement(
    pid: int, cgroup: bool = True, namespaces: bool = True, start_time: int | None = None
) -> Placement:
    """Where ``pid`` runs, from /proc/<pid>/cgroup and /proc/<pid>/ns/* only (no runtime is asked;
    the cgroup layouts understood are listed in ``procs/_cgroup.py``). ``cgroup=False`` or
    ``namespaces=False`` skip those reads (their fields stay ""), so callers pay only for what
    they show. ``start_time`` (``Process.start_time``) names the process instance, whose pid
    namespace is then read once: a task never leaves its pid namespace. Linux only: empty
    elsewhere."""
    if _cgroup is None:  # pragma: no cover - not Linux
        return Placement("", "", "", "", "", "")
    path = cid = runtime = pod = pid_ns = mnt_ns = ""
    if cgroup:
        parsed = _cgroup.cgroups(pid)
        path = parsed.path
        if parsed.container is not None:
            cid, runtime, pod = parsed.container.id, parsed.container.runtime, parsed.container.pod_uid
    if namespaces:
        pid_ns, mnt_ns = _cgroup.pid_namespace(pid, start_time), _cgroup.namespace(pid, "mnt")
    return Placement(path, cid, runtime, pod, pid_ns, mnt_ns)


__all__ = ["Agent", "Placement", "Process", "executable", "executable_functions", "executables",
           "go_executables", "gops_agent", "placement", "processes"]
