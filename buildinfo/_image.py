"""What the block search and the fallbacks need from one executable image, whatever its format.

Modelled on the `exe` interface of Go's debug/buildinfo: each format says where to search
(`data_regions`) and how to read at a virtual address (`read_data`); one routine in _read.py does
the rest. The symbol, pclntab and build-ID questions are asked only when the block is missing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from functools import partial
from typing import Literal, NamedTuple

from ._io import Budget, Reader
from ._model import MalformedExecutable

# Counts over these are treated as hostile.
MAX_SECTIONS = 1 << 16
MAX_SEGMENTS = 1 << 12
MAX_SYMTAB = 32 << 20  # bytes of symbol entries or names we are willing to read
MAX_REGIONS = 8  # data regions searched for the block
MAX_DATA_REGIONS = 32  # sections searched for the pclntab or a Go string (a cgo ELF has many)
MAX_HITS = 64  # occurrences of one name in a string table we are willing to check
MAX_TAILS = 4096  # occurrences of a common name ending checked before searching name by name

BUILD_ID_MARKER = b'\xff Go build ID: "'
# Go's buildid reader looks this far into the file for the marker.
BUILD_ID_WINDOW = 32 << 10

# Strings in a symbol table that only gccgo output has: function descriptors ("$descriptor"
# before GCC 7, "..f" since), the init entry point, and libgo's imports in dynamic binaries.
GCCGO_MARKERS = (b"$descriptor\0", b"..f\0", b"\0__go_init_main\0", b"\0runtime..import\0", b"\0__go_go\0")

# Keys the names the fallbacks search for share: a table without a key holds none of the names
# that contain it, which one search answers. Most names are the runtime's; "$" (one byte: a
# memchr) and "\0__go_" rule out three gccgo markers in the tables of C and C++ programs.
RUNTIME = b"runtime."
KEYS = (RUNTIME, b"$", b"\0__go_")

ByteOrder = Literal["little", "big"]


class AddrRange(NamedTuple):
    """A range of virtual addresses, read through :meth:`Image.read_data`. A distinct type from
    :class:`FileRange` (the fields differ too), so passing one where the other is meant is a type
    error: the two coincide in some files and not in others."""

    addr: int
    size: int


class FileRange(NamedTuple):
    """A range of file offsets, read through the image's :class:`Reader` (``img.r``)."""

    offset: int
    size: int


