"""What the dynamic loader asks of a host before an ELF file runs: its DT_NEEDED libraries and the
symbol versions its verneed entries (.gnu.version_r) require from each. The one ELF reader of
the packaging scripts (host_deps.py) and of the tests that check what they build.

Read the way ld.so reads them: through the PT_DYNAMIC segment and the addresses in it mapped by the
PT_LOAD segments, not from section headers (a file may lack them) and not by searching the bytes
for "GLIBC_" (strings in .rodata or a version *defined* by a library would match too). x86-64 ELF
(64-bit, little-endian) only: the single file is built for that. Every count and offset is bounded
by the file; malformed input raises ElfError.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
MAX_ENTRIES = 1 << 16  # dynamic entries, verneed files and versions per file: far above real files


class ElfError(ValueError):
    """Not an x86-64 ELF file, or one whose dynamic section cannot be read."""


@dataclass
class Requirements:
    """DT_NEEDED in file order; library name -> version names required from it (verneed)."""

    needed: list[str] = field(default_factory=list)
    versions: dict[str, set[str]] = field(default_factory=dict)
    dynamic: bool = False  # False for a static executable (no PT_DYNAMIC)


def _cstr(data: bytes, start: int, end: int) -> str:
    if not 0 <= start < end:
        raise ElfError(f"string offset {start} outside the string table")
    stop = data.find(b"\0", start, end)
    if stop < 0:
        raise ElfError(f"unterminated string at {start}")
    return data[start:stop].decode("ascii", "replace")


def requirements(data: bytes) -> Requirements:
    """The loader's view of ``data`` (a whole ELF file)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ElfError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ElfError("not a 64-bit little-endian ELF file")
    (e_machine,) = struct.unpack_from("<H", data, 18)
    if e_machine != 62:
        raise ElfError(f"e_machine {e_machine} is not x86-64")
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    if e_phentsize < 56 or e_phoff + e_phentsize * e_phnum > len(data):
        raise ElfError("program headers outside the file")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dyn: tuple[int, int] | None = None
    for i in range(e_phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dyn = (p_offset, p_filesz)
    out = Requirements()
    if dyn is None:
        return out
    out.dynamic = True

    def offset_of(addr: int, what: str) -> int:
        for vaddr, off, size in loads:
            if vaddr <= addr < vaddr + size:
                return off + (addr - vaddr)
        raise ElfError(f"{what} address {addr:#x} is in no PT_LOAD segment")

    dyn_off, dyn_size = dyn
    if dyn_off + dyn_size > len(data):
        raise ElfError("PT_DYNAMIC outside the file")
    tags: dict[int, int] = {}
    needed_offsets: list[int] = []
    for i in range(min(dyn_size // 16, MAX_ENTRIES)):
        tag, val = struct.unpack_from("<qQ", data, dyn_off + 16 * i)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offsets.append(val)
        else:
            tags[tag] = val
    if DT_STRTAB not in tags:
        raise ElfError("dynamic section without DT_STRTAB")
    strtab = offset_of(tags[DT_STRTAB], "DT_STRTAB")
    strend = min(len(data), strtab + tags.get(DT_STRSZ, len(data)))
    out.needed = [_cstr(data, strtab + o, strend) for o in needed_offsets]
    if DT_VERNEED not in tags:
        return out
    pos = offset_of(tags[DT_VERNEED], "DT_VERNEED")
    for _ in range(min(tags.get(DT_VERNEEDNUM, 0), MAX_ENTRIES)):
        if pos + 16 > len(data):
            raise ElfError("verneed entry outside the file")
        _vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", data, pos)
        names = out.versions.setdefault(_cstr(data, strtab + vn_file, strend), set())
        aux = pos + vn_aux
        for _ in range(vn_cnt):
            if aux + 16 > len(data):
                raise ElfError("vernaux entry outside the file")
            _hash, _flags, _other, vna_name, vna_next = struct.unpack_from("<IHHII", data, aux)
            names.add(_cstr(data, strtab + vna_name, strend))
            if vna_next == 0:
                break
            aux += vna_next
        if vn_next == 0:
            break
        pos += vn_next
    return out


_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")


def glibc_version(name: str) -> tuple[int, int, int] | None:
    """``GLIBC_2.2.5`` -> (2, 2, 5); None for a name that is no numbered glibc release (GLIBC_PRIVATE,
    GLIBC_ABI_DT_RELR), which no floor admits."""
    m = _GLIBC_VERSION.fullmatch(name)
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None
