"""Linux primitives for the process reader (``procs.Reader``): list pids, stat one pid's
executable, read one pid for the fields asked, open its executable or any file as it sees it
(inside its root), and the gops agent check.

Cost model (a host has hundreds of processes, few of them Go): per pid a full scan pays one
``stat`` of ``/proc/<pid>/exe`` (which also drops kernel threads and zombies: they have no
executable) and, through the detector's cache, learns whether the binary is Go before reading
anything else. Only kept processes pay for ``/proc/<pid>/stat`` and ``status`` (the real uid:
the owner of /proc/<pid> is the effective one), a ``readlink`` and an identity re-check; the
status read and the readlink only when the caller needs the uid or the path (``uid=``, ``path=``).
What cannot change during one process instance (the cmdline-derived name, the gops config dir from
the initial environment) is cached per (pid, start time, executable identity).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import socket
import stat
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from functools import partial

from ..buildinfo import Identity, identity_of
from ..common import GONE, Cache, expected, meaning, once
from . import _gops
from ._inroot import open_in_root, require_file
from ._model import Agent, Library, Process

log = logging.getLogger(__name__)

_PF_KTHREAD = 0x00200000
_DELETED = b" (deleted)"
_COMM_MAX = 15  # TASK_COMM_LEN - 1: a comm of this length may be truncated
_CMDLINE_MAX = 8192  # argv[0] only; PATH_MAX is 4096
_ENVIRON_MAX = 256 * 1024
_PASSWD_MAX = 1 << 20
_NET_TCP_MAX = 4 << 20  # LISTEN sockets come first in /proc/net/tcp*, so a bound never hides them early
_FD_MAX = 1 << 16
_CACHE_MAX = 4096
# /proc/<pid>/maps read per process: some 40,000 regions. A browser or a JVM maps thousands; past
# this the rest is not read (logged once per process), so one process cannot make a query unbounded.
MAPS_MAX = 4 << 20
# "start-end perms offset dev inode path" of an executable (x), file-backed (an inode, a path) mapping.
_MAPPING = re.compile(rb"^([0-9a-f]+-[0-9a-f]+) ..x. [0-9a-f]+ ([0-9a-f]+:[0-9a-f]+ [1-9][0-9]*) +(/[^\n]*)$",
                      re.M)

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC

# Keys are (pid, start_time, exe identity): one exec'd process instance.
_names: Cache[tuple[int, int, Identity | None], str] = Cache(_CACHE_MAX)
# () caches "no pidfile to look for".
_pidfiles: Cache[tuple[int, int, Identity | None], tuple[str, str, tuple[str, ...], str] | tuple[()]] = Cache(
    _CACHE_MAX
)


def _read(path: str | bytes, limit: int, dir_fd: int | None = None, complete: bool = False) -> bytes:
    """At most ``limit`` bytes of a (proc) file; raises OSError. ``complete``: the file fills every
    read up to its end (as /proc/<pid>/environ and cmdline do; seq_file tables such as net/tcp
    do not), so a short read is the end and saves the read that would return nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        left = limit
        while left > 0:
            want = min(left, 65536)
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            if complete and len(chunk) < want:
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _read_once(path: str) -> bytes:
    """A small proc file (stat, status) in one read: seq_file hands over all of it at once."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 16384)
    finally:
        os.close(fd)


def _pids() -> Iterator[int]:
    # /proc lists thread group leaders only; thread ids are reachable but never listed.
    return iter([int(name) for name in os.listdir("/proc") if name.isdigit()])


def _given(pids: Iterable[int]) -> Iterator[int]:
    seen = set()
    for pid in pids:
        if isinstance(pid, int) and 0 < pid < 1 << 31 and pid not in seen:
            seen.add(pid)
            yield pid


def candidates(pids: Iterable[int] | None) -> Iterator[int]:
    """Every pid (thread group leaders), or the valid ones of ``pids`` without walking /proc."""
    return _given(pids) if pids is not None else _pids()


_O_EXE = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def exe_opener(pid: int, handle: object = None) -> Callable[[], int]:
    """How to open ``pid``'s executable as the process sees it: through the magic link, right for
    deleted, memfd and other-namespace binaries (the detector checks that what was opened is the
    file it was asked about)."""
    return partial(os.open, f"/proc/{pid}/exe", _O_EXE)


def process_opener(proc: Process) -> Callable[[], int]:
    """How to open ``proc``'s executable as the process sees it."""
    return exe_opener(proc.pid)


