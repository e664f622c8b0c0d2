"""Print the oldest glibc (``2.NN``) a PyInstaller one-file executable can run on.

The bootloader is the only ELF file dpkg-shlibdeps or lintian can see; the interpreter and
extension modules inside the archive need glibc too, usually a newer one. Their highest
``GLIBC_2.NN`` symbol-version reference is the floor for the package's ``libc6 (>= ...)``.
Run with the build virtualenv's Python (it imports PyInstaller's archive reader).
"""

from __future__ import annotations

import re
import sys

from PyInstaller.archive.readers import CArchiveReader

_GLIBC = re.compile(rb"GLIBC_2\.(\d+)(?:\.(\d+))?\x00")


def _versions(data: bytes) -> set[tuple[int, int]]:
    return {(int(m[0]), int(m[1] or 0)) for m in _GLIBC.findall(data)}


def glibc_floor(path: str) -> tuple[int, int]:
    """Highest glibc symbol version referenced by the executable or any ELF file it bundles."""
    with open(path, "rb") as f:
        found = _versions(f.read())  # the bootloader (the archive itself is compressed)
    archive = CArchiveReader(path)
    for name in archive.toc:
        data = archive.extract(name)
        if isinstance(data, bytes) and data.startswith(b"\x7fELF"):
            found |= _versions(data)
    return max(found, default=(2, 17))


def main() -> None:
    minor, patch = glibc_floor(sys.argv[1])
    print(f"2.{minor}" + (f".{patch}" if patch else ""))


if __name__ == "__main__":
    main()
