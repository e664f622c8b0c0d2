"""The project's one cache type, and the detector built on it: results keyed by file identity."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ._model import BuildInfo, BuildInfoError, FuncTable, UnreadableFile
from ._read import read_build_info, read_functions

# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): a rewritten or replaced binary gets a new
# key. The owner of a file can put its mtime back (utimensat); nobody can set its ctime.
Identity = tuple[int, int, int, int, int]
# Errors are values here: a non-Go binary is cached as its NotGoExecutable and not re-read.
Result = BuildInfo | BuildInfoError
Functions = FuncTable | BuildInfoError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def identity_of(st: os.stat_result) -> Identity:
    """The cache key of the file ``st`` describes."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Cache(Generic[K, V]):
    """A bounded, thread-safe map that evicts the least recently used entry: the one cache type
    every layer uses (the extension serves queries from several threads)."""

    __slots__ = ("_data", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries beyond the bound."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class Detector:
    """Reads each distinct executable once; safe to share between server threads.

    Verdicts about a file's content are cached; UnreadableFile (open or read failed, the file
    changed under us) says nothing about the content and is retried next time. Function tables
    are large (tens of thousands of names), so fewer of them are kept than build-info answers.
    """

    def __init__(self, max_entries: int = 65536, max_tables: int = 64) -> None:
        self._cache: Cache[Identity, Result] = Cache(max_entries)
        self._tables: Cache[Identity, Functions] = Cache(max_tables)

    def cached(self, identity: Identity) -> Result | None:
        """The cached answer for ``identity``, or None (nothing is read)."""
        return self._cache.get(identity)

    def detect(self, identity: Identity, open_fd: Callable[[], int]) -> Result:
        """Answer from the cache, or open the file with ``open_fd`` (closed here) and read it.

        What is read is cached under ``identity``, so the opened file must be the one it names:
        between a caller's stat and this open a pid can be reused or a path replaced.
        """
        return _answer(self._cache, read_build_info, identity, open_fd)

    def detect_path(self, path: str | os.PathLike[str]) -> tuple[Identity | None, Result]:
        """Open ``path`` safely (no symlinks, no FIFOs), then answer as :meth:`detect` does."""
        return _answer_path(self._cache, read_build_info, path)

    def functions(self, identity: Identity, open_fd: Callable[[], int]) -> Functions:
        """The function table, cached by ``identity``; opened and checked as :meth:`detect` does."""
        return _answer(self._tables, read_functions, identity, open_fd)

    def functions_path(self, path: str | os.PathLike[str]) -> tuple[Identity | None, Functions]:
        """Open ``path`` safely, then answer as :meth:`functions` does."""
        return _answer_path(self._tables, read_functions, path)

    def __len__(self) -> int:
        return len(self._cache)


T = TypeVar("T")


def _answer(cache: Cache[Identity, T | BuildInfoError], read: Callable[[int], T],
            identity: Identity, open_fd: Callable[[], int]) -> T | BuildInfoError:
    cached = cache.get(identity)
    if cached is not None:
        return cached
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
        return _read(cache, read, identity, fd)
    finally:
        os.close(fd)


def _answer_path(cache: Cache[Identity, T | BuildInfoError], read: Callable[[int], T],
                 path: str | os.PathLike[str]) -> tuple[Identity | None, T | BuildInfoError]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        return None, UnreadableFile(f"open: {e.strerror or e}")
    try:
        try:
            identity = identity_of(os.fstat(fd))
        except OSError as e:
            return None, UnreadableFile(f"fstat: {e.strerror or e}")
        cached = cache.get(identity)
        return identity, cached if cached is not None else _read(cache, read, identity, fd)
    finally:
        os.close(fd)


def _read(cache: Cache[Identity, T | BuildInfoError], read: Callable[[int], T],
          identity: Identity, fd: int) -> T | BuildInfoError:
    try:
        result: T | BuildInfoError = read(fd)
    except UnreadableFile as e:
        return e  # EIO, an fd that cannot be read: transient, not a verdict on the content
    except BuildInfoError as e:
        result = e
    cache.put(identity, result)
    return result
