"""The detector: build-info results keyed by file identity, in the project's one cache type."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from ..common import Cache
from ._model import BuildInfo, BuildInfoError, FuncTable, UnreadableFile
from ._read import read_build_info, read_functions

# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): a rewritten or replaced binary gets a new
# key. The owner of a file can put its mtime back (utimensat); nobody can set its ctime.
Identity = tuple[int, int, int, int, int]
# Errors are values here: a non-Go binary is cached as its NotGoExecutable and not re-read.
Result = BuildInfo | BuildInfoError
Functions = FuncTable | BuildInfoError

T = TypeVar("T")


def identity_of(st: os.stat_result) -> Identity:
    """The cache key of the file ``st`` describes."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Detector:
    """Reads each distinct executable once; safe to share between server threads.

    Verdicts about a file's content are cached; UnreadableFile (open or read failed, the file
    changed under us) says nothing about the content and is retried next time.
    """

    def __init__(self, max_entries: int = 65536, max_tables: int = 64) -> None:
        self._cache: Cache[Identity, Result] = Cache(max_entries)
        # Function tables are large (tens of thousands of names): fewer of them are kept.
        self._tables: Cache[Identity, Functions] = Cache(max_tables)

    def cached(self, identity: Identity) -> Result | None:
        """The cached answer for ``identity``, or None (nothing is read)."""
        return self._cache.get(identity)

    def detect(self, identity: Identity, open_fd: Callable[[], int]) -> Result:
        """Answer from the cache, or open the file with ``open_fd`` (closed here) and read it.

        What is read is cached under ``identity``, so the opened file must be the one it names:
        between a caller's stat and this open a pid can be reused or a path replaced.
        """
        result = self._cache.get(identity)
        if result is not None:
            return result
        return _opened(identity, open_fd, lambda fd: self._read(identity, fd))

    def functions(self, identity: Identity, open_fd: Callable[[], int]) -> Functions:
        """The function table (pclntab), cached by ``identity``; opened and checked as
        :meth:`detect` does. Read only when asked: a detect() never pays for it."""
        table = self._tables.get(identity)
        if table is not None:
            return table
        return _opened(identity, open_fd, lambda fd: self._read_functions(identity, fd))

    def functions_path(self, path: str | os.PathLike[str]) -> tuple[Identity | None, Functions]:
        """Open ``path`` safely (no symlinks, no FIFOs), then answer as :meth:`functions` does.
        For a caller holding only a path (the tests, bench/); tables use :meth:`functions`."""
        return _at_path(path, self._tables.get, self._read_functions)

    def detect_path(self, path: str | os.PathLike[str]) -> tuple[Identity | None, Result]:
        """Open ``path`` safely (no symlinks, no FIFOs), then answer as :meth:`detect` does.
        For a caller holding only a path (the tests, bench/); tables use :meth:`detect` with the
        opener of what they found."""
        return _at_path(path, self._cache.get, self._read)

    def __len__(self) -> int:
        return len(self._cache)

    def _read(self, identity: Identity, fd: int) -> Result:
        try:
            result: Result = read_build_info(fd)
        except UnreadableFile as e:
            return e  # EIO, an fd that cannot be read: transient, not a verdict on the content
        except BuildInfoError as e:
            result = e
        self._cache.put(identity, result)
        return result

    def _read_functions(self, identity: Identity, fd: int) -> Functions:
        try:
            table: Functions = read_functions(fd)
        except UnreadableFile as e:
            return e  # transient, as in _read
        except BuildInfoError as e:
            table = e
        self._tables.put(identity, table)
        return table


def _opened(identity: Identity, open_fd: Callable[[], int], read: Callable[[int], T]) -> T | UnreadableFile:
    """``read`` the file ``open_fd`` opens (closed here) when it is the one ``identity`` names."""
    try:
        fd = open_fd()
    except OSError as e:
        return UnreadableFile(f"open: {e.strerror or e}")
    try:
        try:
            opened = identity_of(os.fstat(fd))
        except OSError as e:
            return UnreadableFile(f"fstat: {e.strerror or e}")
        if opened != identity:
            return UnreadableFile("the file changed between stat and open")
        return read(fd)
    finally:
        os.close(fd)


def _at_path(path: str | os.PathLike[str], cached: Callable[[Identity], T | None],
             read: Callable[[Identity, int], T]) -> tuple[Identity | None, T | UnreadableFile]:
    """Open ``path`` without following a symlink or blocking on a FIFO; answer from the cache by
    the opened file's identity, else ``read`` it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        return None, UnreadableFile(f"open: {e.strerror or e}")
    try:
        try:
            identity = identity_of(os.fstat(fd))
        except OSError as e:
            return None, UnreadableFile(f"fstat: {e.strerror or e}")
        found = cached(identity)
        return identity, found if found is not None else read(identity, fd)
    finally:
        os.close(fd)
