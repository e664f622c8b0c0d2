"""Versions a Go program keeps outside its build-info block, found without guessing.

- The Go version: runtime.buildVersion is a Go string variable the linker always keeps (schedinit
  reads it), i.e. a (pointer, length) header in writable data pointing at `go1.26.5` (or
  `go1.21.4 X:arenas`) in read-only data. Without symbols: every `go1.` text in read-only data
  whose address some pointer-aligned header in writable data holds, with a length that makes it a
  whole version admitted by the pclntab's layout. More than one distinct survivor: none.
- The main module's release when it says `(devel)`, the way syft and trivy recover it: a `-X`
  assignment in the `-ldflags` build setting to a variable named like version/tag in package main
  or in the main module, else such a variable found through the symbol table. Never a pattern
  search over the whole file.
"""

from __future__ import annotations

import re
import shlex
import struct

from ._image import ByteOrder, Image, read_go_string
from ._pclntab import version_admitted

# The GOEXPERIMENT suffix: ` X:arenas`, or since Go 1.26 `-X:boringcrypto` after a version without a
# dash (cmd/link, go.dev/issue/75953).
VERSION = re.compile(rb"go1\.\d{1,4}(?:\.\d{1,4})?(?:(?:rc|beta)\d{1,3})?(?:[ -]X:[a-z0-9,]{1,200})?")
_EXPERIMENTS = re.compile(r"[ -]X:(\S*)$")
MAX_VERSION_LEN = 256
CHUNK = 1 << 20
MAX_RODATA = 64 << 20  # read-only bytes searched for "go1." per file
MAX_WRITABLE = 16 << 20  # writable bytes searched for string headers per file
MAX_CANDIDATES = 256  # "go1." texts considered
MAX_HEADERS = 64  # headers checked per candidate

# Variable names syft's and trivy's -ldflags heuristics accept (compared in lower case).
VERSION_VARS = frozenset(("version", "tag", "gittag", "gitversion", "appversion", "releaseversion",
                          "buildversion"))
RELEASE = re.compile(r"v?\d+(?:\.\d+){0,3}(?:[-+][0-9A-Za-z.+-]{1,100})?")


def go_release(go_version: str) -> str:
    """The Go version without its GOEXPERIMENT suffix (``go1.21.4 X:arenas`` and, Go >= 1.26,
    ``go1.27.3-X:boringcrypto`` -> ``go1.21.4``, ``go1.27.3``): the release whose standard library
    the program links, for matching and for the stdlib row. Other spellings are kept whole."""
    return _EXPERIMENTS.sub("", go_version.strip()).strip()


def go_experiments(go_version: str) -> list[str]:
    """The experiments the version's suffix names (``go1.22.1 X:arenas,boringcrypto`` ->
    ``["arenas", "boringcrypto"]``): what :func:`go_release` takes off."""
    m = _EXPERIMENTS.search(go_version.strip())
    return [e for e in m[1].split(",") if e] if m else []


def data_version(img: Image, fmt: str, skip: int | None = None) -> str:
    """runtime.buildVersion found through data alone, or "" when not exactly one value survives.
    ``skip`` is the pclntab's address: its region holds no strings and is not searched."""
    order: ByteOrder = img.byte_order
    ptr = img.ptr_size
    cands = _candidates(img, skip)
    if not cands:
        return ""
    writable = _writable(img)
    word = struct.Struct(("<" if order == "little" else ">") + ("Q" if ptr == 8 else "I"))
    found: set[str] = set()
    for addr in cands:
        needle = word.pack(addr)
        for base, buf in writable:
            i = buf.find(needle)
            hits = 0
            while i >= 0 and hits < MAX_HEADERS:
                hits += 1
                if (base + i) % ptr == 0 and i + 2 * ptr <= len(buf):
                    (length,) = word.unpack_from(buf, i + ptr)
                    if 4 <= length <= MAX_VERSION_LEN:
                        text = img.read_data(addr, length)
                        if len(text) == length and VERSION.fullmatch(text):
                            v = text.decode("ascii")
                            if version_admitted(v, fmt):
                                found.add(v)
                i = buf.find(needle, i + 1)
        if len(found) > 1:
            return ""
    return found.pop() if len(found) == 1 else ""


def _candidates(img: Image, skip: int | None) -> list[int]:
    """Addresses of `go1.` texts in read-only data that start a version."""
    out: list[int] = []
    read = 0
    for region in img.readonly_data():
        if skip is not None and region.addr == skip:
            continue
        pos, end = region.addr, region.addr + region.size
        while pos < end and read < MAX_RODATA:
            want = min(CHUNK, end - pos) + 16
            buf = img.read_data(pos, want)
            read += len(buf)
            last = len(buf) < want or pos + len(buf) >= end
            limit = len(buf) if last else len(buf) - 16
            i = buf.find(b"go1.")
            while 0 <= i < limit:
                if VERSION.match(buf, i):
                    out.append(pos + i)
                    if len(out) >= MAX_CANDIDATES:
                        return sorted(set(out))
                i = buf.find(b"go1.", i + 1)
            if last or limit <= 0:
                break
            pos += limit
    return sorted(set(out))


def _writable(img: Image) -> list[tuple[int, bytes]]:
    out = []
    left = MAX_WRITABLE
    for region in img.writable_data():
        if left <= 0:
            break
        buf = img.read_data(region.addr, min(region.size, left))
        left -= len(buf)
        if buf:
            out.append((region.addr, buf))
    return out


def ldflags_version(ldflags: str, packages: tuple[str, ...]) -> str:
    """The value of the last `-X pkg.name=value` in ``ldflags`` whose package is one of
    ``packages`` (or below the main module) and whose name is a version variable."""
    if "X" not in ldflags:  # no -X flag however it is quoted (the usual `-s -w`): no shlex pass
        return ""
    try:
        args = shlex.split(ldflags)
    except ValueError:
        args = ldflags.split()
    found = ""
    i = 0
    while i < len(args) and i < 4096:
        a = args[i]
        i += 1
        if a in ("-X", "--X"):
            if i >= len(args):
                break
            assign = args[i]
            i += 1
        elif a.startswith(("-X=", "--X=")):
            assign = a.split("=", 1)[1]
        else:
            continue
        target, eq, value = assign.partition("=")
        pkg, dot, name = target.rpartition(".")
        if not eq or not dot or name.lower() not in VERSION_VARS:
            continue
        if not any(pkg == p or (p != "main" and pkg.startswith(p + "/")) for p in packages if p):
            continue
        if RELEASE.fullmatch(value):
            found = value
    return found


_SYMBOL_VARS = ("version", "Version", "VERSION", "tag", "Tag", "gitTag", "GitTag")


def symbol_version(img: Image, packages: tuple[str, ...]) -> str:
    """A version variable of package main or the main module, read through the symbol table."""
    if not img.symbols():
        return ""
    # One search per package rules out the names that are not there (usually all); the rest are
    # looked up in package order, then name order.
    for full in [f"{pkg}.{name}" for pkg in packages if pkg for name in img.may_define_in(pkg, _SYMBOL_VARS)]:
        addr = img.lookup(full)
        if addr is None:
            continue
        raw = read_go_string(img, addr, MAX_VERSION_LEN)
        if not raw:
            continue
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            continue
        if RELEASE.fullmatch(value):
            return value
    return ""
