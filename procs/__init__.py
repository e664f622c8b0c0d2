"""The process side: which processes run, what executable each one runs, and whether a gops agent
listens inside it.

One process reader (:class:`Reader`) above the platform modules, which give primitives only:
list pids, stat one pid's executable, read one pid for the fields asked, open its executable as
that process sees it, and the gops agent check. Detection (through a ``buildinfo.Detector``),
the per-scan memo and the Go filter are here, once. The platform module is chosen at import (as
psutil does): ``_linux`` walks /proc directly, ``_psutil`` serves every other platform.

What a scan reads follows from the caller's flags, and every flag defaults to cheap: ``uid`` and
``path`` are read only when asked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterable, Iterator
from types import ModuleType
from typing import Literal

from ..buildinfo import (
    BuildInfo,
    BuildInfoError,
    Detector,
    FuncTable,
    Identity,
    Result,
    UnreadableFile,
    identity_of,
)
from ..common import GONE, meaning
from ._model import Agent, Exec, Library, Placement, Process

if sys.platform.startswith("linux"):
    from . import _cgroup
    from . import _linux as _platform
else:  # pragma: no cover - exercised on macOS/Windows/BSD only
    from . import _psutil as _platform  # type: ignore[no-redef]

    _cgroup = None  # type: ignore[assignment]

_MEMO_MAX = 4096


class Reader:
    """Processes and their executables, over one platform module's primitives."""

    __slots__ = ("_p",)

    def __init__(self, platform: ModuleType) -> None:
        self._p = platform

    def scan(self, pids: Iterable[int] | None, detector: Detector | None = None, go_only: bool = False,
             uid: bool = False, path: bool = False) -> Iterator[tuple[Process, Result | None]]:
        """Processes with the detector's answer for each; with ``go_only`` a process whose answer
        is not BuildInfo is dropped before anything more is read about it. A process that cannot
        be read is left out; nothing is raised. ``uid`` / ``path``: read ``Process.uid`` /
        ``Process.path`` and ``on_disk``; otherwise they are unknown (-1, "", -1)."""
        p = self._p
        exe, read, opener = p.exe, p.read, p.exe_opener
        constrained = pids is not None
        memo: dict[Identity, Result] = {}  # many processes share a binary: skip the detector's lock
        for pid in p.candidates(pids):
            seen = exe(pid)
            if seen is None:
                continue  # gone, a kernel thread or a zombie
            identity, handle = seen
            result: Result | None = None
            if detector is not None and identity is not None:
                result = memo.get(identity)
                if result is None:
                    # A warm scan finds the answer cached: no opener is built for it.
                    result = detector.cached(identity)
                    if result is None:
                        result = detector.detect(identity, opener(pid, handle))
                    # An UnreadableFile is this process's (it exited or exec'd before the open),
                    # not the binary's: the next process on the same file is read for itself.
                    if len(memo) < _MEMO_MAX and not isinstance(result, UnreadableFile):
                        memo[identity] = result
            if go_only and not isinstance(result, BuildInfo):
                continue
            proc = read(pid, identity, handle, uid, path, constrained)
            if proc is not None:
                yield proc, result

    def libraries(self, pids: Iterable[int] | None, detector: Detector, uid: bool = False,
                  path: bool = False) -> Iterator[tuple[Process, list[tuple[Library, BuildInfo]]]]:
        """Every process (Go or not) that maps Go objects other than its own executable, with
        them: c-shared libraries, plugins. Read only when asked (the maps are the dear part):
        only executable file-backed mappings, each distinct file stat'ed and detected once per
        call, a non-Go file a cache hit in ``detector`` after its first read (by identity)."""
        p = self._p
        constrained = pids is not None
        # maps' "dev inode" -> (identity, answer, where reopens it) for this call: each file once.
        seen: dict[bytes, tuple[Identity, Result, bool]] = {}
        for pid in p.candidates(pids):
            exe = p.exe(pid)
            if exe is None:
                continue  # gone, a kernel thread or a zombie: nothing mapped
            identity, handle = exe
            found: list[tuple[Library, BuildInfo]] = []
            for key, region, mapped_path in p.mappings(pid):
                known = seen.get(key)
                if known is None:
                    at = p.mapped(pid, key, region, mapped_path)
                    if at is None:
                        continue  # not remembered: another process may map it readably
                    lib_identity, where = at
                    result = detector.cached(lib_identity)  # libc and co: a hit, no opener built
                    if result is None:
                        opener = p.library_opener(pid, p.library(pid, mapped_path, lib_identity, where))
                        result = detector.detect(lib_identity, opener)
                    known = (lib_identity, result, bool(where))
                    if not isinstance(result, UnreadableFile) and len(seen) < _MEMO_MAX:
                        seen[key] = known
                lib_identity, result, by_mapping = known
                # The process's own executable is go_processes' row, not a library.
                if isinstance(result, BuildInfo) and lib_identity != identity:
                    found.append((p.library(pid, mapped_path, lib_identity, region if by_mapping else ""),
                                  result))
            if not found:
                continue
            proc = p.read(pid, identity, handle, uid, path, constrained)
            if proc is not None:
                yield proc, found

    def library_functions(self, proc: Process, lib: Library,
                          detector: Detector) -> FuncTable | BuildInfoError:
        return detector.functions(lib.identity, self._p.library_opener(proc.pid, lib))

    def at_exec(self, pid: int, detector: Detector) -> Exec | Opened | Literal["gone"] | None:
        """What ``pid`` runs right after an exec event: an :class:`Exec` for a Go program whose
        executable the detector knows, None when it knows it is not Go (one stat and a cache hit),
        ``"gone"`` (:data:`common.GONE`) when the process exited or exec'd again before it could be
        read, or, for an executable not seen before, an :class:`Opened`: the file opened through
        /proc/<pid>/exe at once and the process's details read, so that the (slower) detection
        can run later, even after the process exited or its file was deleted."""
        p = self._p
        seen = p.exe(pid)
        if seen is None:
            return GONE
        identity, handle = seen
        if identity is None:
            return None  # not ours to read
        result = detector.cached(identity)
        if result is not None and not isinstance(result, BuildInfo):
            return None
        fd = -1
        if result is None:
            try:
                fd = p.exe_opener(pid, handle)()
            except OSError as e:
                return GONE if meaning(e) == GONE else None
        try:
            proc = p.read(pid, identity, handle, True, True, True)
            if proc is None:
                # Unlinking the file (or a chmod) right after the exec changes its ctime only: the
                # same file (device, inode, size, mtime) is still this exec's, read it again.
                again = p.exe(pid)
                if again is not None and again[0] is not None and again[0][:4] == identity[:4]:
                    proc = p.read(pid, again[0], again[1], True, True, True)
            if proc is None:
                if fd < 0:
                    return GONE
                # Gone before its details were read: the file still says whether that was a loss.
                opened = Opened(fd, None, "", _NOWHERE)
            else:
                cmd = p.cmdline(pid)
                where = placement(pid, cgroup=True, namespaces=True, start_time=proc.start_time)
                if fd < 0:
                    assert isinstance(result, BuildInfo)
                    return Exec(proc, cmd, where, result)
                opened = Opened(fd, proc, cmd, where)
            fd = -1
            return opened
        finally:
            if fd >= 0:
                os.close(fd)

    def processes(self, pids: Iterable[int] | None = None) -> Iterator[Process]:
        """Live processes with every field read; only ``pids`` when given (without walking every
        process)."""
        for proc, _ in self.scan(pids, uid=True, path=True):
            yield proc

    def executable(self, proc: Process, detector: Detector) -> Result | None:
        if proc.exe_identity is None:
            return None
        return detector.detect(proc.exe_identity, self._p.process_opener(proc))

    def executable_functions(self, proc: Process, detector: Detector) -> FuncTable | BuildInfoError | None:
        if proc.exe_identity is None:
            return None
        return detector.functions(proc.exe_identity, self._p.process_opener(proc))

    def gops_agent(self, proc: Process) -> Agent | None:
        return self._p.gops_agent(proc)

    def godebug(self, proc: Process) -> str | None:
        return self._p.godebug(proc)

    def kernel_fips(self) -> bool | None:
        return self._p.kernel_fips()

    def open_file(self, pid: int, path: str, owners: Collection[int] | None = None) -> int:
        return self._p.open_file(pid, path, owners)