def exe(pid: int) -> tuple[Identity | None, os.stat_result | None] | None:
    """(identity, stat) of the file ``pid`` runs: one stat of /proc/<pid>/exe, which also drops
    kernel threads and zombies (None: they have no executable, as an exited pid has none);
    (None, None) when the process exists but its executable cannot be stat'ed (denied)."""
    try:
        st = os.stat(f"/proc/{pid}/exe")
    except OSError as e:
        return None if meaning(e) == GONE else (None, None)
    return identity_of(st), st


def read(pid: int, identity: Identity | None, st: os.stat_result | None, uid: bool, path: bool,
         constrained: bool) -> Process | None:
    """The Process for ``pid`` (whose executable :func:`exe` found), reading /proc/<pid>/stat
    and, only when asked, ``status`` (``uid``: the dearest read here, the kernel formats some
    forty lines) and the exe link (``path``); None for a zombie, a kernel thread, a thread id
    given as a pid (``constrained``), a process that exec'd meanwhile or one that cannot be read
    (an unexpected error is logged once, at debug level)."""
    base = f"/proc/{pid}"
    try:
        data = _read_once(base + "/stat")
        lp, rp = data.find(b"("), data.rfind(b")")
        comm = data[lp + 1 : rp]
        fields = data[rp + 2 :].split(None, 36)
        state, ppid, flags, start_time = fields[0], int(fields[1]), int(fields[6]), int(fields[19])
        if state in (b"Z", b"X", b"x") or flags & _PF_KTHREAD or lp < 0:
            return None
        # /proc/<tid> exists for every thread, though /proc lists leaders only. The kernel sets
        # exit_signal to -1 for exactly the threads that do not lead their group (copy_process
        # with CLONE_THREAD; de_thread gives a new leader SIGCHLD).
        if constrained and fields[35] == b"-1":
            return None
        if st is None or not path:
            exe_path, on_disk = "", -1
        else:
            exe_path, on_disk = _path(pid, st)
        # The real uid, as osquery reads it: the owner of /proc/<pid> is the effective uid.
        ruid = _real_uid(base) if uid else -1
        name = _name(pid, start_time, identity, comm)
        if identity is not None and identity_of(os.stat(base + "/exe")) != identity:
            return None  # exec'd or replaced while we read it: this row would mix two programs
    except (ValueError, IndexError):
        return None
    except OSError as e:
        if not expected(e):
            once(log, ("scan", pid, e.errno), "pid %d left out: %s", pid, e)
        return None
    return Process(pid, ppid, name, exe_path, on_disk, ruid, start_time, identity)


def cmdline(pid: int) -> str:
    """argv joined by spaces, as osquery's process_events has it, from at most _CMDLINE_MAX bytes
    of /proc/<pid>/cmdline; "" when it cannot be read."""
    try:
        data = _read(f"/proc/{pid}/cmdline", _CMDLINE_MAX, complete=True)
    except OSError:
        return ""
    return data.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def _real_uid(base: str) -> int:
    """The first field of the ``Uid:`` line of /proc/<pid>/status; -1 when there is none."""
    data = _read_once(base + "/status")
    at = 0  # the first line that starts with Uid: (one search, not a split into lines)
    if not data.startswith(b"Uid:"):
        at = data.find(b"\nUid:") + 1
        if not at:
            return -1
    end = data.find(b"\n", at)
    return int(data[at + 4 : end if end >= 0 else len(data)].split()[0])


