"""A bounded, thread-safe cache of reader results keyed by file identity."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from ._model import BuildInfo, BuildInfoError, FuncTable, UnreadableFile
from ._read import read_build_info, read_functions

# (st_dev, st_ino, st_size, st_mtime_ns): a rewritten or replaced binary gets a new key.
Identity = tuple[int, int, int, int]
# Errors are values here: a non-Go binary is cached as its NotGoExecutable and not re-read.
Result = BuildInfo | BuildInfoError


def identity_of(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Detector:
    """Reads each distinct executable once; safe to share between server threads."""

    def __init__(self, max_entries: int = 65536, max_tables: int = 64) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Identity, Result] = OrderedDict()
        # Function tables are large (tens of thousands of names): fewer of them are kept.
        self._max_tables = max_tables
        self._tables: OrderedDict[Identity, FuncTable | BuildInfoError] = OrderedDict()

    def cached(self, identity: Identity) -> Result | None:
        with self._lock:
            result = self._entries.get(identity)
            if result is not None:
                self._entries.move_to_end(identity)
            return result

    def detect(self, identity: Identity, open_fd: Callable[[], int]) -> Result:
        """Answer from the cache, or open the file with ``open_fd`` (closed here) and read it.

        What is read is cached under ``identity``, so the opened file must be the one it names:
        between a caller's stat and this open a pid can be reused or a path replaced.
        """
        result = self.cached(identity)
        if result is not None:
            return result
        try:
            fd = open_fd()
        except OSError as e:
            # Not cached: a permission error or a vanished file says nothing about the binary.
            return UnreadableFile(f"open: {e.strerror or e}")
        try:
            try:
                opened = identity_of(os.fstat(fd))
            except OSError as e:
                return UnreadableFile(f"fstat: {e.strerror or e}")
            if opened != identity:
                return UnreadableFile("the file changed between stat and open")  # not cached
            result = _read_fd(fd)
        finally:
            os.close(fd)
        self._store(identity, result)
        return result

    def detect_path(self, path: str | os.PathLike[str]) -> tuple[Identity | None, Result]:
        """Open ``path`` safely (no symlinks, no FIFOs), then answer as :meth:`detect` does."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            return None, UnreadableFile(f"open: {e.strerror or e}")
        try:
            identity = identity_of(os.fstat(fd))
            result = self.cached(identity)
            if result is None:
                result = _read_fd(fd)
                self._store(identity, result)
            return identity, result
        finally:
            os.close(fd)

    def functions(self, identity: Identity, open_fd: Callable[[], int]) -> FuncTable | BuildInfoError:
        """The function table, cached by ``identity``; opened and checked as :meth:`detect` does."""
        with self._lock:
            table = self._tables.get(identity)
            if table is not None:
                self._tables.move_to_end(identity)
                return table
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
                return UnreadableFile("the file changed between stat and open")  # not cached
            table = _functions_fd(fd)
        finally:
            os.close(fd)
        self._store_table(identity, table)
        return table

    def functions_path(self, path: str | os.PathLike[str]
                       ) -> tuple[Identity | None, FuncTable | BuildInfoError]:
        """Open ``path`` safely (no symlinks, no FIFOs), then answer as :meth:`functions` does."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            return None, UnreadableFile(f"open: {e.strerror or e}")
        try:
            identity = identity_of(os.fstat(fd))
            return identity, self.functions(identity, lambda: os.dup(fd))
        finally:
            os.close(fd)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _store_table(self, identity: Identity, table: FuncTable | BuildInfoError) -> None:
        with self._lock:
            self._tables[identity] = table
            self._tables.move_to_end(identity)
            while len(self._tables) > self._max_tables:
                self._tables.popitem(last=False)

    def _store(self, identity: Identity, result: Result) -> None:
        with self._lock:
            self._entries[identity] = result
            self._entries.move_to_end(identity)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


def _functions_fd(fd: int) -> FuncTable | BuildInfoError:
    try:
        return read_functions(fd)
    except BuildInfoError as e:
        return e


def _read_fd(fd: int) -> Result:
    try:
        return read_build_info(fd)
    except BuildInfoError as e:
        return e
