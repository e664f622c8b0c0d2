"""Print what a PyInstaller one-file executable needs from the host: the .deb's ``Depends`` field
(``deb``) or the RPM's ``Requires``, one per line (``rpm``).

The bundle carries its own libraries. What the host must still provide is glibc, at the floor of
the highest ``GLIBC_2.NN`` symbol version any ELF file requires (the bootloader is the only ELF
file dpkg-shlibdeps or lintian can see; the interpreter and extension modules inside the archive
need glibc too, usually a newer one), and each library some ELF file names in DT_NEEDED without
the bundle carrying it; the bootloader's own DT_NEEDED always counts, since it runs before
anything is unpacked (PyInstaller's stock Linux bootloader links the host's libz to inflate the
archive). A library outside glibc and the table below stops the build: a new host dependency is
a decision for a person, not for this script. Both are read by elfdeps.py, as the loader reads
them. Run with the build virtualenv's Python (it imports PyInstaller's archive reader).
"""

from __future__ import annotations

import os
import sys

from elfdeps import glibc_version, requirements
from PyInstaller.archive.readers import ArchiveReadError, CArchiveReader

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
_OLDEST = (2, 17, 0)  # what the build targets: the floor when nothing asks for a numbered version


def _elf_files(path: str) -> tuple[bytes, dict[str, bytes]]:
    """The bootloader's bytes, and name -> contents of every ELF file in the bundle's archive."""
    with open(path, "rb") as f:
        bootloader = f.read()
    archive = CArchiveReader(path)
    members = {}
    for name in archive.toc:
        data = archive.extract(name)
        members[name] = data if isinstance(data, bytes) and data.startswith(b"\x7fELF") else b""
    return bootloader, members


def needs(path: str) -> tuple[tuple[int, int, int], set[str]]:
    """The glibc floor, and the sonames the host must provide: the bootloader's, and those the
    bundle names but lacks."""
    bootloader, members = _elf_files(path)
    boot = requirements(bootloader)
    bundle = [requirements(data) for data in members.values() if data]
    floor = max([_OLDEST, *(v for reqs in [boot, *bundle] for versions in reqs.versions.values()
                            for v in map(glibc_version, versions) if v is not None)])
    wanted = {lib for reqs in bundle for lib in reqs.needed}
    bundled = {os.path.basename(name) for name in members}
    return floor, set(boot.needed) | (wanted - bundled)


def dependencies(path: str, kind: str) -> list[str]:
    """The dependency list for ``kind`` ("deb" or "rpm"); ValueError names an unknown library."""
    (major, minor, patch), libraries = needs(path)
    floor = f"{major}.{minor}" + (f".{patch}" if patch else "")
    out = [f"libc6 (>= {floor})" if kind == "deb" else f"glibc >= {floor}"]
    for soname in sorted(libraries - GLIBC_SONAMES):
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
    except ValueError as e:  # elfdeps.ElfError included
        sys.exit(f"host_deps.py: {e}")
    except ArchiveReadError as e:
        sys.exit(f"host_deps.py: {path} is not a PyInstaller one-file executable: {e}")
    print(", ".join(deps) if kind == "deb" else "\n".join(deps))


if __name__ == "__main__":
    main()
