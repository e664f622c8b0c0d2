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
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING

import psutil

from ..buildinfo import BuildInfo, BuildInfoError, Detector, FuncTable, Identity, Result, identity_of

if TYPE_CHECKING:
    from . import Agent, Process

_PIDFILE_MAX = 16
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError,
         FileNotFoundError)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _opener(path: str) -> Callable[[], int]:
    return partial(os.open, path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | _O_NONBLOCK | _O_BINARY)


def _one(p: psutil.Process) -> tuple[Process, str] | None:
    from . import Process

    try:
        with p.oneshot():
            if p.status() in (psutil.STATUS_ZOMBIE, getattr(psutil, "STATUS_DEAD", "dead")):
                return None
            try:
                path = p.exe()
            except psutil.AccessDenied:
                path = ""
            if not path:
                return None  # kernel threads and the like
            ppid = p.ppid()
            name = p.name()
            try:
                uid = p.uids().real
            except (AttributeError, psutil.AccessDenied):
                uid = -1
            start = int(p.create_time() * 1000)
    except _GONE:
        return None
    identity: Identity | None
    try:
        st = os.stat(path)
        identity, on_disk = identity_of(st), 1
    except FileNotFoundError:
        identity, on_disk = None, 0
    except OSError:
        identity, on_disk = None, -1
    return Process(p.pid, ppid, name, path, on_disk, uid, start, identity), path


def scan(
    pids: Iterable[int] | None,
    detector: Detector | None = None,
    go_only: bool = False,
    uid: bool = True,
    path: bool = True,
) -> Iterator[tuple[Process, Result | None]]:
    del uid, path  # psutil reads these with everything else (the same signature on every platform)
    if pids is None:
        candidates: Iterable[psutil.Process] = psutil.process_iter()
    else:
        candidates = _given(pids)
    for p in candidates:
        found = _one(p)
        if found is None:
            continue
        proc, exe_path = found
        result: Result | None = None
        if detector is not None and proc.exe_identity is not None:
            result = detector.detect(proc.exe_identity, _opener(exe_path))
        if go_only and not isinstance(result, BuildInfo):
            continue
        yield proc, result


def _given(pids: Iterable[int]) -> Iterator[psutil.Process]:
    seen = set()
    for pid in pids:
        if pid in seen or not 0 < pid < 1 << 31:
            continue
        seen.add(pid)
        try:
            p = psutil.Process(pid)
        except _GONE:
            continue
        if sys.platform.startswith("linux"):
            # psutil.Process accepts a thread id on Linux; only thread group leaders are processes.
            try:
                if _tgid(pid) != pid:
                    continue
            except (OSError, ValueError):
                continue
        yield p


def _tgid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f.read(8192).split(b"\n"):
            if line.startswith(b"Tgid:"):
                return int(line[5:])
    return -1


def processes(pids: Iterable[int] | None = None) -> Iterator[Process]:
    for proc, _ in scan(pids):
        yield proc


def executable(proc: Process, detector: Detector) -> Result | None:
    if proc.exe_identity is None:
        return None
    return detector.detect(proc.exe_identity, _opener(proc.path))


def executable_functions(proc: Process, detector: Detector) -> FuncTable | BuildInfoError | None:
    if proc.exe_identity is None:
        return None
    return detector.functions(proc.exe_identity, _opener(proc.path))


def _config_dir(env: dict[str, str], platform: str) -> str:
    path = ntpath if platform == "win32" else posixpath
    if env.get("GOPS_CONFIG_DIR"):
        return env["GOPS_CONFIG_DIR"]
    if platform == "win32":
        return path.join(env["APPDATA"], "gops") if env.get("APPDATA") else ""
    if platform == "darwin":
        home = env.get("HOME", "")
        return path.join(home, "Library", "Application Support", "gops") if home else ""
    if env.get("XDG_CONFIG_HOME"):
        return path.join(env["XDG_CONFIG_HOME"], "gops")
    if env.get("HOME"):
        return path.join(env["HOME"], ".config", "gops")
    return ""


def gops_agent(proc: Process) -> Agent | None:
    from . import Agent

    try:
        p = psutil.Process(proc.pid)
        env = p.environ()
        config_dir = _config_dir(env, sys.platform)
        if not config_dir:
            try:
                import pwd

                config_dir = posixpath.join(pwd.getpwuid(proc.uid).pw_dir, ".config", "gops")
            except (ImportError, KeyError):
                return None
        pidfile = (ntpath if sys.platform == "win32" else posixpath).join(config_dir, str(proc.pid))
        # Only the process's own users (or root) may speak for it (see the Linux backend).
        owners = None if sys.platform == "win32" else set(p.uids()) | {0}
        content = _read_no_links(pidfile, owners)
        if content is None:
            return None
        text = content.strip()
        if not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
            return None
        port = int(text)
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
    flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return None  # never open a FIFO or a device
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (owners is not None and st.st_uid not in owners):
            return None
        return os.read(fd, _PIDFILE_MAX)
    finally:
        os.close(fd)
