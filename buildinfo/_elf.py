"""ELF (32/64-bit, either byte order): a lean, bounds-checked header walk."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import NamedTuple

from ._image import (
    MAX_DATA_REGIONS,
    MAX_REGIONS,
    MAX_SECTIONS,
    MAX_SEGMENTS,
    AddrRange,
    FileRange,
    Image,
    SymbolTable,
    cstr,
    read_table,
    table_loader,
)
from ._io import Reader
from ._model import MalformedExecutable, UnsupportedFormat

PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W = 1, 2
SHT_SYMTAB, SHT_NOTE, SHT_NOBITS, SHT_DYNSYM = 2, 7, 8, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_COMPRESSED = 0x1, 0x2, 0x4, 0x800
SHN_XINDEX = 0xFFFF
PN_XNUM = 0xFFFF
MAX_NOTE = 1 << 16

# e_machine -> GOARCH, by class (32/64) and byte order where Go's names depend on them.
_MACHINES: dict[int, str] = {
    3: "386", 62: "amd64", 40: "arm", 183: "arm64", 20: "ppc", 21: "ppc64", 22: "s390x",
    8: "mips", 243: "riscv64", 258: "loong64", 2: "sparc", 43: "sparc64", 50: "ia64",
}

# Sections whose presence says "a Go toolchain was here": only then is the (possibly large)
# symbol table read, so non-Go binaries stay cheap.
_GO_HINTS = frozenset((".gopclntab", ".gosymtab", ".note.go.buildid", ".go.buildinfo", ".go_export",
                       ".data.rel.ro.gopclntab"))
_STRUCTS = {(e, is64, kind): struct.Struct(e + fmt) for e in "<>" for is64, kind, fmt in (
    (True, "section", "IIQQQQIIQQ"), (False, "section", "10I"),
    (True, "program", "IIQQQQQQ"), (False, "program", "8I"))}
# A symbol table entry's name field and the whole entry, by (byte order, 64-bit).
_SYMBOL = {(e, is64): (struct.Struct(e + "I"), struct.Struct(e + ("IBBHQQ" if is64 else "IIIBBH")))
           for e in "<>" for is64 in (True, False)}
_GO_HINT_NAMES = tuple(name.encode() + b"\0" for name in _GO_HINTS)
# The ELF header after e_ident, by (byte order, 64-bit).
_EHDR = {(e, True): struct.Struct(e + "HHIQQQIHHHHHH") for e in "<>"} | {
    (e, False): struct.Struct(e + "HHIIIIIHHHHHH") for e in "<>"}


def go_arch(machine: int, is64: bool, little: bool) -> str:
    arch = _MACHINES.get(machine, "")
    if arch == "mips":
        arch = ("mips64" if is64 else "mips") + ("le" if little else "")
    elif arch == "ppc64" and little:
        arch = "ppc64le"
    elif arch == "s390x" and not is64:
        arch = "s390"
    elif arch == "riscv64" and not is64:
        arch = "riscv"
    return arch or f"elf-machine-{machine}"


# A section header as struct unpacks it: the first eight fields have the same order in ELF32 and
# ELF64. Plain tuples, not objects: most files read here are not Go, and for them the headers are
# only scanned for a type or a name.
Section = tuple[int, ...]
SH_NAME, SH_TYPE, SH_FLAGS, SH_ADDR, SH_OFFSET, SH_SIZE, SH_LINK, SH_INFO = range(8)
_NATIVE = "<" if sys.byteorder == "little" else ">"
# (sh_name, sh_type) of one section header, the rest skipped.
_NAME_TYPE = {(e, is64): struct.Struct(e + ("II56x" if is64 else "II32x"))
              for e in "<>" for is64 in (True, False)}


class Segment(NamedTuple):
    """One program header, decoded once: the fields the reader uses, by name."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfImage(Image):
    format = "elf"

    def __init__(self, r: Reader) -> None:
        super().__init__(r)
        ident = r.read(0, 16)
        cls, data = ident[4], ident[5]
        if cls not in (1, 2) or data not in (1, 2):
            raise UnsupportedFormat("ELF header has an unknown class or byte order")
        self.is64 = cls == 2
        e = "<" if data == 1 else ">"
        self.e = e
        self.byte_order = "little" if data == 1 else "big"
        self.ptr_size = 8 if self.is64 else 4
        ehdr = _EHDR[e, self.is64]
        (_type, machine, _ver, _entry, phoff, shoff, _flags, _ehsize,
         phentsize, phnum, shentsize, shnum, shstrndx) = ehdr.unpack(r.read(16, ehdr.size))
        self.arch = go_arch(machine, self.is64, data == 1)
        shsize = 64 if self.is64 else 40
        if shoff and shentsize:
            self._check_ent(shentsize, shsize, "section")
            if shnum == 0 or shstrndx == SHN_XINDEX or phnum == PN_XNUM:
                # Extended numbering: the real counts are in section 0.
                sec0 = self._shdrs(r.read(shoff, shsize), shsize, 1)[0]
                shnum = shnum or sec0[SH_SIZE]
                shstrndx = sec0[SH_LINK] if shstrndx == SHN_XINDEX else shstrndx
                phnum = sec0[SH_INFO] if phnum == PN_XNUM else phnum
        else:
            shnum = 0
        if phnum > MAX_SEGMENTS or shnum > MAX_SECTIONS:
            raise MalformedExecutable("too many ELF program or section headers")
        # Program headers are read (and bounds-checked) now, decoded once when first used: a file
        # with section headers needs them only for its block.
        self._phdrs = b""
        self._phentsize = phentsize
        self._segments: list[Segment] | None = None
        self._loads: list[Segment] | None = None
        if phoff and phnum:
            self._check_ent(phentsize, 56 if self.is64 else 32, "program")
            self._phdrs = r.read(phoff, phnum * phentsize)
        # Section headers: only each one's name and type are decoded now (a Go binary's fast path
        # needs one whole header, its block's); the full tuples when a fallback asks for them.
        self._sections: list[Section] | None = []
        self._shraw = b""
        self._shnames: list[int] = []
        self._types: list[int] = []
        self._names = b""
        if shnum:
            fmt = _STRUCTS[e, self.is64, "section"]
            self._shraw = self._fixed(r.read(shoff, shnum * shentsize), shentsize, fmt.size)
            self._sections = None
            if e == _NATIVE:  # sh_name and sh_type are the first two 32-bit words of each entry
                words = memoryview(self._shraw).cast("I")
                step = fmt.size // 4
                self._shnames, self._types = words[0::step].tolist(), words[1::step].tolist()
            else:
                pairs = list(_NAME_TYPE[e, self.is64].iter_unpack(self._shraw))
                self._shnames = [n for n, _ in pairs]
                self._types = [t for _, t in pairs]
            if 0 < shstrndx < shnum:
                s = self._section_at(shstrndx)
                self._names = read_table(r, s[SH_OFFSET], s[SH_SIZE], "section name table") or b""
        self.stripped = SHT_SYMTAB not in self._types
        self._symtabs: list[SymbolTable] | None = None
        self._regions: dict[FileRange, bytes] = {}

    @property
    def sections(self) -> list[Section]:
        if self._sections is None:
            self._sections = list(_STRUCTS[self.e, self.is64, "section"].iter_unpack(self._shraw))
        return self._sections

    def _section_at(self, i: int) -> Section:
        if self._sections is not None:
            return self._sections[i]
        fmt = _STRUCTS[self.e, self.is64, "section"]
        return fmt.unpack_from(self._shraw, i * fmt.size)

    @property
    def segments(self) -> list[Segment]:
        if self._segments is None:
            fmt = _STRUCTS[self.e, self.is64, "program"]
            entries = fmt.iter_unpack(self._fixed(self._phdrs, self._phentsize, fmt.size))
            if self.is64:
                self._segments = [Segment(t, f, off, vaddr, filesz)
                                  for t, f, off, vaddr, _pa, filesz, _mem, _al in entries]
            else:
                self._segments = [Segment(t, f, off, vaddr, filesz)
                                  for t, off, vaddr, _pa, filesz, _mem, f, _al in entries]
        return self._segments

    def _load_map(self) -> list[Segment]:
        """The PT_LOAD segments, in header order: all that read_data needs."""
        if self._loads is None:
            if self._segments is not None:
                self._loads = [p for p in self._segments if p.type == PT_LOAD]
            else:  # only these are decoded: the block's read needs no other program header
                fmt = _STRUCTS[self.e, self.is64, "program"]
                entries = fmt.iter_unpack(self._fixed(self._phdrs, self._phentsize, fmt.size))
                if self.is64:
                    self._loads = [Segment(t, f, off, vaddr, filesz)
                                   for t, f, off, vaddr, _pa, filesz, _mem, _al in entries if t == PT_LOAD]
                else:
                    self._loads = [Segment(t, f, off, vaddr, filesz)
                                   for t, off, vaddr, _pa, filesz, _mem, f, _al in entries if t == PT_LOAD]
        return self._loads

    @staticmethod
    def _fixed(raw: bytes, entsize: int, size: int) -> bytes:
        """Entries of ``entsize`` bytes cut to the ``size`` bytes a struct reads from each."""
        if entsize == size or not raw:
            return raw
        return b"".join(raw[at : at + size] for at in range(0, len(raw), entsize))

    # --- header helpers ------------------------------------------------------------------------
    @staticmethod
    def _check_ent(size: int, minimum: int, what: str) -> None:
        if size < minimum or size > 4096:
            raise MalformedExecutable(f"bad ELF {what} header entry size {size}")

    def _shdrs(self, raw: bytes, entsize: int, count: int) -> list[Section]:
        fmt = _STRUCTS[self.e, self.is64, "section"]
        return list(fmt.iter_unpack(self._fixed(raw[: count * entsize], entsize, fmt.size)))

    def _name_offsets(self, name: str) -> set[int]:
        """Offsets in the section name table where ``name`` can start (names may share tails)."""
        needle = name.encode() + b"\0"
        out: set[int] = set()
        i = self._names.find(needle)
        while i >= 0 and len(out) < 16:
            out.add(i)
            i = self._names.find(needle, i + 1)
        return out

    def section(self, name: str) -> Section | None:
        """The first section (in header order) named ``name``."""
        shnames = self._shnames
        found = [shnames.index(off) for off in self._name_offsets(name) if off in shnames]
        return self._section_at(min(found)) if found else None

    def name_of(self, s: Section) -> str:
        return cstr(self._names[s[SH_NAME] : s[SH_NAME] + 256]).decode("latin-1")

    # --- Image ---------------------------------------------------------------------------------
    def data_regions(self) -> list[AddrRange]:
        s = self.section(".go.buildinfo")
        if s is not None and s[SH_TYPE] != SHT_NOBITS:
            return [AddrRange(s[SH_ADDR], s[SH_SIZE])]
        if self._types:
            return []  # section headers present and no block section: not a Go 1.13+ binary
        return [AddrRange(p.vaddr, p.filesz) for p in self.segments
                if p.type == PT_LOAD and p.flags & (PF_X | PF_W) == PF_W and p.filesz][:MAX_REGIONS]

    def read_data(self, addr: int, n: int) -> bytes:
        loads = self._load_map()
        for p in loads:
            if p.vaddr <= addr < p.vaddr + p.filesz:
                return self._read_file(p.offset + addr - p.vaddr, min(n, p.vaddr + p.filesz - addr))
        if not loads:
            for s in self.sections:
                s_addr, s_size = s[SH_ADDR], s[SH_SIZE]
                if s[SH_FLAGS] & SHF_ALLOC and s[SH_TYPE] != SHT_NOBITS and s_addr <= addr < s_addr + s_size:
                    return self._read_file(s[SH_OFFSET] + addr - s_addr, min(n, s_addr + s_size - addr))
        return b""

    def _read_file(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.r.size:
            raise MalformedExecutable("segment lies outside the file")
        return self.r.read_upto(offset, n)

    def symbols(self) -> list[SymbolTable]:
        if self._symtabs is None:
            self._symtabs = []
            # A hint's name must be in the (small) name table before any section can carry it.
            names = self._names
            if (any(n in names for n in _GO_HINT_NAMES)
                    and any(self.section(name) is not None for name in _GO_HINTS)):
                for kind in (SHT_SYMTAB, SHT_DYNSYM):
                    t = self._table(kind)
                    if t is not None:
                        self._symtabs.append(t)
            else:
                # Only the small dynamic table: a gccgo program linked to libgo imports from it.
                t = self._table(SHT_DYNSYM)
                if t is not None:
                    self._symtabs.append(t)
        return self._symtabs

    def _table(self, kind: int) -> SymbolTable | None:
        if kind not in self._types:
            return None
        sec = self._section_at(self._types.index(kind))
        if not 0 < sec[SH_LINK] < len(self._types):
            return None
        strsec = self._section_at(sec[SH_LINK])
        if sec[SH_FLAGS] & SHF_COMPRESSED or strsec[SH_FLAGS] & SHF_COMPRESSED:
            return None  # never decompress
        entries = self._region_loader(sec[SH_OFFSET], sec[SH_SIZE], "symbol table")
        names = self._region(strsec[SH_OFFSET], strsec[SH_SIZE], "string table")
        if entries is None or names is None:
            return None
        name_field, decode = _SYMBOL[self.e, self.is64]
        return SymbolTable(entries, decode.size, names, name_field, 0, decode, budget=self.r.budget)

    def _region(self, offset: int, size: int, what: str) -> bytes | None:
        """:func:`read_table`, read once per range: section headers may point .symtab and .dynsym
        (or their string tables) at the same bytes, which would otherwise be read and held twice."""
        load = self._region_loader(offset, size, what)
        return None if load is None else load()

    def _region_loader(self, offset: int, size: int, what: str) -> Callable[[], bytes] | None:
        """:meth:`_region` checked now and read on first use (:func:`table_loader`)."""
        load = table_loader(self.r, offset, size, what)
        if load is None:
            return None
        key = FileRange(offset, size)
        # The closure holds the cache, not the image: an image whose symbol table held a loader
        # that held the image would be a reference cycle, and its buffers (the string tables,
        # megabytes in a large program) would outlive the read until the cyclic collector ran.
        regions = self._regions

        def once() -> bytes:
            if key not in regions:
                regions[key] = load()
            return regions[key]

        return once

    def symbol_address(self, entry: tuple[int, ...]) -> int | None:
        shndx = entry[3] if self.is64 else entry[5]
        if shndx == 0:
            return None
        return entry[4] if self.is64 else entry[1]

    def pclntab_start(self) -> int | None:
        for name in (".gopclntab", ".data.rel.ro.gopclntab"):
            s = self.section(name)
            if s is not None and s[SH_TYPE] != SHT_NOBITS and s[SH_SIZE] >= 16:
                return s[SH_ADDR]
        return None

    def has_build_id(self) -> bool:
        # Only the note sections' headers are decoded: most files read here are not Go.
        notes = [(s[SH_OFFSET], s[SH_SIZE]) for s in
                 map(self._section_at, [i for i, t in enumerate(self._types) if t == SHT_NOTE])]
        if not notes:
            notes = [(p.offset, p.filesz) for p in self.segments if p.type == PT_NOTE]
        for off, size in notes[:64]:
            if size <= MAX_NOTE and self._go_note(self.r.read_upto(off, size)):
                return True
        # Go's ELF output always carries the note; look for the text marker only in files
        # whose section headers are gone.
        return not self._types and super().has_build_id()

    def _go_note(self, data: bytes) -> bool:
        if b"Go\0\0" not in data:
            return False  # the note's name is in its bytes, or it is not there
        pos = 0
        for _ in range(256):
            if pos + 12 > len(data):
                return False
            namesz, descsz, ntype = struct.unpack_from(self.e + "III", data, pos)
            name = data[pos + 12 : pos + 12 + namesz]
            if name == b"Go\0\0" and ntype == 4:
                return True
            pos += 12 + (namesz + 3 & ~3) + (descsz + 3 & ~3)
        return False

    def rodata_regions(self) -> list[FileRange]:
        if self.sections:
            return [FileRange(s[SH_OFFSET], s[SH_SIZE]) for s in self.sections
                    if s[SH_FLAGS] & SHF_ALLOC and not s[SH_FLAGS] & (SHF_WRITE | SHF_EXECINSTR)
                    and s[SH_TYPE] != SHT_NOBITS and self.name_of(s).startswith(".rodata")]
        return [FileRange(p.offset, p.filesz) for p in self.segments
                if p.type == PT_LOAD and not p.flags & (PF_W | PF_X)]

    # --- the pclntab and data strings (read only when the block is missing or functions asked) ---
    def search_pclntab(self) -> bool:
        return not self._types  # Go's ELF output always has .gopclntab when it has sections

    def text_start(self) -> int | None:
        s = self.section(".text")
        return s[SH_ADDR] if s is not None else None

    def readonly_data(self) -> list[AddrRange]:
        if self._types:
            return [AddrRange(s[SH_ADDR], s[SH_SIZE]) for s in self.sections
                    if s[SH_FLAGS] & SHF_ALLOC and not s[SH_FLAGS] & (SHF_WRITE | SHF_EXECINSTR)
                    and s[SH_TYPE] not in (SHT_NOBITS, SHT_NOTE) and s[SH_SIZE]][:MAX_DATA_REGIONS]
        return [AddrRange(p.vaddr, p.filesz) for p in self.segments
                if p.type == PT_LOAD and not p.flags & PF_W and p.filesz][:MAX_DATA_REGIONS]

    def writable_data(self) -> list[AddrRange]:
        if self._types:
            return [AddrRange(s[SH_ADDR], s[SH_SIZE]) for s in self.sections
                    if s[SH_FLAGS] & (SHF_ALLOC | SHF_WRITE) == SHF_ALLOC | SHF_WRITE
                    and s[SH_TYPE] != SHT_NOBITS and s[SH_SIZE]][:MAX_DATA_REGIONS]
        return [AddrRange(p.vaddr, p.filesz) for p in self.segments
                if p.type == PT_LOAD and p.flags & (PF_X | PF_W) == PF_W and p.filesz][:MAX_DATA_REGIONS]
