"""Mach-O (32/64-bit, either byte order) and universal (fat) files: a lean load-command walk."""

from __future__ import annotations

import struct
from typing import NamedTuple

from ._image import (
    MAX_DATA_REGIONS,
    MAX_REGIONS,
    MAX_SECTIONS,
    AddrRange,
    FileRange,
    Image,
    SymbolTable,
    cstr,
    read_table,
)
from ._io import Reader
from ._model import MalformedExecutable, UnsupportedFormat

LC_SEGMENT, LC_SYMTAB, LC_SEGMENT_64 = 0x1, 0x2, 0x19
MAX_COMMANDS = 4096
MAX_FAT_ARCHES = 32  # a Java class file's version (>= 45 since Java 1.1) reads as more than this
VM_PROT_RW = 0x3

_CPUS = {7: "386", 0x01000007: "amd64", 12: "arm", 0x0100000C: "arm64", 0x0200000C: "arm64_32",
         18: "ppc", 0x01000012: "ppc64"}

MAGICS = {b"\xfe\xed\xfa\xce": (">", False), b"\xce\xfa\xed\xfe": ("<", False),
          b"\xfe\xed\xfa\xcf": (">", True), b"\xcf\xfa\xed\xfe": ("<", True)}


class MachSegment(NamedTuple):
    name: str
    vaddr: int
    offset: int
    filesz: int
    initprot: int


class MachSection(NamedTuple):
    name: str
    segname: str
    addr: int
    size: int
    offset: int
    flags: int


S_ZEROFILL_TYPES = (0x1, 0xC, 0x12)  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL


