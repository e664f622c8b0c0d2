"""The pclntab: the function table every Go program keeps for stack traces, stripped or not.

Layouts as Go's own readers know them (src/debug/gosym/pclntab.go, src/runtime/symtab.go,
src/internal/abi/symtab.go, src/cmd/link/internal/ld/pcln.go); the magic names the layout:

    magic       layout  written by    header after magic, pad(2), quantum, ptrsize (uintptr words)
    0xfffffffb  1.2     go1.2-1.15    nfunc; then functab and everything else interleaved
    0xfffffffa  1.16    go1.16-1.17   nfunc nfiles funcname cu filetab pctab pcln (offsets)
    0xfffffff0  1.18    go1.18-1.19   nfunc nfiles textStart funcname cu filetab pctab pcln
    0xfffffff1  1.20    go1.20+       as 1.18 (textStart unused and 0 since go1.26)

Function names, including functions that exist only inlined into others:
- 1.16 and later: the linker writes `runtime.funcnametab` from walkFuncs (pcln.go), which visits
  every function and every function of each one's inline tree once, as NUL-terminated names
  (go1.18-1.19 split a generic name around its "[...]" without a NUL). So the table, split at
  NULs, is exactly the set of names; no inline tree (whose funcdata offsets are relative to
  moduledata.gofunc, unknown without symbols) has to be walked.
- 1.2 (go1.12-1.15): names are NUL-terminated strings anywhere in the table, at `_func.nameoff`
  for functions and at `inlinedCall.func_` (offset 12 of a 20-byte entry) for inlined ones; a
  function's inline tree is at the absolute address funcdata[FUNCDATA_InlTree=4]. Its length is
  not stored (the runtime indexes it through a pcvalue table), so entries are read while they are
  well-formed (see _inline_12). Go <= 1.11 trees (index 2, 16-byte entries) are not read.

Found by section (.gopclntab, __gopclntab), symbol (runtime.pclntab / runtime.pcheader), else by
a bounded search of read-only data (PE has no pclntab section) for the magic, accepted only when
the header fits the file and sampled functab entries agree with their _func records.
"""

from __future__ import annotations

import array
import itertools
import re
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from ._image import Image, cstr
from ._io import MAX_READ
from ._model import FuncTable, MalformedExecutable, NotGoExecutable

FORMATS = {0xFFFFFFFB: "1.2", 0xFFFFFFFA: "1.16", 0xFFFFFFF0: "1.18", 0xFFFFFFF1: "1.20"}
RANGES = {"1.2": "go1.2-go1.15", "1.16": "go1.16-go1.17", "1.18": "go1.18-go1.19", "1.20": "go1.20+"}
# Go minor versions each layout admits (go1.N).
MINORS = {"1.2": (2, 15), "1.16": (16, 17), "1.18": (18, 19), "1.20": (20, 1 << 30)}

MAX_FUNCS = 1 << 20  # the largest Go programs have a few hundred thousand
MAX_NAMES = 1 << 21  # names in funcnametab (functions and inline-only ones)
MAX_TABLE = MAX_READ  # bytes of one pclntab part we read at once
SEARCH_CHUNK = 1 << 20
MAX_SEARCH = 48 << 20  # read-only bytes searched for the magic, per image
MAX_HITS = 256  # magic occurrences checked, per image
SAMPLES = 16  # functab entries checked against their _func records when only the header is wanted
MAX_INLINE = 1 << 12  # entries of one function's inline tree (1.2 layout)
MAX_INLINE_TOTAL = 1 << 20  # inline entries read per file (1.2 layout)
MAX_NAME = 4096  # bytes of one function name (1.2 layout)


@dataclass(frozen=True, slots=True)
class Header:
    """A pclntab header that fits the file: where it is and where its parts are."""

    addr: int
    format: str
    order: str  # "<" | ">"
    ptr_size: int
    quantum: int
    nfunc: int
    text_start: int  # 0 when the header does not say (1.2, 1.16, go1.26+)
    funcname: int  # offsets from addr (1.16+; 0 for 1.2)
    funcname_size: int
    pcln: int  # offset of the functab (1.2: 8 + ptr_size)
    found_by: str  # "section" | "symbol" | "search"

    @property
    def version_range(self) -> str:
        return RANGES[self.format]

    @property
    def field(self) -> int:
        """Size of one functab field."""
        return 4 if self.format in ("1.18", "1.20") else self.ptr_size


