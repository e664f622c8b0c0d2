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
  function's inline tree is at the absolute address funcdata[FUNCDATA_InlTree=3], its length one
  more than the largest value of pcdata[PCDATA_InlTreeIndex=2].

Found by section (.gopclntab, __gopclntab), symbol (runtime.pclntab / runtime.pcheader), else by
a bounded search of read-only data (PE has no pclntab section) for the magic, accepted only when
the header fits the file and sampled functab entries agree with their _func records.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

from ._image import Image
from ._io import MAX_READ
from ._model import FuncTable, MalformedExecutable, NotGoExecutable

FORMATS = {0xFFFFFFFB: "1.2", 0xFFFFFFFA: "1.16", 0xFFFFFFF0: "1.18", 0xFFFFFFF1: "1.20"}
RANGES = {"1.2": "go1.2-go1.15", "1.16": "go1.16-go1.17", "1.18": "go1.18-go1.19", "1.20": "go1.20+"}
# Go minor versions each layout admits (go1.N).
MINORS = {"1.2": (2, 15), "1.16": (16, 17), "1.18": (18, 19), "1.20": (20, 1 << 30)}

MAX_FUNCS = 1 << 21  # the largest Go programs have a few hundred thousand
MAX_TABLE = MAX_READ  # bytes of one pclntab part we read at once
SEARCH_CHUNK = 1 << 20
MAX_SEARCH = 48 << 20  # read-only bytes searched for the magic, per image
MAX_HITS = 256  # magic occurrences checked, per image
SAMPLES = 16  # functab entries checked against their _func records when only the header is wanted
MAX_INLINE = 1 << 12  # entries of one function's inline tree (1.2 layout)
MAX_INLINE_TOTAL = 1 << 20  # inline entries read per file (1.2 layout)
MAX_NAME = 4096  # bytes of one function name (1.2 layout)
PCDATA_INLTREE, FUNCDATA_INLTREE = 2, 3


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


def _search(img: Image) -> Header | None:
    """The first magic in read-only data whose header and functab fit, read in bounded chunks."""
    order = "<" if img.byte_order == "little" else ">"
    needles = [struct.pack(order + "I", m) for m in FORMATS]
    searched = hits = 0
    for start, size in img.readonly_data():
        pos, end = start, start + size
        while pos < end and searched < MAX_SEARCH:
            buf = img.read_data(pos, min(SEARCH_CHUNK, end - pos) + 3)
            if len(buf) < 8:
                break
            searched += len(buf)
            for needle in needles:
                i = buf.find(needle)
                while i >= 0 and hits < MAX_HITS:
                    hits += 1
                    if (pos + i) % 4 == 0 and i + 8 <= len(buf) and _plausible(buf[i : i + 8], img.ptr_size):
                        h = _check(img, pos + i, "search")
                        if h is not None:
                            return h
                    i = buf.find(needle, i + 1)
            if hits >= MAX_HITS:
                return None
            pos += len(buf) - 3
    return None


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


def _functab(img: Image, h: Header) -> list[int]:
    """The 2*nfunc+1 functab fields (entry, funcoff, ..., end), checked to be sorted."""
    n = 2 * h.nfunc + 1
    size = n * h.field
    raw = img.read_data(h.addr + h.pcln, size)
    if len(raw) < size:
        raise _Bad
    fields = list(struct.unpack(f"{h.order}{n}{'I' if h.field == 4 else 'Q'}", raw))
    entries = fields[0::2]
    if any(a > b for a, b in itertools.pairwise(entries)):
        raise _Bad
    return fields


def _sample(nfunc: int) -> range | list[int]:
    if nfunc <= SAMPLES:
        return range(nfunc)
    step = nfunc // SAMPLES
    return sorted({*range(0, nfunc, step), nfunc - 1})


def _func_base(h: Header) -> int:
    """Offset that a functab funcoff is relative to."""
    return 0 if h.format == "1.2" else h.pcln


def _check_funcs(img: Image, h: Header, functab: list[int], which: range | list[int]) -> None:
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
            name = _cstring(img.read_data(h.addr + nameoff, MAX_NAME))
        else:
            name = _cstring(names[nameoff : nameoff + MAX_NAME])
        out.append(name.decode("utf-8", "replace"))
    return out