class MachOImage(Image):
    format = "macho"

    def __init__(self, r: Reader) -> None:
        super().__init__(r)
        magic = r.read(0, 4)
        if magic not in MAGICS:
            raise UnsupportedFormat("not a Mach-O file")
        e, self.is64 = MAGICS[magic]
        self.byte_order = "little" if e == "<" else "big"
        self.ptr_size = 8 if self.is64 else 4
        cputype, _sub, _ftype, ncmds, sizeofcmds, _flags = struct.unpack(e + "iiIIII", r.read(4, 24))
        self.arch = _CPUS.get(cputype & 0xFFFFFFFF, f"macho-cpu-{cputype & 0xFFFFFFFF:#x}")
        if ncmds > MAX_COMMANDS:
            raise MalformedExecutable(f"{ncmds} Mach-O load commands is over the limit")
        pos = 32 if self.is64 else 28
        cmds = r.read(pos, sizeofcmds)
        self.segments: list[MachSegment] = []
        self.sections: list[MachSection] = []
        self.symtab: tuple[int, int, int, int] | None = None
        at = 0
        for _ in range(ncmds):
            if at + 8 > len(cmds):
                raise MalformedExecutable("Mach-O load commands run past sizeofcmds")
            cmd, size = struct.unpack_from(e + "II", cmds, at)
            if size < 8 or at + size > len(cmds):
                raise MalformedExecutable("bad Mach-O load command size")
            body = cmds[at : at + size]
            if cmd in (LC_SEGMENT, LC_SEGMENT_64):
                self._segment(body, e, cmd == LC_SEGMENT_64)
            elif cmd == LC_SYMTAB and size >= 24:
                self.symtab = struct.unpack_from(e + "IIII", body, 8)
            at += size
        self.e = e
        self.stripped = self.symtab is None or self.symtab[1] == 0
        self._symtabs: list[SymbolTable] | None = None

    def _segment(self, body: bytes, e: str, is64: bool) -> None:
        if is64:
            hdr, sect = struct.Struct(e + "16sQQQQiiII"), struct.Struct(e + "16s16sQQIIIII")
            sect_size = 80
        else:
            hdr, sect = struct.Struct(e + "16sIIIIiiII"), struct.Struct(e + "16s16sIIIIIII")
            sect_size = 68
        if len(body) < 8 + hdr.size:
            raise MalformedExecutable("short Mach-O segment command")
        name, vaddr, _vsize, off, filesz, _maxprot, initprot, nsects, _fl = hdr.unpack_from(body, 8)
        seg = MachSegment(cstr(name).decode("latin-1"), vaddr, off, filesz, initprot)
        self.segments.append(seg)
        if nsects > MAX_SECTIONS or 8 + hdr.size + nsects * sect_size > len(body):
            raise MalformedExecutable("Mach-O section count does not fit its segment command")
        for i in range(nsects):
            sname, segname, addr, size, soff, _align, _reloff, _nreloc, flags = sect.unpack_from(
                body, 8 + hdr.size + i * sect_size)
            self.sections.append(MachSection(cstr(sname).decode("latin-1"), cstr(segname).decode("latin-1"),
                                             addr, size, soff, flags))

    def section(self, name: str) -> MachSection | None:
        for s in self.sections:
            if s.name == name and s.flags & 0xFF not in S_ZEROFILL_TYPES:
                return s
        return None

    def data_regions(self) -> list[AddrRange]:
        s = self.section("__go_buildinfo")
        if s is not None:
            return [AddrRange(s.addr, s.size)]
        return [AddrRange(seg.vaddr, seg.filesz) for seg in self.segments
                if seg.vaddr and seg.filesz and seg.initprot & 0x7 == VM_PROT_RW][:MAX_REGIONS]

    def read_data(self, addr: int, n: int) -> bytes:
        for seg in self.segments:
            if seg.name != "__PAGEZERO" and seg.vaddr <= addr < seg.vaddr + seg.filesz:
                off = seg.offset + addr - seg.vaddr
                if off >= self.r.size:
                    raise MalformedExecutable("Mach-O segment lies outside the file")
                return self.r.read_upto(off, min(n, seg.vaddr + seg.filesz - addr))
        return b""

    def symbols(self) -> list[SymbolTable]:
        if self._symtabs is None:
            self._symtabs = []
            if self.symtab is not None and self.symtab[1]:
                symoff, nsyms, stroff, strsize = self.symtab
                entsize = 16 if self.is64 else 12
                entries = read_table(self.r, symoff, nsyms * entsize, "Mach-O symbol table")
                names = read_table(self.r, stroff, strsize, "Mach-O string table")
                if entries is not None and names is not None:
                    e = self.e
                    decode = struct.Struct(e + ("IBBHQ" if self.is64 else "IBBHI"))
                    self._symtabs.append(SymbolTable(entries, entsize, names, struct.Struct(e + "I"), 0,
                                                     decode, prefix=b"_", budget=self.r.budget))
        return self._symtabs

    def symbol_address(self, entry: tuple[int, ...]) -> int | None:
        n_type = entry[1]
        if n_type & 0xE0 or n_type & 0x0E != 0x0E:  # stabs, or not defined in a section
            return None
        return entry[4]

    def pclntab_start(self) -> int | None:
        s = self.section("__gopclntab")
        return s.addr if s is not None and s.size >= 16 else None

    def rodata_regions(self) -> list[FileRange]:
        return [FileRange(s.offset, s.size) for s in self.sections
                if s.segname == "__TEXT" and s.name in ("__const", "__cstring", "__rodata")]

    def text_start(self) -> int | None:
        s = self.section("__text")
        return s.addr if s is not None else None

    def readonly_data(self) -> list[AddrRange]:
        return [AddrRange(s.addr, s.size) for s in self.sections
                if s.segname in ("__TEXT", "__DATA_CONST") and s.name != "__text" and s.size
                and s.flags & 0xFF not in S_ZEROFILL_TYPES][:MAX_DATA_REGIONS]

    def writable_data(self) -> list[AddrRange]:
        return [AddrRange(s.addr, s.size) for s in self.sections
                if s.segname == "__DATA" and s.size
                and s.flags & 0xFF not in S_ZEROFILL_TYPES][:MAX_DATA_REGIONS]


class FatArch(NamedTuple):
    cputype: int
    offset: int
    size: int


def fat_arches(r: Reader) -> list[FatArch]:
    """The slices of a universal file, validated so that a Java class file is not taken for one."""
    magic, narch = struct.unpack(">II", r.read(0, 8))
    wide = magic == 0xCAFEBABF
    if narch == 0 or narch > MAX_FAT_ARCHES:
        raise UnsupportedFormat("CA FE BA BE file that is not a universal binary (Java class file?)")
    entsize = 32 if wide else 20
    table = r.read_upto(8, narch * entsize)
    if len(table) < narch * entsize:
        raise MalformedExecutable("universal header runs past the end of the file")
    arches: list[FatArch] = []
    for i in range(narch):
        if wide:
            cpu, _sub, off, size, _align, _res = struct.unpack_from(">iiQQII", table, i * entsize)
        else:
            cpu, _sub, off, size, _align = struct.unpack_from(">iiIII", table, i * entsize)
        if off < 8 + narch * entsize or off + 28 > r.size:
            raise MalformedExecutable("universal file slice lies outside the file")
        # Like Go's reader, a slice whose size runs past the end is read up to the end.
        size = min(size, r.size - off)
        if r.read(off, 4) not in MAGICS:
            raise MalformedExecutable("universal file slice is not a Mach-O image")
        arches.append(FatArch(cpu & 0xFFFFFFFF, off, size))
    return arches