def find(img: Image) -> Header | None:
    """The image's pclntab header, or None when it has none that fits the file."""
    addr = img.pclntab_start()
    if addr is not None:
        h = _check(img, addr, "section")
        if h is not None:
            return h
    for name in ("runtime.pcheader", "runtime.pclntab"):
        addr = img.lookup(name)
        if addr is not None:
            h = _check(img, addr, "symbol")
            if h is not None:
                return h
    if not img.search_pclntab():
        return None
    return _search(img)


# The four magics then the two zero pad bytes, as one pattern per byte order (one pass per chunk).
_MAGIC_RE = {
    "<": re.compile(rb"[\xfb\xfa\xf0\xf1]\xff\xff\xff\x00\x00"),
    ">": re.compile(rb"\xff\xff\xff[\xfb\xfa\xf0\xf1]\x00\x00"),
}
_LE_TAIL = b"\xff\xff\xff\x00\x00"  # what every little-endian magic + pad ends with


def _search(img: Image) -> Header | None:
    """The first magic in read-only data whose header and functab fit, read in bounded chunks."""
    order = "<" if img.byte_order == "little" else ">"
    searched = hits = 0
    for region in img.readonly_data():
        pos, end = region.addr, region.addr + region.size
        while pos < end and searched < MAX_SEARCH:
            buf = img.read_data(pos, min(SEARCH_CHUNK, end - pos) + 7)
            if len(buf) < 8:
                break
            searched += len(buf)
            for i in _magic_offsets(buf, order):
                hits += 1
                if hits > MAX_HITS:
                    return None
                if (pos + i) % 4 == 0 and i + 8 <= len(buf) and _plausible(buf[i : i + 8], img.ptr_size):
                    h = _check(img, pos + i, "search")
                    if h is not None:
                        return h
            pos += len(buf) - 7
    return None


def _magic_offsets(buf: bytes, order: str) -> Iterator[int]:
    if order == "<":  # bytes.find on the common tail is several times faster than a regex
        i = buf.find(_LE_TAIL, 1)
        while i >= 0:
            if buf[i - 1] in (0xFB, 0xFA, 0xF0, 0xF1):
                yield i - 1
            i = buf.find(_LE_TAIL, i + 1)
    else:
        for m in _MAGIC_RE[order].finditer(buf):
            yield m.start()


def _plausible(hdr: bytes, ptr_size: int) -> bool:
    """Go's own first test (debug/gosym): two zero bytes, a pc quantum of 1, 2 or 4, the pointer
    size; the image's pointer size must match."""
    return hdr[4] == 0 and hdr[5] == 0 and hdr[6] in (1, 2, 4) and hdr[7] == ptr_size


def _check(img: Image, addr: int, found_by: str) -> Header | None:
    """A Header when the table at ``addr`` is consistent with the file, else None."""
    ptr = img.ptr_size
    raw = img.read_data(addr, 8 + 8 * ptr)
    if len(raw) < 8 + ptr or not _plausible(raw[:8], ptr):
        return None
    fmt = ""
    order = ""
    for o in ("<", ">"):
        fmt = FORMATS.get(struct.unpack_from(o + "I", raw)[0], "")
        if fmt:
            order = o
            break
    if not fmt:
        return None
    word = struct.Struct(order + ("Q" if ptr == 8 else "I"))
    nwords = {"1.2": 1, "1.16": 7, "1.18": 8, "1.20": 8}[fmt]
    if len(raw) < 8 + nwords * ptr:
        return None
    words = [word.unpack_from(raw, 8 + i * ptr)[0] for i in range(nwords)]
    nfunc = words[0]
    if not 0 < nfunc <= MAX_FUNCS:
        return None
    text_start = funcname = funcname_size = 0
    if fmt == "1.2":
        pcln = 8 + ptr
    else:
        offs = words[2:] if fmt == "1.16" else words[3:]
        if fmt != "1.16":
            text_start = words[2]
        funcname, cu, filetab, pctab, pcln = offs
        if not 8 + nwords * ptr <= funcname < cu <= filetab <= pctab <= pcln <= MAX_TABLE:
            return None
        funcname_size = cu - funcname
    h = Header(addr, fmt, order, ptr, raw[6], nfunc, text_start, funcname, funcname_size, pcln, found_by)
    try:
        functab = _functab(img, h)
        _check_funcs(img, h, functab, _sample(nfunc))
    except _Bad:
        return None
    return h


