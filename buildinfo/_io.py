"""A bounded reader over one regular file: every read is checked against the file's size and
charged to a per-file byte budget, so a hostile header can neither read past the end nor make
us read (or allocate) more than the budget."""

from __future__ import annotations

import os

from ._model import MalformedExecutable, UnreadableFile

# Total bytes one file may cost us. The fast path needs a few KB; symbol tables of very large
# unstripped binaries need a few MB; anything beyond this is treated as hostile.
READ_BUDGET = 64 << 20
# No single read (a string table, a section of symbols) may exceed this.
MAX_READ = 32 << 20
# Read once and served from memory: the file header, and usually the program headers too (ELF:
# also the notes and, in most files, the dynamic symbol and string tables).
HEAD = 8 << 10
# Likewise the end of the file, where ELF linkers put the section headers and their name table:
# one read instead of two for every ELF file.
TAIL = 8 << 10


# Bytes one file's symbol-table searches may scan (bytes.find over names and entries). bytes.find
# costs up to ~4 ns per byte on data made to defeat its skips, so this is about 30-50 ms of CPU. A
# lookup stops at its first defined entry: a legitimate file pays for the part of its tables before
# the name, a few MB for the largest Go binaries without a build-info block. Hostile tables (a name
# repeated in the string table, its offset planted nowhere in the entries) would otherwise cost a
# full pass per repetition, per name and per table: seconds per file. Once the budget is spent,
# searches find nothing and the weaker evidence (pclntab, build ID) decides.
SEARCH_BUDGET = 8 << 20


class Budget:
    """Shared by every view of one file (the slices of a universal Mach-O share one budget): bytes
    it may still read, and bytes its symbol searches may still scan."""

    __slots__ = ("left", "search")

    def __init__(self, total: int = READ_BUDGET, search: int = SEARCH_BUDGET) -> None:
        self.left = total
        self.search = search


class Reader:
    """Reads ``[base, base+size)`` of ``fd`` with ``os.pread`` (the fd's offset is untouched)."""

    __slots__ = ("_head", "_tail", "base", "budget", "fd", "size")

    def __init__(self, fd: int, size: int, base: int = 0, budget: Budget | None = None) -> None:
        self.fd = fd
        self.size = size
        self.base = base
        self.budget = budget if budget is not None else Budget()
        self._head: bytes | None = None
        self._tail: bytes | None = None

    def view(self, offset: int, size: int) -> Reader:
        """A reader over a sub-range (a universal file's slice), sharing this file's budget."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise MalformedExecutable("slice lies outside the file")
        return Reader(self.fd, size, self.base + offset, self.budget)

    def read(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` bytes at ``offset``, or MalformedExecutable."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise MalformedExecutable("read past end of file")
        if offset + n <= HEAD:
            head = self._head
            if head is None:
                head = self._head = self._pread(0, min(HEAD, self.size))
            return head[offset : offset + n]
        start = self.size - TAIL
        if offset >= start > HEAD:
            tail = self._tail
            if tail is None:
                tail = self._tail = self._pread(start, TAIL)
            return tail[offset - start : offset - start + n]
        return self._pread(offset, n)

    def read_upto(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the file; b"" past it)."""
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        return self.read(offset, min(n, self.size - offset))

    def _pread(self, offset: int, n: int) -> bytes:
        if n > MAX_READ:
            raise MalformedExecutable(f"a single read of {n} bytes is over the limit")
        if n > self.budget.left:
            raise MalformedExecutable("read budget exhausted")
        self.budget.left -= n
        if n == 0:
            return b""
        try:
            data = os.pread(self.fd, n, self.base + offset)
            if len(data) == n:
                return data
            # Regular files return short reads only at EOF (the file shrank under us): retry
            # a bounded number of times (four reads in all), then give up.
            parts = [data]
            got = len(data)
            for _ in range(3):
                if not data:
                    break
                data = os.pread(self.fd, n - got, self.base + offset + got)
                parts.append(data)
                got += len(data)
                if got == n:
                    return b"".join(parts)
        except OSError as e:  # EIO, or an fd not open for reading: the file, not its format
            raise UnreadableFile(f"read: {e.strerror or e}") from None
        raise MalformedExecutable("file shrank while being read")
