"""Print what a PyInstaller one-file executable needs from the host: the .deb's ``Depends`` field
(``deb``) or the RPM's ``Requires``, one per line (``rpm``).

The bundle carries its own libraries. What the host must still provide is glibc, at the floor
glibc_floor.py computes over every ELF file, and each library some ELF file names in DT_NEEDED
without the bundle carrying it; the bootloader's own DT_NEEDED always counts, since it runs
before anything is unpacked (PyInstaller's stock Linux bootloader links the host's libz to
inflate the archive). A library outside glibc and the table below stops the build: a new host
dependency is a decision for a person, not for this script.
Run with the build virtualenv's Python (it imports PyInstaller's archive reader).
"""

from __future__ import annotations

import os
import struct
import sys

from glibc_floor import glibc_floor
from PyInstaller.archive.readers import CArchiveReader

# glibc's own libraries on x86_64: the libc6 / glibc package provides every one of them.
GLIBC_SONAMES = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libanl.so.1", "ld-linux-x86-64.so.2",
})
# soname -> (Debian dependency, RPM capability). The RPM side is the capability rpmbuild's own
# ELF dependency generator writes, which every RPM distribution's package for it provides.
OTHER_LIBS = {
    "libz.so.1": ("zlib1g (>= 1:1.2.0)", "libz.so.1()(64bit)"),
}

_SHT_DYNAMIC = 6
_DT_NEEDED = 1
_MAX_ENTRIES = 4096  # a real .dynamic has a few dozen


def dt_needed(data: bytes) -> list[str]:
    """DT_NEEDED names of a little-endian ELF64 file (what x86_64 builds are); [] if it has none."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names: list[str] = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, _entsize in sections:
        if sh_type != _SHT_DYNAMIC:
            continue
        strtab_offset = sections[link][4]
        for i in range(min(size // 16, _MAX_ENTRIES)):
            tag, value = struct.unpack_from("<qQ", data, offset + 16 * i)
            if tag == 0:
                break
            if tag == _DT_NEEDED:
                start = strtab_offset + value
                names.append(data[start:data.index(b"\0", start)].decode())
    return names


def host_libraries(path: str) -> set[str]:
    """Sonames the host must provide: the bootloader's, and those the bundle names but lacks."""
    with open(path, "rb") as f:
        needed = set(dt_needed(f.read()))
    archive = CArchiveReader(path)
    bundled: set[str] = set()
    wanted: set[str] = set()
    for name in archive.toc:
        bundled.add(os.path.basename(name))
        data = archive.extract(name)
        if isinstance(data, bytes) and data.startswith(b"\x7fELF"):
            wanted.update(dt_needed(data))
    return needed | (wanted - bundled)


def dependencies(path: str, kind: str) -> list[str]:
    """The dependency list for ``kind`` ("deb" or "rpm"); ValueError names an unknown library."""
    minor, patch = glibc_floor(path)
    floor = f"2.{minor}" + (f".{patch}" if patch else "")
    out = [f"libc6 (>= {floor})" if kind == "deb" else f"glibc >= {floor}"]
    for soname in sorted(host_libraries(path) - GLIBC_SONAMES):
        if soname not in OTHER_LIBS:
            raise ValueError(f"the bundle needs {soname} from the host: name its package in {__file__}")
        out.append(OTHER_LIBS[soname][0 if kind == "deb" else 1])
    return out


def main() -> None:
    path, kind = sys.argv[1], sys.argv[2]
    if kind not in ("deb", "rpm"):
        sys.exit(f"usage: {sys.argv[0]} EXECUTABLE deb|rpm")
    try:
        deps = dependencies(path, kind)
    except ValueError as e:
        sys.exit(f"host_deps.py: {e}")
    print(", ".join(deps) if kind == "deb" else "\n".join(deps))


if __name__ == "__main__":
    main()