class _Bad(Exception):
    """The table is inconsistent: internal to this module, never raised past it."""


def _functab(img: Image, h: Header) -> array.array[int]:
    """The 2*nfunc+1 functab fields (entry, funcoff, ..., end), checked to be sorted; kept as a
    compact array (a hostile nfunc must not become millions of Python ints)."""
    n = 2 * h.nfunc + 1
    size = n * h.field
    raw = img.read_data(h.addr + h.pcln, size)
    if len(raw) < size:
        raise _Bad
    fields = array.array(_TYPECODES[h.field], raw)
    if (h.order == "<") != (sys.byteorder == "little"):
        fields.byteswap()
    entries = fields[0::2]
    # The linker writes the _func records after the functab, in functab order, and the entries
    # sorted; the text has a size. A zero-filled or made-up table fails one of these.
    offs = fields[1::2]
    first = size if h.format != "1.2" else h.pcln + size
    if entries[-1] <= entries[0] or offs[0] < first:
        raise _Bad
    if any(a > b for a, b in itertools.pairwise(entries)) or any(a >= b for a, b in itertools.pairwise(offs)):
        raise _Bad
    return fields


# array typecodes by item size: C's unsigned int and unsigned long long on every platform Python
# supports here.
_TYPECODES = {4: "I", 8: "Q"}


def _sample(nfunc: int) -> range | list[int]:
    if nfunc <= SAMPLES:
        return range(nfunc)
    step = nfunc // SAMPLES
    return sorted({*range(0, nfunc, step), nfunc - 1})


def _func_base(h: Header) -> int:
    """Offset that a functab funcoff is relative to."""
    return 0 if h.format == "1.2" else h.pcln


def _check_funcs(img: Image, h: Header, functab: array.array[int], which: range | list[int]) -> None:
    """Each chosen function's _func record starts with its functab entry and names a name."""
    entry_size = 4 if h.format in ("1.18", "1.20") else h.ptr_size
    head = struct.Struct(h.order + ("I" if entry_size == 4 else "Q") + "i")
    names = _funcnames(img, h) if h.format != "1.2" else b""
    for i in which:
        entry, funcoff = functab[2 * i], functab[2 * i + 1]
        raw = img.read_data(h.addr + _func_base(h) + funcoff, head.size)
        if len(raw) < head.size:
            raise _Bad
        fentry, nameoff = head.unpack(raw)
        if fentry != entry or nameoff < 0:
            raise _Bad
        if h.format == "1.2":
            name = img.read_data(h.addr + nameoff, MAX_NAME)
            if not name or name[0] == 0 or b"\0" not in name:
                raise _Bad
        elif nameoff >= len(names) or (nameoff and names[nameoff - 1]) or not names[nameoff]:
            raise _Bad


def _funcnames(img: Image, h: Header) -> bytes:
    raw = img.read_data(h.addr + h.funcname, h.funcname_size)
    if len(raw) < h.funcname_size or not raw.endswith(b"\0"):
        raise _Bad
    return raw