def _path(pid: int, st: os.stat_result) -> tuple[str, int]:
    """The executable's path as the process itself sees it (:func:`_own_view`: inside its chroot,
    as every table and go_executables' pid_with_namespace name it), and whether a name still leads
    to it."""
    link = _own_view(pid, os.readlink(f"/proc/{pid}/exe".encode()))
    on_disk = 1
    # st_nlink 0: the file is gone. Otherwise the name the process ran by was unlinked (the inode
    # lives on under another name) unless the file is literally called "x (deleted)".
    if link.endswith(_DELETED) and (st.st_nlink == 0 or not _same_file(pid, link, (st.st_dev, st.st_ino))):
        link, on_disk = link[: -len(_DELETED)], 0
    return link.decode("utf-8", "replace"), on_disk


def _same_file(pid: int, path: bytes, dev_ino: tuple[int, int]) -> bool:
    """Whether ``path``, inside ``pid``'s root, names the file (device, inode) ``dev_ino``."""
    try:
        other = os.lstat(f"/proc/{pid}/root".encode() + path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == dev_ino


def _name(pid: int, start_time: int, identity: Identity | None, comm: bytes) -> str:
    """comm, or argv[0]'s base name when comm is truncated and argv[0] extends it (as gops)."""
    text = comm.decode("utf-8", "replace")
    if len(comm) < _COMM_MAX:
        return text
    key = (pid, start_time, identity)
    cached = _names.get(key)
    if cached is not None:
        return cached
    name = text
    try:
        argv0 = _read(f"/proc/{pid}/cmdline", _CMDLINE_MAX).split(b"\0", 1)[0]
    except OSError:
        return name  # not cached: may be readable next time
    base = argv0.rsplit(b"/", 1)[-1]
    if base.startswith(comm):
        name = base.decode("utf-8", "replace")
    _names.put(key, name)
    return name


# --- mapped files ----------------------------------------------------------------------------


def mappings(pid: int) -> list[tuple[bytes, str, bytes]]:
    """(file key "dev inode", region "start-end", path as mapped) of each distinct file ``pid``
    maps executable, from at most :data:`MAPS_MAX` bytes of its maps; [] when they cannot be read
    (gone, denied: nothing is logged for those)."""
    try:
        data = _read(f"/proc/{pid}/maps", MAPS_MAX)
    except OSError as e:
        if not expected(e):
            once(log, ("maps", pid, e.errno), "pid %d: maps not read: %s", pid, e)
        return []
    if len(data) >= MAPS_MAX:
        once(log, ("maps-limit", pid), "pid %d maps more than %d bytes of regions: files mapped past "
             "them are not read", pid, MAPS_MAX, level=logging.WARNING)
        data = data[: data.rfind(b"\n") + 1]
    found: dict[bytes, tuple[bytes, str, bytes]] = {}
    for region, key, path in _MAPPING.findall(data):
        if key not in found:
            found[key] = (key, region.decode(), path)
    return list(found.values())


def mapped(pid: int, key: bytes, region: str, path: bytes) -> tuple[Identity, str] | None:
    """(identity, where) of the file one mapping of ``pid`` maps: stat'ed through the mapping
    itself (/proc/<pid>/map_files/<region>: right for deleted and replaced files and for a
    container's), where = the region. Without the privilege map_files needs (CAP_SYS_ADMIN), the
    path is opened inside the process's root and kept only when it is still the mapped inode
    (where = ""). None when neither works."""
    try:
        st = os.stat(f"/proc/{pid}/map_files/{region}")
    except OSError as e:
        if meaning(e) == GONE or path.endswith(_DELETED):
            return None
    else:
        # A device can be mapped executable too: opening one may act, reading one may not end.
        return (identity_of(st), region) if stat.S_ISREG(st.st_mode) else None
    try:
        fd = open_file(pid, os.fsdecode(_own_view(pid, path)))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    dev, ino = key.split()
    major, minor = (int(x, 16) for x in dev.split(b":"))
    if (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) != (major, minor, int(ino)):
        return None  # replaced at that path: not what is mapped
    return identity_of(st), ""


def library(pid: int, path: bytes, identity: Identity, where: str) -> Library:
    """The :class:`Library` for a file ``pid`` maps; on_disk as Process.on_disk: 0 when the
    kernel marks the mapping's path deleted and no file of that identity is at the path."""
    on_disk = 1
    path = _own_view(pid, path)
    if path.endswith(_DELETED) and not _same_file(pid, path, (identity[0], identity[1])):
        path, on_disk = path[: -len(_DELETED)], 0
    return Library(path.decode("utf-8", "replace"), on_disk, identity, where)


def _own_view(pid: int, path: bytes) -> bytes:
    """``path`` as ``pid`` sees it: the kernel prints a mapping's path from the reader's root, so a
    chrooted (container) process's files show under its root's path in ours; that prefix goes."""
    try:
        root = os.readlink(f"/proc/{pid}/root".encode())
    except OSError:
        return path
    if root != b"/" and path.startswith(root + b"/"):
        return path[len(root):]
    return path


def library_opener(pid: int, lib: Library) -> Callable[[], int]:
    """How to open the file ``lib`` describes as ``pid`` maps it (the detector checks identity)."""
    if lib.where:
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
        return partial(os.open, f"/proc/{pid}/map_files/{lib.where}", flags)
    return partial(open_file, pid, lib.path)


# --- gops agent ------------------------------------------------------------------------------


def gops_agent(proc: Process) -> Agent | None:
    pid = proc.pid
    try:
        where = _pidfile(proc)
        if where is None:
            return None
        pidfile, start, parts, probe = where
        # Fast negative: the kernel follows every link, so no file on the plain path means none on
        # the policed one either; that is the common case. Only where the process shares our root:
        # through /proc/<pid>/root the kernel resolves an absolute link against ours, not its.
        if probe:
            try:
                os.lstat(probe)
            except OSError:
                return None
        # Only the process's own users (or root) may speak for it: in a shared directory such
        # as /tmp another user could plant <pid> naming a port the process serves, or a link.
        owners = _uids(pid) | {0}
        content = _read_in_root(pid, start, parts, _gops.PIDFILE_MAX, owners)
        if content is None:
            return None
        port = _gops.port(content)
        if port is None:
            return None
        address = _listening_address(pid, port)
    except (OSError, ValueError) as e:
        if not isinstance(e, OSError) or not expected(e):
            once(log, ("agent", pid, getattr(e, "errno", None)), "pid %d: no agent columns: %s", pid, e)
        return None
    return Agent(pidfile, port, address or "", address is not None)


def _pidfile(proc: Process) -> tuple[str, str, tuple[str, ...], str] | None:
    """(pidfile as the target sees it, "root" or "cwd": where to resolve it from, its components,
    a plain path for a quick existence probe, "" when the process's root is not ours): in the
    target's own view, its root for an absolute path and its cwd otherwise. Derived from the
    initial environment, so cached per instance."""
    key = (proc.pid, proc.start_time, proc.exe_identity)
    cached = _pidfiles.get(key)
    if cached is not None:
        return cached or None
    read = _environ(proc.pid, _WANTED)
    if read is None:
        return None  # unreadable now; not cached
    config_dir = _config_dir(read[0], proc)
    found: tuple[str, str, tuple[str, ...], str] | tuple[()] = ()
    if config_dir:
        pidfile = posixpath.join(config_dir, str(proc.pid))
        start = "root" if pidfile.startswith("/") else "cwd"
        names = pidfile.split("/")
        if "." in names or ".." in names:
            names = posixpath.normpath(pidfile).split("/")
        # Without "." or ".." components normpath only drops empty ones, as this filter does.
        parts = tuple(p for p in names if p not in ("", "."))
        if parts and ".." not in parts:
            probe = f"/proc/{proc.pid}/{start}/" + "/".join(parts) if _shares_our_root(proc.pid) else ""
            found = (pidfile, start, parts, probe)
    _pidfiles.put(key, found)
    return found or None


def _shares_our_root(pid: int) -> bool:
    try:
        mine, theirs = os.stat("/"), os.stat(f"/proc/{pid}/root")
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _uids(pid: int) -> set[int]:
    """The real, effective, saved and file-system uids of ``pid`` (``Uid:`` in status)."""
    for line in _read_once(f"/proc/{pid}/status").split(b"\n"):
        if line.startswith(b"Uid:"):
            return {int(u) for u in line[4:].split()}
    return set()


def open_file(pid: int, path: str, owners: Collection[int] | None = None,
              file_owners: Collection[int] | None = None) -> int:
    """A read-only descriptor of the regular file ``path`` names as process ``pid`` sees it: an
    absolute path inside its root (its container's files, never the host's), a relative one from
    its cwd; symlinks followed inside that root, only those ``owners`` own when given; the file
    owned by one of ``file_owners`` when given. Opened by O_PATH first, so a FIFO or device is
    never opened for reading. Raises OSError (ELOOP: a link the policy refuses; EINVAL: not a
    regular file; EACCES: not owned as required)."""
    root_fd = os.open(f"/proc/{pid}/root", _O_DIR)
    start_fd = -1
    try:
        if not path.startswith("/"):
            start_fd = os.open(f"/proc/{pid}/cwd", _O_DIR)
        pfd = open_in_root(root_fd, path.split("/"), start_fd=start_fd if start_fd >= 0 else None,
                           owners=owners, directory=False)
    finally:
        os.close(root_fd)
        if start_fd >= 0:
            os.close(start_fd)
    try:
        require_file(os.fstat(pfd), path, file_owners)
        # Re-open the very inode checked above (an O_PATH fd cannot be read).
        return os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    finally:
        os.close(pfd)


def _read_in_root(pid: int, start: str, parts: tuple[str, ...], limit: int, owners: set[int],
                  file_owned: bool = True) -> bytes | None:
    """At most ``limit`` bytes of the file ``parts`` names from ``pid``'s root or cwd
    (``start``), opened by :func:`open_file` with ``owners`` for the links and, with
    ``file_owned``, for the file; None when it cannot be."""
    path = "/".join(parts)
    try:
        fd = open_file(pid, "/" + path if start == "root" else path, owners, owners if file_owned else None)
    except OSError:
        return None
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _config_dir(env: dict[str, str], proc: Process) -> str:
    """The TARGET's gops config dir (``_gops.config_dir``), else .config/gops in the user's home
    from the passwd file inside its own root."""
    found = _gops.config_dir(env, "linux")
    if found:
        return found
    # The scan may have left the uid unread (the query did not ask for it); this runs once per
    # process instance, and only for an environment without HOME.
    uid = proc.uid if proc.uid >= 0 else _real_uid(f"/proc/{proc.pid}")
    return _gops.home_config_dir(_home_of(proc.pid, uid))


_WANTED = tuple(os.fsencode(k) for k in _gops.WANTED if k != "APPDATA")
_GODEBUG = (b"GODEBUG",)

# (pid, start time, exe identity) -> the process's GODEBUG ("" when it has none): its initial
# environment, fixed for the process instance.
_godebugs: Cache[tuple[int, int, Identity | None], str] = Cache(_CACHE_MAX)


def godebug(proc: Process) -> str | None:
    """The GODEBUG variable ``proc`` was started with ("" without one); None when its environment
    cannot be read or is larger than the bound (then nothing of it is looked at)."""
    key = (proc.pid, proc.start_time, proc.exe_identity)
    cached = _godebugs.get(key)
    if cached is not None:
        return cached
    found = _environ(proc.pid, _GODEBUG)
    if found is None or not found[1]:
        return None
    value = found[0].get("GODEBUG", "")
    _godebugs.put(key, value)
    return value


_kernel_fips: list[bool | None] = []  # read once: the fips= kernel parameter is fixed for the boot


def kernel_fips() -> bool | None:
    """Whether the kernel runs in FIPS mode: /proc/sys/crypto/fips_enabled reads 1 (no such file:
    a kernel without FIPS support, so no); None when it cannot be read."""
    if not _kernel_fips:
        try:
            _kernel_fips.append(_read("/proc/sys/crypto/fips_enabled", 16).strip() == b"1")
        except FileNotFoundError:
            _kernel_fips.append(False)
        except OSError:
            return None  # not remembered: a later query may read it
    return _kernel_fips[0]


def _environ(pid: int, keys: tuple[bytes, ...]) -> tuple[dict[str, str], bool] | None:
    """The values of ``keys`` in /proc/<pid>/environ, and whether the environment was read whole
    (False: over the bound, only its first part looked at); None when it cannot be read. The one
    reader of another process's environment: nothing but ``keys`` leaves it."""
    try:
        data = _read(f"/proc/{pid}/environ", _ENVIRON_MAX + 1, complete=True)
        if not data:
            # Empty: really so, or an exec that has not copied the new environment yet. Only once
            # stat says it has (env_end set) does a second read tell which.
            if not _environ_set_up(pid):
                return None
            data = _read(f"/proc/{pid}/environ", _ENVIRON_MAX + 1, complete=True)
    except OSError:
        return None
    whole = len(data) <= _ENVIRON_MAX
    # A few searches instead of splitting every entry (an environment can be 256 KB). An entry
    # starts the data or follows a NUL; Go's getenv takes the first occurrence, as find does.
    env: dict[str, str] = {}
    for key in keys:
        head = key + b"="
        if data.startswith(head):
            start = len(head)
        else:
            at = data.find(b"\0" + head)
            if at < 0:
                continue
            start = at + 1 + len(head)
        end = data.find(b"\0", start)
        env[os.fsdecode(key)] = os.fsdecode(data[start:] if end < 0 else data[start:end])
    return env, whole


def _environ_set_up(pid: int) -> bool:
    """Whether an empty /proc/<pid>/environ is an empty environment rather than an exec in
    progress: execve switches /proc/<pid>/exe (and lets the parent's Popen return) before it
    copies the new environment, and until then env_end (field 51 of stat) is 0."""
    try:
        data = _read_once(f"/proc/{pid}/stat")
        fields = data[data.rfind(b")") + 2 :].split()
        return len(fields) < 49 or fields[48] != b"0"
    except (OSError, ValueError):
        return False


def _home_of(pid: int, uid: int) -> str:
    if uid < 0:
        return ""
    data = _read_in_root(pid, "root", ("etc", "passwd"), _PASSWD_MAX, {0, uid}, file_owned=False)
    if data is None:
        # No readable passwd file inside its root: our own user database is right only when the
        # process shares our root.
        if not _shares_our_root(pid):
            return ""
        import pwd

        try:
            return pwd.getpwuid(uid).pw_dir
        except KeyError:
            return ""
    wanted = str(uid).encode()
    for line in data.split(b"\n"):
        fields = line.split(b":")
        if len(fields) >= 7 and fields[2] == wanted:
            return fields[5].decode("utf-8", "replace")
    return ""


def _listening_address(pid: int, port: int) -> str | None:
    """The local address of a TCP socket in LISTEN on ``port`` that ``pid`` itself holds."""
    addresses: dict[int, str] = {}
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            data = _read(f"/proc/{pid}/net/{table}", _NET_TCP_MAX)
        except FileNotFoundError:
            continue  # no IPv6 in that kernel / namespace
        for line in data.split(b"\n")[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != b"0A":
                continue
            addr_hex, _, port_hex = fields[1].partition(b":")
            try:
                if int(port_hex, 16) != port:
                    continue
                addresses[int(fields[9])] = _address(addr_hex, v6)
            except ValueError:
                continue
    if not addresses:
        return None
    with os.scandir(f"/proc/{pid}/fd") as it:
        for count, entry in enumerate(it):
            if count >= _FD_MAX:
                break
            try:
                link = os.readlink(entry.path)
            except OSError:
                continue
            if link.startswith("socket:[") and link.endswith("]"):
                address = addresses.get(int(link[8:-1]))
                if address is not None:
                    return address
    return None


def _address(hex_addr: bytes, v6: bool) -> str:
    """/proc/net/tcp* addresses are 32-bit words printed in host byte order."""
    raw = bytes.fromhex(hex_addr.decode())
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)
