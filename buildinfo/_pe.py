"""PE32 / PE32+: a lean header walk plus a bounded COFF symbol-table lookup (pefile does not
parse COFF symbols, and its full parse is the slow path; see the numbers in _read.py)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from ._image import (
    MAX_DATA_REGIONS,
    MAX_REGIONS,
    AddrRange,
    FileRange,
    Image,
    SymbolTable,
    cstr,
    read_table,
)
from ._io import Reader
from ._model import MalformedExecutable, UnsupportedFormat

MAX_PE_SECTIONS = 96  # the PE loader's own limit

IMAGE_SCN_CNT_INITIALIZED_DATA = 0x00000040
IMAGE_SCN_MEM_READ = 0x40000000
IMAGE_SCN_MEM_WRITE = 0x80000000
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_ALIGN_MASK = 0x00F00000  # every IMAGE_SCN_ALIGN_* value (golang/go#53071)
# Flags that may accompany a data section without changing what it is.
_DATA_IGNORED = IMAGE_SCN_ALIGN_MASK

_MACHINES = {0x14C: "386", 0x8664: "amd64", 0x1C0: "arm", 0x1C4: "arm", 0xAA64: "arm64",
             0x5064: "riscv64", 0x6264: "loong64"}

_SYMENT = 18


class PeSection(NamedTuple):
    name: str
    vsize: int
    vaddr: int
    rawsize: int
    rawptr: int
    flags: int


class PeImage(Image):
    format = "pe"

    def __init__(self, r: Reader) -> None:
        super().__init__(r)
        (lfanew,) = struct.unpack("<I", r.read(0x3C, 4))
        if r.read_upto(lfanew, 4) != b"PE\0\0":
            raise UnsupportedFormat("MZ file without a PE header (DOS executable)")
        machine, nsect, _ts, symptr, nsyms, optsize, _ch = struct.unpack("<HHIIIHH", r.read(lfanew + 4, 20))
        self.arch = _MACHINES.get(machine, f"pe-machine-{machine:#x}")
        if nsect > MAX_PE_SECTIONS:
            raise MalformedExecutable(f"{nsect} PE sections is over the limit")
        opt = lfanew + 24
        if optsize < 2:
            raise MalformedExecutable("PE optional header missing")
        (magic,) = struct.unpack("<H", r.read(opt, 2))
        if magic == 0x10B:
            (self.image_base,) = struct.unpack("<I", r.read(opt + 28, 4))
            self.ptr_size = 4
        elif magic == 0x20B:
            (self.image_base,) = struct.unpack("<Q", r.read(opt + 24, 8))
            self.ptr_size = 8
        else:
            raise MalformedExecutable(f"unknown PE optional header magic {magic:#x}")
        raw = r.read(opt + optsize, 40 * nsect)
        self.sections = []
        for i in range(nsect):
            name, vsize, vaddr, rawsize, rawptr, *_, flags = struct.unpack_from("<8sIIIIIIHHI", raw, 40 * i)
            self.sections.append(PeSection(cstr(name).decode("latin-1"), vsize, vaddr, rawsize, rawptr,
                                           flags))
        self.symptr, self.nsyms = symptr, nsyms
        self.stripped = not (symptr and nsyms)
        self._symtabs: list[SymbolTable] | None = None

    def data_regions(self) -> list[AddrRange]:
        want = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ | IMAGE_SCN_MEM_WRITE
        return [AddrRange(self.image_base + s.vaddr, s.vsize) for s in self.sections
                if s.vaddr and s.vsize and s.flags & ~_DATA_IGNORED == want][:MAX_REGIONS]

    def read_data(self, addr: int, n: int) -> bytes:
        rva = addr - self.image_base
        for s in self.sections:
            if s.vaddr <= rva < s.vaddr + s.rawsize:
                off = s.rawptr + rva - s.vaddr
                if off >= self.r.size:
                    raise MalformedExecutable("PE section lies outside the file")
                return self.r.read_upto(off, min(n, s.vaddr + s.rawsize - rva))
        return b""

    def symbols(self) -> list[SymbolTable]:
        if self._symtabs is None:
            self._symtabs = []
            if not self.stripped:
                size = self.nsyms * _SYMENT
                entries = read_table(self.r, self.symptr, size, "COFF symbol table")
                strsize_raw = self.r.read_upto(self.symptr + size, 4)
                if entries is not None and len(strsize_raw) == 4:
                    (strsize,) = struct.unpack("<I", strsize_raw)
                    # The string table's offsets count its own 4-byte size field.
                    names = read_table(self.r, self.symptr + size, strsize, "COFF string table")
                    if names is not None:
                        self._symtabs.append(SymbolTable(
                            entries, _SYMENT, names, struct.Struct("<4xI"), 0, struct.Struct("<4xIIhHBB"),
                            budget=self.r.budget))
        return self._symtabs

    def symbol_address(self, entry: tuple[int, ...]) -> int | None:
        _name, value, secnum = entry[0], entry[1], entry[2]
        if not 0 < secnum <= len(self.sections):
            return None
        return self.image_base + self.sections[secnum - 1].vaddr + value

    def rodata_regions(self) -> list[FileRange]:
        return [FileRange(s.rawptr, s.rawsize) for s in self.sections if s.name == ".rdata"]

    def text_start(self) -> int | None:
        for s in self.sections:
            if s.name == ".text":
                return self.image_base + s.vaddr
        return None

    def readonly_data(self) -> list[AddrRange]:
        # Go's PE output has no pclntab section: runtime.pclntab sits in .rdata; code sections
        # come last (searched only if the data ones hold no table).
        ro = [s for s in self.sections if s.vaddr and s.rawsize and not s.flags & IMAGE_SCN_MEM_WRITE]
        ro.sort(key=lambda s: bool(s.flags & IMAGE_SCN_MEM_EXECUTE))
        return [AddrRange(self.image_base + s.vaddr, min(s.vsize, s.rawsize) or s.rawsize)
                for s in ro][:MAX_DATA_REGIONS]

    def writable_data(self) -> list[AddrRange]:
        return [AddrRange(self.image_base + s.vaddr, min(s.vsize, s.rawsize)) for s in self.sections
                if s.vaddr and s.rawsize and s.flags & IMAGE_SCN_MEM_WRITE][:MAX_DATA_REGIONS]
