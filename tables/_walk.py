"""Find files for ``path LIKE`` / ``directory`` constraints the way osquery's ``file`` table does,
but bounded and without ever following a symlink the walk discovers.

osquery turns a LIKE pattern into a glob(3) pattern (``replaceGlobWildcards`` and ``genGlobs`` in
osquery/filesystem/filesystem.cpp, ``platformGlob`` in posix/fileops.cpp), and so do we:

- ``%`` becomes ``*``, which matches within one path level; ``_`` stays a literal character.
- When the last ``**`` (that is ``%%``) ends the pattern (at most one character may follow it),
  the match recurses: osquery globs ``P``, ``P/**``, ``P/**/**``... while each level finds
  something, i.e. every entry below what ``P`` matches. Elsewhere ``%%`` is just ``*``.
- glob(3) rules with GLOB_TILDE | GLOB_BRACE: ``*``/``?``/``[...]`` never match a leading ``.``
  (so hidden directories are not descended by ``%%`` either), ``{a,b}`` alternatives, ``~`` and
  ``~user`` at the start; matching is case-sensitive (unlike SQL LIKE: SQLite re-checks the rows).
- A relative pattern matches nothing: osquery resolves it against osqueryd's working directory,
  which an extension does not share, and its rows could never pass SQLite's LIKE re-check anyway.

Where we deliberately differ from glob(3), for safety (this runs as root over directories other
users control):

- Symlinks found by the walk are never followed: a symlink is never a result and a symlinked
  directory is never entered. The literal directory prefix the query itself names (``/bin`` in
  ``/bin/%``, the value of ``directory = ...``) is opened as named, so ``/bin -> usr/bin`` works.
- Every directory is opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a
  directory swapped for a symlink mid-walk is not entered; each file is handed to the caller with
  its directory's descriptor, so it can be opened race-free (``openat``) as well.
- FIFOs, sockets and devices are skipped (never opened). Pseudo file systems (proc, sysfs, cgroup,
  devtmpfs, debugfs, ...) are not entered by a wildcard or recursion; other mount points are
  crossed (as glob does: Go binaries live on /usr, /opt and /home mounts alike). A directory that
  is one of its own ancestors (a bind-mount loop) is not entered again.
- A pattern or directory under ``/proc/<pid>/root`` (or any path with ``root=<pid>``, which is what
  ``pid_with_namespace`` sends) is resolved inside that process's root, as the kernel's
  ``RESOLVE_IN_ROOT`` would: the literal prefix is opened one component at a time from the root's
  descriptor, ``..`` stops at that root and a symlink in the prefix (``/usr/bin -> /opt/x/bin`` in an
  image) is resolved inside it (at most 40, as the kernel's MAXSYMLINKS), never on the host. The
  process's own mounts' pseudo file systems (its /proc, /sys) are not entered by wildcards either.
- Limits per query (one generate call): :data:`MAX_DEPTH` directory levels below the named prefix,
  :data:`MAX_ENTRIES` directory entries examined, :data:`TIME_BUDGET` seconds (osquery gives a
  call 300 s). At a limit the walk stops, the rows found so far are returned, and one warning per
  limit is logged (to stderr unless the process configured logging). Brace alternatives are capped
  at :data:`MAX_PATTERNS`.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import translate

from ..procs._inroot import open_in_root

log = logging.getLogger("go_processes.tables.walk")

MAX_DEPTH = 64  # directory levels below the query's literal prefix (osquery: 63 glob levels)
MAX_ENTRIES = 100_000  # directory entries examined per query
TIME_BUDGET = 60.0  # seconds per query, well inside osquery's 300 s call timeout
MAX_PATTERNS = 256  # brace alternatives per pattern

# Pseudo file systems a wildcard never enters: no executables, and /proc alone holds millions of
# entries (every task of every process).
PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
    "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc",
    "efivarfs", "autofs", "rpc_pipefs", "nsfs", "selinuxfs",
})

# openat() relative to a directory descriptor is what makes the walk race-free; Windows lacks it.
SUPPORTED = os.scandir in os.supports_fd and os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_DIR |= getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_WILD = re.compile(r"[*?\[\\]")
_PROC_ROOT = re.compile(r"/proc/([1-9][0-9]{0,9})/root(?=/|$)")


@dataclass
class Budget:
    """The limits one generate call shares across all of its constraints."""

    # Read at construction, so a caller (or a test) can lower the module's limits.
    max_depth: int = field(default_factory=lambda: MAX_DEPTH)
    max_entries: int = field(default_factory=lambda: MAX_ENTRIES)
    seconds: float = field(default_factory=lambda: TIME_BUDGET)
    entries: int = 0
    hit: set[str] = field(default_factory=set)
    _deadline: float = 0.0
    _pseudo_devs: dict[int | None, frozenset[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.seconds

    @property
    def exhausted(self) -> bool:
        return bool(self.hit & {"entries", "time"})

    def spend(self) -> bool:
        """Count one directory entry; False once a count or time limit is reached."""
        if self.exhausted:
            return False
        self.entries += 1
        if self.entries > self.max_entries:
            self._limit("entries", f"examined {self.max_entries} directory entries")
            return False
        if time.monotonic() > self._deadline:
            self._limit("time", f"ran for {self.seconds:g} s")
            return False
        return True

    def deeper(self, depth: int) -> bool:
        if depth <= self.max_depth:
            return True
        self._limit("depth", f"reached {self.max_depth} directory levels (deeper ones skipped)")
        return False

    def pseudo(self, st: os.stat_result, root: int | None = None) -> bool:
        """Is ``st`` on a pseudo file system mounted in our namespace (or in ``root``'s)?"""
        devs = self._pseudo_devs.get(root)
        if devs is None:
            devs = _pseudo_devices()
            if root is not None:
                devs |= _pseudo_devices(f"/proc/{root}/mountinfo")
            self._pseudo_devs[root] = devs
        return st.st_dev in devs

    def _limit(self, kind: str, what: str) -> None:
        if kind not in self.hit:
            self.hit.add(kind)
            log.warning("go_executables: walk stopped early: %s; returning the rows found so far", what)


@dataclass(frozen=True, slots=True)
class Found:
    """A regular file the walk found; ``dir_fd`` is valid only until the walk resumes."""

    dir_fd: int
    name: str
    path: str  # spelled as the pattern spells its prefix, so SQLite's re-check of the row passes
    directory: str
    st: os.stat_result  # lstat of the entry


def files_like(pattern: str, budget: Budget, root: int | None = None) -> Iterator[Found]:
    """Regular files matching a ``path LIKE`` pattern (inside process ``root``'s root when given)."""
    yield from _like(pattern, budget, dirs=False, root=root)


def files_in_dirs_like(pattern: str, budget: Budget, root: int | None = None) -> Iterator[Found]:
    """Regular files directly inside each directory matching a ``directory LIKE`` pattern."""
    yield from _like(pattern, budget, dirs=True, root=root)


def files_in(directory: str, budget: Budget, root: int | None = None) -> Iterator[Found]:
    """Regular files directly inside ``directory`` (``directory = ...``), opened as named."""
    if not SUPPORTED or not os.path.isabs(directory):
        return
    root, inner = split_root(directory, root)
    try:
        fd = open_dir(inner, root)
    except OSError:
        return
    try:
        yield from _list_files(fd, directory.rstrip("/") or "", directory, budget)
    finally:
        os.close(fd)


@contextmanager
def file_at(path: str, root: int | None = None) -> Iterator[Found | None]:
    """``path = X``: the regular file at ``path`` (never a symlink, FIFO or device), its directory
    opened as named, or inside process ``root``'s root; None when there is none. The descriptor in
    the Found is valid inside the ``with`` block only."""
    if not SUPPORTED or not os.path.isabs(path):
        yield None
        return
    root, inner = split_root(path, root)
    head, name = os.path.split(inner)
    fd = -1
    found = None
    try:
        if name and name not in (".", ".."):
            fd = open_dir(head or "/", root)
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                found = Found(fd, name, path, os.path.split(path)[0], st)
    except (OSError, ValueError):
        found = None
    try:
        yield found
    finally:
        if fd >= 0:
            os.close(fd)


def split_root(path: str, root: int | None = None) -> tuple[int | None, str]:
    """(process whose root ``path`` lies in, the path inside that root): ``/proc/<pid>/root/x``
    is ``x`` in <pid>'s root. With ``root`` given the path is already inside that root."""
    if root is not None:
        return root, path
    m = _PROC_ROOT.match(path)
    if m is None:
        return None, path
    return int(m.group(1)), path[m.end():] or "/"


def open_dir(path: str, root: int | None = None) -> int:
    """A directory descriptor for absolute ``path``: opened as named (symlinks followed, as the
    query names it), or, with ``root``, resolved inside /proc/<root>/root so that no symlink or
    ``..`` leads out of it. Raises OSError."""
    if root is None:
        return os.open(path, _O_DIR)
    root_fd = os.open(f"/proc/{root}/root", _O_DIR)
    try:
        return open_in_root(root_fd, path.split("/"))
    finally:
        os.close(root_fd)


# --- pattern handling -------------------------------------------------------------------------


def glob_patterns(pattern: str) -> tuple[list[str], bool]:
    """The glob(3) patterns osquery would evaluate for a LIKE pattern, and whether it recurses."""
    glob = pattern.replace("%", "*")
    wild = glob.rfind("**")
    recursive = wild >= 0 and wild + 3 >= len(glob)
    out = []
    for p in _braces(glob):
        if p.startswith("~"):
            p = os.path.expanduser(p)  # GLOB_TILDE; an unknown ~user stays relative: no match
        if p.startswith("/"):
            out.append(p)
    return out, recursive


def _braces(pattern: str) -> list[str]:
    """GLOB_BRACE expansion, bounded by :data:`MAX_PATTERNS`."""
    results: list[str] = []
    work = [pattern]
    while work and len(results) < MAX_PATTERNS:
        p = work.pop()
        span = _brace_span(p)
        if span is None:
            results.append(p)
            continue
        start, end, parts = span
        for part in reversed(parts):
            if len(work) + len(results) >= MAX_PATTERNS:
                break
            work.append(p[:start] + part + p[end + 1 :])
    return results


def _brace_span(p: str) -> tuple[int, int, list[str]] | None:
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth, j, parts, last = 0, i + 1, [], i + 1
            while j < len(p):
                d = p[j]
                if d == "\\":
                    j += 2
                    continue
                if d == "{":
                    depth += 1
                elif d == "}":
                    if depth == 0:
                        parts.append(p[last:j])
                        return i, j, parts
                    depth -= 1
                elif d == "," and depth == 0:
                    parts.append(p[last:j])
                    last = j + 1
                j += 1
            return None  # unmatched: glibc takes the braces literally
        i += 1
    return None


class _Component:
    """One path level of a glob pattern."""

    __slots__ = ("literal", "regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.literal: str | None = None
        self.regex: re.Pattern[str] | None = None
        if _WILD.search(text):
            self.regex = re.compile(translate(_unescape_brackets(text)))
        else:
            self.literal = text

    def matches(self, name: str) -> bool:
        if self.literal is not None:
            return name == self.literal
        assert self.regex is not None
        if name.startswith(".") and not self.text.startswith("."):
            return False  # glob(3) without GLOB_PERIOD: wildcards never match a leading dot
        return self.regex.fullmatch(name) is not None


def _unescape_brackets(text: str) -> str:
    # glob(3) honours backslash escapes; fnmatch does not, so spell an escaped char as a class.
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append("[" + text[i + 1] + "]" if text[i + 1] not in "]!^" else text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# --- the walk ---------------------------------------------------------------------------------


@dataclass
class _Node:
    fd: int
    path: str  # without a trailing slash ("" for the root)
    index: int  # next component to match; == len(components): descending (or a matched dir)
    depth: int
    key: tuple[int, int]  # (st_dev, st_ino): a directory equal to an ancestor is a (bind mount) loop
    pending: list[tuple[str, int]] = field(default_factory=list)  # (name, index) still to enter


def _like(pattern: str, budget: Budget, dirs: bool, root: int | None) -> Iterator[Found]:
    if not SUPPORTED:
        return
    patterns, recursive = glob_patterns(pattern)
    seen: set[str] = set()
    for glob in patterns:
        for found in _walk_glob(glob, recursive, dirs, budget, root):
            if found.path not in seen:
                seen.add(found.path)
                yield found
        if budget.exhausted:
            return


def _walk_glob(glob: str, recursive: bool, dirs: bool, budget: Budget, root: int | None) -> Iterator[Found]:
    shown = ""  # how rows spell the root: the pattern's own "/proc/<pid>/root" prefix, if any
    m = _PROC_ROOT.match(glob) if root is None else None
    if m is not None:
        root, shown, glob = int(m.group(1)), m.group(0), glob[m.end():] or "/"
    parts = glob.split("/")[1:]  # glob starts with "/"
    trailing_slash = parts[-1] == ""
    if trailing_slash:
        if not dirs:
            return  # only directories match "x/"; and a file row would fail SQLite's re-check
        parts = parts[:-1]
    if not parts:
        return
    comps = [_Component(p) for p in parts]
    # The literal prefix the query names is opened as named (symlinks included); the last
    # component always goes through the matcher.
    k = 0
    while k < len(comps) - 1 and comps[k].literal is not None:
        k += 1
    prefix = "/".join(parts[:k])
    root_path = "/" + prefix if prefix else ""
    try:
        root_fd = open_dir(root_path or "/", root)
    except OSError:
        return
    try:
        st = os.fstat(root_fd)
    except OSError:
        os.close(root_fd)
        return
    stack = [_Node(root_fd, shown + root_path, k, 0, (st.st_dev, st.st_ino))]
    try:
        out: _Out = []
        stack[0].pending = _plan(stack[0], comps, recursive, dirs, budget, out)
        yield from _emit(out, stack[0], dirs, trailing_slash)
        while stack and not budget.exhausted:
            node = stack[-1]
            if not node.pending:
                os.close(node.fd)
                stack.pop()
                continue
            name, index = node.pending.pop()
            child = _enter(node, name, index, budget, stack, root)
            if child is None:
                continue
            stack.append(child)
            out = []
            child.pending = _plan(child, comps, recursive, dirs, budget, out)
            yield from _emit(out, child, dirs, trailing_slash)
    finally:
        for node in stack:
            os.close(node.fd)


def _enter(parent: _Node, name: str, index: int, budget: Budget, ancestors: list[_Node],
           root: int | None) -> _Node | None:
    if not budget.deeper(parent.depth + 1):
        return None
    try:
        fd = os.open(name, _O_DIR | _O_NOFOLLOW, dir_fd=parent.fd)
    except OSError:
        return None  # vanished, unreadable, or swapped for a symlink: not entered
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode) and not budget.pseudo(st, root) and all(a.key != key for a in ancestors):
            return _Node(fd, f"{parent.path}/{name}", index, parent.depth + 1, key)
    except OSError:
        pass
    os.close(fd)
    return None


_Out = list[tuple[str, os.stat_result]]


def _plan(node: _Node, comps: list[_Component], recursive: bool, dirs: bool, budget: Budget,
          out: _Out) -> list[tuple[str, int]]:
    """List ``node``: append matching regular files to ``out``; return the subdirectories to enter."""
    n = len(comps)
    enter: list[tuple[str, int]] = []
    if node.index < n:
        comp = comps[node.index]
        last = node.index == n - 1
        if comp.literal is not None:
            # One name to try: no need to list the directory.
            if not budget.spend():
                return enter
            try:
                st = os.stat(comp.literal, dir_fd=node.fd, follow_symlinks=False)
            except (OSError, ValueError):
                return enter
            _classify(comp.literal, st, last, node.index, n, recursive, dirs, out, enter)
            return enter
        for name, st in _scan(node.fd, budget, need_stat=lambda nm: comp.matches(nm)):
            _classify(name, st, last, node.index, n, recursive, dirs, out, enter)
        enter.reverse()  # the stack pops from the end: keep directory order
        return enter
    # Below the last component: a matched directory (dirs mode) or recursion.
    for name, st in _scan(node.fd, budget, need_stat=lambda nm: True):
        hidden = name.startswith(".")
        if stat.S_ISREG(st.st_mode):
            if dirs or not hidden:
                out.append((name, st))
        elif stat.S_ISDIR(st.st_mode) and recursive and not hidden:
            enter.append((name, n))
    enter.reverse()
    return enter


def _classify(name: str, st: os.stat_result, last: bool, index: int, n: int, recursive: bool,
              dirs: bool, out: _Out, enter: list[tuple[str, int]]) -> None:
    if stat.S_ISREG(st.st_mode):
        if last and not dirs:
            out.append((name, st))
    elif stat.S_ISDIR(st.st_mode):
        if not last:
            enter.append((name, index + 1))
        elif dirs or recursive:
            enter.append((name, n))


def _scan(fd: int, budget: Budget, need_stat: Callable[[str], bool]) -> Iterator[tuple[str, os.stat_result]]:
    """(name, lstat) of the entries ``need_stat`` selects, counting every entry against the budget.

    The listing is read whole (bounded by the entry budget) so that no directory stays open while
    the caller works on the next one.
    """
    names: list[str] = []
    try:
        with os.scandir(fd) as it:
            for entry in it:
                if not budget.spend():
                    break
                if need_stat(entry.name):
                    names.append(entry.name)
    except OSError:
        pass  # unreadable directory: nothing in it
    for name in names:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        yield name, st


def _emit(out: _Out, node: _Node, dirs: bool, trailing_slash: bool) -> Iterator[Found]:
    if not out:
        return
    if dirs:
        directory = (node.path or "/") + ("/" if trailing_slash and node.path else "")
    else:
        directory = node.path or "/"
    for name, st in out:
        yield Found(node.fd, name, f"{node.path}/{name}", directory, st)


def _list_files(fd: int, base: str, directory: str, budget: Budget) -> Iterator[Found]:
    listing = list(_scan(fd, budget, need_stat=lambda nm: True))
    for name, st in listing:
        if stat.S_ISREG(st.st_mode):
            yield Found(fd, name, f"{base}/{name}", directory, st)


def _pseudo_devices(mountinfo: str = "/proc/self/mountinfo") -> frozenset[int]:
    """Device numbers of mounted pseudo file systems (Linux mountinfo; else none)."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    devs = set()
    try:
        with open(mountinfo, "rb") as f:
            data = f.read(8 << 20)
    except OSError:
        return frozenset()
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
            fstype = fields[sep + 1]
            major, minor = fields[2].split(":")
        except (ValueError, IndexError):
            continue
        if fstype in PSEUDO_FS:
            try:
                devs.add(os.makedev(int(major), int(minor)))
            except (ValueError, OverflowError):
                continue
    return frozenset(devs)


def open_found(found: Found) -> int:
    """Open a found file race-free: relative to its directory, no symlink, no blocking open, and
    only if it is still the regular file the walk saw (else OSError)."""
    fd = os.open(found.name, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_CLOEXEC", 0), dir_fd=found.dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (found.st.st_dev, found.st.st_ino):
            raise OSError(errno.ESTALE, "changed while scanning")
    except OSError:
        os.close(fd)
        raise
    return fd