class Opened:
    """A new executable opened at its exec, with the process's details (``process`` None: it was
    gone before they could be read); :meth:`read` detects it and closes it, :meth:`close` only
    closes it."""

    __slots__ = ("cmdline", "fd", "placement", "process")

    def __init__(self, fd: int, process: Process | None, cmdline: str, where: Placement) -> None:
        self.fd, self.process, self.cmdline, self.placement = fd, process, cmdline, where

    def read(self, detector: Detector) -> Exec | Literal["gone"] | None:
        """An :class:`Exec` when it is Go, None when not, ``"gone"`` when it was Go but the
        process went before its details were read, or the file could not be read."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return None
        try:  # the file as it is now (an unlink since the exec changed its ctime, not its content)
            identity = identity_of(os.fstat(fd))
        except OSError:
            os.close(fd)
            return GONE
        result = detector.detect(identity, lambda: fd)  # closes it
        if isinstance(result, UnreadableFile):
            return GONE
        if not isinstance(result, BuildInfo):
            return None
        if self.process is None:
            return GONE
        return Exec(self.process, self.cmdline, self.placement, result)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


_NOWHERE = Placement("", "", "", "", "", "")
READER = Reader(_platform)


def processes(pids: Iterable[int] | None = None) -> Iterator[Process]:
    """Live processes, every field read; only ``pids`` when given (without walking every process).

    A process that exits mid-scan or cannot be read is left out; nothing is raised for it.
    """
    return READER.processes(pids)


def executable_functions(proc: Process, detector: Detector) -> FuncTable | BuildInfoError | None:
    """The function table (``buildinfo.FuncTable``, or the ``BuildInfoError`` that prevented it)
    of the file ``proc`` runs, opened as :func:`executable` opens it and cached by the detector
    under the same identity; None when the executable cannot be identified."""
    return READER.executable_functions(proc, detector)


def executable(proc: Process, detector: Detector) -> Result | None:
    """The detector's answer for the file ``proc`` runs (read through the process itself, e.g.
    /proc/<pid>/exe, so deleted and other-namespace executables are read correctly); None when the
    executable cannot be identified (kernel threads, permission denied, the process exited)."""
    return READER.executable(proc, detector)


def executables(detector: Detector, pids: Iterable[int] | None = None) -> Iterator[tuple[Process, Result]]:
    """:func:`processes` paired with :func:`executable`'s answer (a BuildInfo or the error that
    says why there is none). Processes whose executable cannot be identified are left out."""
    for proc, result in READER.scan(pids, detector, uid=True, path=True):
        if result is not None:
            yield proc, result


def running_go(detector: Detector, pids: Iterable[int] | None = None, *, uid: bool = False,
               path: bool = False) -> Iterator[tuple[Process, BuildInfo]]:
    """The running Go processes only, with their build info. The answer comes first (from the
    detector's cache, by the executable's identity), so a process that is not Go costs one stat:
    a full scan of a host where few processes are Go stays cheap. ``Process.uid`` is read only
    with ``uid=True``, ``Process.path`` and ``on_disk`` only with ``path=True`` (else -1, "", -1)."""
    for proc, result in READER.scan(pids, detector, go_only=True, uid=uid, path=path):
        if isinstance(result, BuildInfo):
            yield proc, result


def libraries(detector: Detector, pids: Iterable[int] | None = None, *, uid: bool = False,
              path: bool = False) -> Iterator[tuple[Process, list[tuple[Library, BuildInfo]]]]:
    """Processes that map Go shared objects besides their own executable (c-shared libraries a
    Python, C or Node program loaded, plugins a Go program opened), each with those objects and
    their build info. Reads /proc/<pid>/maps, so only tables that ask call it; ``uid``/``path``
    as in :func:`running_go`. Linux only: nothing elsewhere."""
    return READER.libraries(pids, detector, uid=uid, path=path)


def library_functions(proc: Process, lib: Library, detector: Detector) -> FuncTable | BuildInfoError:
    """The function table of ``lib`` as ``proc`` maps it, cached by the detector under its identity."""
    return READER.library_functions(proc, lib, detector)


def open_file(pid: int, path: str, owners: Collection[int] | None = None) -> int:
    """A read-only descriptor of the regular file ``path`` as process ``pid`` sees it (on Linux
    resolved inside its root: a container's own files, never the host's), following only links
    that ``owners`` own when given; never a FIFO or device. Raises OSError. Close it."""
    return READER.open_file(pid, path, owners)


def godebug(proc: Process) -> str | None:
    """The GODEBUG environment variable ``proc`` was started with ("" when it has none), read from
    its environment (on Linux /proc/<pid>/environ, bounded); None when that cannot be read or is
    over the bound. Nothing else of the environment is kept or returned."""
    return READER.godebug(proc)


def kernel_fips() -> bool | None:
    """Whether the host's kernel runs in FIPS mode (Linux: /proc/sys/crypto/fips_enabled), which
    ``fips140=auto`` of Red Hat's Go toolchain follows; None when unknown."""
    return READER.kernel_fips()


def gops_agent(proc: Process) -> Agent | None:
    """The gops agent of ``proc`` if its pidfile exists in the target's own config dir, else None."""
    return READER.gops_agent(proc)


def placement(
    pid: int, cgroup: bool = False, namespaces: bool = False, start_time: int | None = None
) -> Placement:
    """Where ``pid`` runs, from /proc/<pid>/cgroup and /proc/<pid>/ns/* only (no runtime is asked;
    the cgroup layouts understood are listed in ``procs/_cgroup.py``). Only what the caller asks
    is read: ``cgroup=True`` the cgroup fields, ``namespaces=True`` the namespace ones (the others
    stay ""), so callers pay only for what they show. ``start_time`` (``Process.start_time``) names
    the process instance, whose pid namespace is then read once: a task never leaves its pid
    namespace. Linux only: empty elsewhere."""
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


__all__ = ["READER", "Agent", "Exec", "Library", "Opened", "Placement", "Process", "Reader", "executable",
           "executable_functions", "executables", "godebug", "gops_agent", "kernel_fips", "libraries",
           "library_functions", "open_file", "placement", "processes", "running_go"]
