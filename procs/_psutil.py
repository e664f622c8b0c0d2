"""Every platform but Linux: psutil.

psutil gives the executable's path only, so the file is opened by name (not through the process,
as /proc/<pid>/exe allows on Linux) and checked against the identity taken before. The gops
config dir follows gops's rules per OS: $GOPS_CONFIG_DIR, else os.UserConfigDir()/gops
(macOS ~/Library/Application Support, Windows %AppData%, elsewhere $XDG_CONFIG_HOME or
~/.config), else ~/.config/gops.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import stat
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from functools import partial
from typing import NamedTuple

import psutil

from ..buildinfo import Identity, identity_of
from . import _gops
from ._inroot import require_file
from ._model import Agent, Library, Process

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError,
         FileNotFoundError)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _opener(path: str) -> Callable[[], int]:
    return partial(os.open, path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | _O_NONBLOCK | _O_BINARY)


class _Seen(NamedTuple):
    process: psutil.Process
    path: str
    on_disk: int


def candidates(pids: Iterable[int] | None) -> Iterator[int]:
    """Every pid, or the valid ones of ``pids`` (thread group leaders only)."""
    return iter(psutil.pids()) if pids is None else _given(pids)


def exe(pid: int) -> tuple[Identity | None, _Seen] | None:
    """(identity, what :func:`read` and :func:`exe_opener` need) of the file ``pid`` runs, by the
    path psutil gives (opened by name: psutil cannot reach through the process); None when the
    process is gone, a zombie or has no executable (kernel threads)."""
    try:
        p = psutil.Process(pid)
        if p.status() in (psutil.STATUS_ZOMBIE, getattr(psutil, "STATUS_DEAD", "dead")):
            return None
        try:
            path = p.exe()
        except psutil.AccessDenied:
            path = ""
    except _GONE:
        return None
    if not path:
        return None  # kernel threads and the like
    identity: Identity | None
    try:
        identity, on_disk = identity_of(os.stat(path)), 1
    except FileNotFoundError:
        identity, on_disk = None, 0
    except OSError:
        identity, on_disk = None, -1
    return identity, _Seen(p, path, on_disk)


def read(pid: int, identity: Identity | None, seen: _Seen, uid: bool, path: bool,
         constrained: bool) -> Process | None:
    """The Process for ``pid``; psutil reads uid and path with everything else, so the flags
    change nothing here."""
    del uid, path, constrained  # the thread check is in candidates(); the rest comes in one go
    p = seen.process
    try:
        with p.oneshot():
            ppid = p.ppid()
            name = p.name()
            try:
                ruid = p.uids().real
            except (AttributeError, psutil.AccessDenied):
                ruid = -1
            start = int(p.create_time() * 1000)
    except _GONE:
        return None
    return Process(pid, ppid, name, seen.path, seen.on_disk, ruid, start, identity)


def cmdline(pid: int) -> str:
    """argv joined by spaces; "" when it cannot be read."""
    try:
        return " ".join(psutil.Process(pid).cmdline())[:8192]
    except (psutil.Error, OSError):
        return ""


def exe_opener(pid: int, seen: _Seen) -> Callable[[], int]:
    return _opener(seen.path)


def process_opener(proc: Process) -> Callable[[], int]:
    return _opener(proc.path)


def mappings(pid: int) -> list[tuple[bytes, str, bytes]]:
    """Mapped libraries are read on Linux only (through /proc/<pid>/map_files): none here."""
    del pid
    return []


def mapped(pid: int, key: bytes, region: str, path: bytes) -> tuple[Identity, str] | None:
    del pid, key, region, path
    return None


def library(pid: int, path: bytes, identity: Identity, where: str) -> Library:
    return Library(os.fsdecode(path), 1, identity, where)


def library_opener(pid: int, lib: Library) -> Callable[[], int]:
    return _opener(lib.path)


def open_file(pid: int, path: str, owners: Collection[int] | None = None,
              file_owners: Collection[int] | None = None) -> int:
    """``path`` by name (psutil cannot reach into another process's view of the file system): a
    regular file only, never a FIFO or device opened for reading, owned by one of
    ``file_owners`` when given; ``owners`` is the Linux backend's link policy and only matters
    there. Raises OSError."""
    del pid, owners
    require_file(os.lstat(path), path, None)  # never open a FIFO or a device, even to look
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY | getattr(os, "O_CLOEXEC", 0))
    try:
        require_file(os.fstat(fd), path, file_owners)
    except OSError:
        os.close(fd)
        raise
    return fd


def _given(pids: Iterable[int]) -> Iterator[int]:
    seen = set()
    for pid in pids:
        if pid in seen or not 0 < pid < 1 << 31:
            continue
        seen.add(pid)
        if sys.platform.startswith("linux"):
            # psutil.Process accepts a thread id on Linux; only thread group leaders are processes.
            try:
                if _tgid(pid) != pid:
                    continue
            except (OSError, ValueError):
                continue
        yield pid


def _tgid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f.read(8192).split(b"\n"):
            if line.startswith(b"Tgid:"):
                return int(line[5:])
    return -1


def kernel_fips() -> bool | None:
    """Unknown: only Linux has /proc/sys/crypto/fips_enabled."""
    return None


def godebug(proc: Process) -> str | None:
    """The GODEBUG variable ``proc`` was started with ("" without one); None when psutil cannot
    read its environment. psutil reads the environment whole: only GODEBUG is kept."""
    try:
        return psutil.Process(proc.pid).environ().get("GODEBUG", "")
    except (*_GONE, OSError):
        return None


def gops_agent(proc: Process) -> Agent | None:
    try:
        p = psutil.Process(proc.pid)
        env = p.environ()
        config_dir = _gops.config_dir(env, sys.platform)
        if not config_dir:
            try:
                import pwd

                config_dir = _gops.home_config_dir(pwd.getpwuid(proc.uid).pw_dir)
            except (ImportError, KeyError):
                return None
        pidfile = (ntpath if sys.platform == "win32" else posixpath).join(config_dir, str(proc.pid))
        # Only the process's own users (or root) may speak for it (see the Linux backend).
        owners = None if sys.platform == "win32" else set(p.uids()) | {0}
        content = _read_no_links(pidfile, owners)
        if content is None:
            return None
        port = _gops.port(content)
        if port is None:
            return None
        address = ""
        connections = getattr(p, "net_connections", None) or p.connections  # psutil < 6
        for c in connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                address = c.laddr.ip
                break
        else:
            return Agent(pidfile, port, "", False)
    except (*_GONE, OSError):
        return None
    return Agent(pidfile, port, address, True)


def _read_no_links(path: str, owners: set[int] | None = None) -> bytes | None:
    """A few bytes of ``path`` if it is a regular file owned by one of ``owners`` (when given)
    and no component of it is a symlink another user owns (macOS's root-owned /var -> private/var
    is followed, as on Linux; without ``owners`` no link is)."""
    parent = path
    while True:
        try:
            st = os.lstat(parent)
            if stat.S_ISLNK(st.st_mode) and (owners is None or st.st_uid not in owners):
                return None
        except OSError:
            return None
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    try:
        fd = open_file(0, path, file_owners=owners)
    except OSError:
        return None
    try:
        return os.read(fd, _gops.PIDFILE_MAX)
    finally:
        os.close(fd)