def cstr(b: bytes) -> bytes:
    """``b`` up to its first NUL (a C string in a fixed-size field or a string table)."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def read_go_string(img: Image, addr: int, limit: int, ptr_size: int | None = None,
                   order: ByteOrder | None = None) -> bytes | None:
    """The Go string whose header (pointer, length) is at virtual address ``addr``; None if it is
    unreadable or longer than ``limit``. The pointer size and byte order are the image's unless the
    caller knows better (a build-info header names its own)."""
    ptr_size = ptr_size or img.ptr_size
    order = order or img.byte_order
    hdr = img.read_data(addr, 2 * ptr_size)
    if len(hdr) < 2 * ptr_size:
        return None
    data_addr = int.from_bytes(hdr[:ptr_size], order)
    length = int.from_bytes(hdr[ptr_size:], order)
    if length > limit:
        return None
    data = img.read_data(data_addr, length)
    return data if len(data) == length else None


class SymbolTable:
    """A bounded view of one symbol table: raw entries plus their string table.

    Lookups find a name's offsets in the string table first (bytes.find), then the entries whose
    name field holds one of them, so no per-symbol Python loop runs over large tables. Every search
    is charged to the file's search budget; once it is spent, searches find nothing. The entries
    may be given as a loader (see :func:`table_loader`): most searches end in the string table.
    """

    def __init__(self, entries: bytes | Callable[[], bytes], entsize: int, names: bytes,
                 name_field: struct.Struct, name_pos: int, decode: struct.Struct, prefix: bytes = b"",
                 budget: Budget | None = None) -> None:
        self._entries = entries if isinstance(entries, bytes) else None
        self._load = None if isinstance(entries, bytes) else entries
        self.entsize = entsize
        self.names = names
        self.name_field = name_field  # packs a string-table offset as the entry stores it
        self.name_pos = name_pos  # where that field sits in an entry
        self.decode = decode  # unpacks a whole entry
        self.prefix = prefix  # "_" on Mach-O
        self.budget = budget if budget is not None else Budget()
        self._keys: dict[bytes, bool] = {}

    def _find(self, haystack: bytes, needle: bytes, start: int = 0) -> int:
        """``haystack.find(needle, start)``, scanning no further than the search budget allows."""
        budget = self.budget
        if budget.search <= 0:
            return -1
        end = min(len(haystack), start + budget.search + len(needle))
        at = haystack.find(needle, start, end)
        budget.search -= (at + len(needle) if at >= 0 else end) - start
        return at

    def _rfind(self, haystack: bytes, needle: bytes, end: int | None = None) -> int:
        """``haystack.rfind(needle, 0, end)`` within the search budget (scanning back from
        ``end``). Where only whether or where-all matters: CPython's rfind is about twice as fast
        as find on symbol names (measured on Go .strtab and C .dynstr tables, Python 3.11)."""
        budget = self.budget
        if budget.search <= 0:
            return -1
        end = len(haystack) if end is None else end
        start = max(0, end - budget.search - len(needle))
        at = haystack.rfind(needle, start, end)
        budget.search -= end - (at if at >= 0 else start)
        return at

    def _may_hold(self, needle: bytes) -> bool:
        """False when ``needle`` cannot be in the table: a non-Go program's dynamic string table
        can be megabytes (a large C++ program exports thousands of names), so the names sharing
        a key (:data:`KEYS`) are ruled out by one search for it instead of one per name."""
        for key in KEYS:
            if key in needle:
                held = self._keys.get(key)
                if held is None:
                    held = self._keys[key] = self._rfind(self.names, key) >= 0
                if not held:
                    return False
        return True

    def has_string(self, needle: bytes) -> bool:
        return self._may_hold(needle) and self._rfind(self.names, needle) >= 0

    def name_offsets(self, name: bytes) -> Iterator[int]:
        """Offsets in the string table where ``name`` ends a string (names may share tails), found
        lazily and in table order: the first one is usually the only one. An absent name (most
        lookups in a non-Go table) costs one backward search."""
        needle = self.prefix + name + b"\0"
        if not self._may_hold(needle) or self._rfind(self.names, needle) < 0:
            return
        i = self._find(self.names, needle)
        for _ in range(MAX_HITS):
            if i < 0:
                return
            yield i
            i = self._find(self.names, needle, i + 1)

    def members(self, package: bytes, names: frozenset[bytes]) -> set[bytes] | None:
        """Which of ``names`` (without the package) may be defined in ``package``: one search for
        ``package.`` (a long needle, found about once per symbol of that package) instead of one
        per name ending, whose short needles match thousands of unrelated names. None when the
        answer is unknown (too many occurrences): ask for each name."""
        needle = self.prefix + package + b"."
        table = self.names
        if len(table) <= len(needle):  # e.g. a Go PIE's .dynstr: one NUL
            return set()
        longest = max(map(len, names), default=0)
        # Every occurrence, searched backwards (the faster direction), then those a forward scan
        # resuming after each match would meet: the same set whatever the needle's overlaps.
        hits: list[int] = []
        i = self._rfind(table, needle)
        while i >= 0:
            hits.append(i)
            if len(hits) >= MAX_TAILS:
                return None
            i = self._rfind(table, needle, i + len(needle) - 1)
        found: set[bytes] = set()
        resume = 0
        for i in reversed(hits):
            if i < resume:
                continue
            start = resume = i + len(needle)
            end = table.find(b"\0", start, start + longest + 1)
            if end >= 0 and table[start:end] in names:
                found.add(table[start:end])
        return found

    @property
    def entries(self) -> bytes:
        """The raw entries, read on first use when a loader was given."""
        if self._entries is None:
            assert self._load is not None
            self._entries = self._load()
        return self._entries

    def entries_named(self, name: bytes) -> Iterator[tuple[int, ...]]:
        """Every entry (decoded) whose name is ``name``, found lazily: a caller that stops at the
        first one does not pay for the rest of the table."""
        for off in self.name_offsets(name):
            pat = self.name_field.pack(off)
            j = self._find(self.entries, pat)
            hits = 0
            while j >= 0 and hits < MAX_HITS:
                start = j - self.name_pos
                if start >= 0 and start % self.entsize == 0 and start + self.entsize <= len(self.entries):
                    yield self.decode.unpack_from(self.entries, start)
                hits += 1
                j = self._find(self.entries, pat, j + 1)


def table_loader(r: Reader, offset: int, size: int, what: str) -> Callable[[], bytes] | None:
    """:func:`read_table` with its checks made now and its read on the first call."""
    if size <= 0:
        return bytes
    if size > MAX_SYMTAB:
        return None
    if offset < 0 or offset + size > r.size:
        raise MalformedExecutable(f"{what} lies outside the file")
    return partial(r.read, offset, size)


def read_table(r: Reader, offset: int, size: int, what: str) -> bytes | None:
    """A symbol or string table, or None when it is absurdly large (treated as absent)."""
    load = table_loader(r, offset, size, what)
    return None if load is None else load()


class Image:
    """One executable image (a whole file, or one slice of a universal Mach-O)."""

    format = ""
    arch = ""
    byte_order: ByteOrder = "little"
    ptr_size = 8
    stripped = True

    def __init__(self, r: Reader) -> None:
        self.r = r

    # --- the block ---------------------------------------------------------------------------
    def data_regions(self) -> list[AddrRange]:
        """The address ranges of the regions that may hold the block, most likely first:
        its own section, else the writable data segments (a PIE's first one is often RELRO)."""
        raise NotImplementedError

    def read_data(self, addr: int, n: int) -> bytes:
        """Up to ``n`` bytes at virtual address ``addr``, stopping at the end of the segment
        holding it; b"" when no segment maps ``addr``."""
        raise NotImplementedError

    # --- without the block -------------------------------------------------------------------
    def symbols(self) -> list[SymbolTable]:
        """The image's symbol tables (full table first), loaded once; [] when there are none."""
        return []

    def symbol_address(self, entry: tuple[int, ...]) -> int | None:
        """The virtual address a decoded entry defines, or None for an undefined symbol."""
        raise NotImplementedError

    def pclntab_start(self) -> int | None:
        """Virtual address of the pclntab, from its section."""
        return None

    def search_pclntab(self) -> bool:
        """Whether a pclntab may hide in read-only data where no section or symbol names it."""
        return True

    def text_start(self) -> int | None:
        """Virtual address of the text section, where the Go linker puts runtime.text."""
        return None

    def readonly_data(self) -> list[AddrRange]:
        """The address ranges of initialised read-only data: where the pclntab is searched
        for when no section or symbol names it, and where Go keeps string bytes."""
        return []

    def writable_data(self) -> list[AddrRange]:
        """The address ranges of initialised writable data, where Go string variables keep
        their (pointer, length) headers."""
        return []

    def has_build_id(self) -> bool:
        """The Go build ID note or marker (read from the first bytes only)."""
        head = self.r.read_upto(0, BUILD_ID_WINDOW)
        return BUILD_ID_MARKER in head

    def rodata_regions(self) -> list[FileRange]:
        """The file ranges of read-only data, where gccgo leaves its module info."""
        return []

    # --- helpers -------------------------------------------------------------------------------
    def lookup(self, name: str) -> int | None:
        """Address of the first defined symbol named ``name``."""
        raw = name.encode()
        for table in self.symbols():
            for entry in table.entries_named(raw):
                addr = self.symbol_address(entry)
                if addr is not None:
                    return addr
        return None

    def may_define_in(self, package: str, names: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``names`` that a symbol table may define in ``package`` (as ``package.name``),
        in their order: what is worth a :meth:`lookup`."""
        raw = frozenset(n.encode() for n in names)
        needle = package.encode()
        keep: set[bytes] = set()
        for table in self.symbols():
            found = table.members(needle, raw)
            if found is None:
                return names
            keep |= found
        return tuple(n for n in names if n.encode() in keep) if keep else ()

    def has_gccgo_markers(self) -> bool:
        return any(t.has_string(m) for t in self.symbols() for m in GCCGO_MARKERS)