def read(img: Image) -> FuncTable:
    """The image's function table; NotGoExecutable when it has no pclntab, MalformedExecutable when
    the one it has is inconsistent past its header."""
    h = find(img)
    if h is None:
        raise NotGoExecutable("no pclntab")
    try:
        functab = _functab(img, h)
        if h.format == "1.2":
            names = _names_12(img, h, functab)
        else:
            raw = _funcnames(img, h)
            if raw.count(b"\0") > min(MAX_NAMES, 4 * h.nfunc + 4096):
                raise _Bad  # more names than functions could have inlined: not a real table
            names = {n.decode("utf-8", "replace") for n in raw[:-1].split(b"\0")}
            names.discard("")
    except _Bad:
        raise MalformedExecutable("pclntab: inconsistent function table") from None
    start, end = functab[0], functab[-1]
    if h.format in ("1.18", "1.20"):
        base = h.text_start or img.text_start() or 0
        start, end = base + start, base + end
    return FuncTable(format=h.format, version_range=h.version_range, text_start=start, text_end=end,
                     functions=tuple(sorted(names)))


def text_functions(img: Image) -> list[str]:
    """Names of the functions with code (functab order), without the inline-only ones: what a
    symbol table lists, for comparing against `go tool nm`."""
    h = find(img)
    if h is None:
        raise NotGoExecutable("no pclntab")
    functab = _functab(img, h)
    names = _funcnames(img, h) if h.format != "1.2" else b""
    entry_size = 4 if h.format in ("1.18", "1.20") else h.ptr_size
    head = struct.Struct(h.order + ("I" if entry_size == 4 else "Q") + "i")
    out = []
    for i in range(h.nfunc):
        raw = img.read_data(h.addr + _func_base(h) + functab[2 * i + 1], head.size)
        _entry, nameoff = head.unpack(raw)
        if h.format == "1.2":
            name = cstr(img.read_data(h.addr + nameoff, MAX_NAME))
        else:
            name = cstr(names[nameoff : nameoff + MAX_NAME])
        out.append(name.decode("utf-8", "replace"))
    return out


def _names_12(img: Image, h: Header, functab: array.array[int]) -> set[str]:
    """Go 1.2-1.15: the whole table is read once; names of functions and of their inline trees."""
    data = img.read_data(h.addr, MAX_TABLE)
    ptr, order = h.ptr_size, h.order
    uptr = "Q" if ptr == 8 else "I"
    # _func (go1.10-1.15): entry uintptr; nameoff, args, deferreturn, pcsp, pcfile, pcln,
    # npcdata int32; funcID uint8, pad [2]byte, nfuncdata uint8; pcdata [npcdata]uint32;
    # funcdata [nfuncdata]uintptr aligned to the pointer size.
    func = struct.Struct(order + uptr + "7i" + "BxxB")
    offsets: set[int] = set()
    funcs = []
    for i in range(h.nfunc):
        entry, funcoff = functab[2 * i], functab[2 * i + 1]
        if funcoff + func.size > len(data):
            raise _Bad
        fentry, nameoff, _a, _d, _sp, _f, _ln, npcdata, _id, nfuncdata = func.unpack_from(data, funcoff)
        if fentry != entry or not 0 <= npcdata < 1 << 10:
            raise _Bad
        offsets.add(nameoff)
        funcs.append((funcoff + func.size + 4 * npcdata, nfuncdata, functab[2 * i + 2] - entry))
    index = _inltree_index(img, h, data, funcs)
    inline_left = MAX_INLINE_TOTAL
    seen: set[int] = set()  # entry addresses already read (trees are often adjacent)
    if index is not None:
        for fd, nfuncdata, size in funcs:
            if nfuncdata > index and inline_left > 0:
                tree = _funcdata(h, data, fd, index)
                if tree and tree not in seen:
                    inline_left -= _inline_12(img, h, data, tree, size, offsets, seen, inline_left)
    names: set[str] = set()
    for off in offsets:
        name = _name_at(data, off)
        if name is None:
            raise _Bad
        names.add(name)
    return names


def _name_at(data: bytes, off: int) -> str | None:
    """The NUL-terminated symbol name at ``off`` (printable; "type..eq.struct { ... }" has
    spaces), else None."""
    if not 0 < off < len(data) or data[off - 1]:
        return None
    end = data.find(b"\0", off, off + MAX_NAME)
    if end <= off:
        return None
    raw = data[off:end]
    if not raw.isascii():
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return name if name.isprintable() else None
    name = raw.decode("ascii")
    return name if name.isprintable() else None


