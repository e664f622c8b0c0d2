"""The process side: which processes run, what executable each one runs, and whether a gops agent
listens inside it. One public API; the platform module is chosen once, at import (as psutil does):
``_linux`` walks /proc directly, ``_psutil`` serves every other platform.

Nothing here parses executables: callers hand :func:`executable` a ``buildinfo.Detector``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..buildinfo import BuildInfoError, Detector, FuncTable, Identity, Result


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
    exe_identity: Identity | None  # (dev, ino, size, mtime_ns) of the executable file itself


@dataclass(frozen=True, slots=True)
class Agent:
    """What was found of a gops agent for one process."""

    pidfile: str  # the <config dir>/<pid> path, as the target process sees it
    port: int  # the port number the pidfile holds
    address: str  # the address the process listens on for that port; "" when not listening
    listening: bool  # True only when the process itself has a TCP socket in LISTEN on ``port``


if sys.platform.startswith("linux"):
    from . import _linux as _platform
else:  # pragma: no cover - exercised on macOS/Windows/BSD only
    from . import _psutil as _platform  # type: ignore[no-redef]


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


def executables(
    detector: Detector,
    pids: Iterable[int] | None = None,
    keep: Callable[[Result], bool] | None = None,
) -> Iterator[tuple[Process, Result]]:
    """:func:`processes` paired with :func:`executable`'s answer, keeping only those ``keep``
    accepts. The answer comes first (from the detector's cache, by the executable's identity), so
    a rejected process costs one stat: a full scan of a host where few processes are Go stays cheap.
    Processes whose executable cannot be identified are left out.
    """
    for proc, result in _platform.scan(pids, detector, keep):
        if result is not None:
            yield proc, result


def gops_agent(proc: Process) -> Agent | None:
    """The gops agent of ``proc`` if its pidfile exists in the target's own config dir, else None."""
    return _platform.gops_agent(proc)


__all__ = ["Agent", "Process", "executable", "executable_functions", "executables", "gops_agent",
           "processes"]