def _cstring(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _names_12(img: Image, h: Header, functab: list[int]) -> set[str]:
    """Go 1.2-1.15: the whole table is read once; names of functions and of their inline trees."""
    data = img.read_data(h.addr, MAX_TABLE)
    ptr, order = h.ptr_size, h.order
    uptr = "Q" if ptr == 8 else "I"
    # _func (go1.10-1.15): entry uintptr; nameoff, args, deferreturn, pcsp, pcfile, pcln,
    # npcdata int32; funcID uint8, pad [2]byte, nfuncdata uint8; pcdata [npcdata]uint32;
    # funcdata [nfuncdata]uintptr aligned to the pointer size.
    func = struct.Struct(order + uptr + "7i" + "BxxB")
    names: set[str] = set()
    offsets: set[int] = set()
    inline_left = MAX_INLINE_TOTAL
    for i in range(h.nfunc):
        entry, funcoff = functab[2 * i], functab[2 * i + 1]
        if funcoff + func.size > len(data):
            raise _Bad
        fentry, nameoff, _a, _d, _sp, _f, _ln, npcdata, _id, nfuncdata = func.unpack_from(data, funcoff)
        if fentry != entry:
            raise _Bad
        offsets.add(nameoff)
        if PCDATA_INLTREE < npcdata < 1 << 10 and nfuncdata > FUNCDATA_INLTREE and inline_left > 0:
            got = _inline_12(img, h, data, funcoff + func.size, npcdata, nfuncdata, offsets, inline_left)
            inline_left -= got
    for off in offsets:
        if not 0 <= off < len(data):
            raise _Bad
        name = _cstring(data[off : off + MAX_NAME])
        if name:
            names.add(name.decode("utf-8", "replace"))
    return names


def _inline_12(img: Image, h: Header, data: bytes, at: int, npcdata: int, nfuncdata: int,
               offsets: set[int], budget: int) -> int:
    """Name offsets of one function's inline tree (go1.12-1.15 inlinedCall, 20 bytes); the number
    of entries read. Entries whose name is not a name in the table are ignored (older layouts)."""
    order = h.order
    if at + 4 * npcdata > len(data):
        raise _Bad
    pcdata = struct.unpack_from(f"{order}{npcdata}I", data, at)
    fd = at + 4 * npcdata
    if h.ptr_size == 8 and (h.addr + fd) % 8:
        fd += 4
    if fd + h.ptr_size * nfuncdata > len(data):
        raise _Bad
    uptr = order + ("Q" if h.ptr_size == 8 else "I")
    (tree,) = struct.unpack_from(uptr, data, fd + h.ptr_size * FUNCDATA_INLTREE)
    table = pcdata[PCDATA_INLTREE]
    if not tree or not table:
        return 0
    count = min(_max_value(data, table, h.quantum) + 1, MAX_INLINE, budget)
    if count <= 0:
        return 0
    raw = img.read_data(tree, 20 * count)
    n = len(raw) // 20
    for j in range(n):
        (func_,) = struct.unpack_from(order + "i", raw, 20 * j + 12)
        if 0 < func_ < len(data) and data[func_ - 1] == 0 and data[func_]:
            offsets.add(func_)
    return max(n, 1)


def _max_value(data: bytes, off: int, quantum: int) -> int:
    """Largest value of a pcvalue table (runtime.step: zig-zag value deltas from -1, pc deltas),
    bounded by the table's end and a step count."""
    val, best, first = -1, -1, True
    pos = off
    for _ in range(1 << 16):
        uv, pos = _varint(data, pos)
        if uv == 0 and not first:
            break
        first = False
        val += -(uv >> 1) - 1 if uv & 1 else uv >> 1
        best = max(best, val)
        _pc, pos = _varint(data, pos)
    return best


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    x = shift = 0
    for _ in range(5):
        if pos >= len(data):
            raise _Bad
        b = data[pos]
        pos += 1
        x |= (b & 0x7F) << shift
        if b < 0x80:
            return x, pos
        shift += 7
    raise _Bad


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