# go1.12-1.15 (1.2 layout): FUNCDATA_InlTree is 2 up to go1.13 and 4 from go1.14 (RegPointerMaps
# and StackObjects before it); inlinedCall is parent int16, funcID uint8, pad, file int32, line
# int32, func_ int32 (name offset into the table), parentPc int32.
INLTREE_INDEXES = (2, 4)
INLTREE_PROBES = 256  # functions tried when choosing the file's FUNCDATA_InlTree index
_INLINED_12 = struct.Struct("hBxiiii")


def _funcdata(h: Header, data: bytes, fd: int, index: int) -> int:
    """funcdata[index] of the _func whose funcdata array starts near ``fd`` (pointer-aligned)."""
    if h.ptr_size == 8 and (h.addr + fd) % 8:
        fd += 4
    at = fd + h.ptr_size * index
    if at + h.ptr_size > len(data):
        raise _Bad
    return int.from_bytes(data[at : at + h.ptr_size], "little" if h.order == "<" else "big")


def _inltree_index(img: Image, h: Header, data: bytes, funcs: list[tuple[int, int, int]]) -> int | None:
    """The FUNCDATA_InlTree index this file's toolchain used: the one whose first entries read as
    an inline tree root (parent -1, a name, a parentPc inside the function) most often."""
    entry = struct.Struct(h.order + _INLINED_12.format)
    best, best_hits = None, 0
    for index in INLTREE_INDEXES:
        hits = tried = 0
        for fd, nfuncdata, size in funcs:
            if nfuncdata <= index:
                continue
            tried += 1
            if tried > INLTREE_PROBES:
                break
            tree = _funcdata(h, data, fd, index)
            raw = img.read_data(tree, 20) if tree else b""
            if len(raw) == 20:
                parent, _fid, _file, line, func_, parent_pc = entry.unpack(raw)
                if parent == -1 and line >= 0 and 0 <= parent_pc < size and _name_at(data, func_):
                    hits += 1
        if hits > best_hits:
            best, best_hits = index, hits
    return best


def _inline_12(img: Image, h: Header, data: bytes, tree: int, size: int, offsets: set[int],
               seen: set[int], budget: int) -> int:
    """Add the name offsets of one function's inline tree; returns the entries read.

    The tree's length is not stored (the runtime indexes it from a pcvalue table); entries are
    read while each is one the compiler could have written: entry j's parent in [-1, j), a name
    that starts a symbol name in the table, a parentPc inside the function. Reading on into a
    neighbouring tree only finds more functions that really were inlined."""
    want = min(MAX_INLINE, budget)
    entry = struct.Struct(h.order + _INLINED_12.format)
    count = 0
    step = 8  # most trees are short: read a few entries, more only while they stay well-formed
    while count < want:
        n = min(step, want - count)
        raw = img.read_data(tree + 20 * count, 20 * n)
        for k in range(len(raw) // 20):
            j = count + k
            addr = tree + 20 * j
            if addr in seen:
                return max(j, 1)
            parent, _fid, _file, line, func_, parent_pc = entry.unpack_from(raw, 20 * k)
            if not -1 <= parent < j or line < 0 or not 0 <= parent_pc < size:
                return max(j, 1)
            if func_ not in offsets:
                if _name_at(data, func_) is None:
                    return max(j, 1)
                offsets.add(func_)
            seen.add(addr)
        if len(raw) < 20 * n:
            return max(count + len(raw) // 20, 1)
        count += n
        step *= 4
    return max(count, 1)


def version_admitted(version: str, fmt: str) -> bool:
    """Whether ``version`` (go1.N...) is one the pclntab layout ``fmt`` was written by."""
    rest = version.removeprefix("go1.")
    digits = ""
    for c in rest:
        if not c.isdigit():
            break
        digits += c
    if not digits or len(digits) > 4:
        return False
    lo, hi = MINORS[fmt]
    return lo <= int(digits) <= hi
