"""Property test: mutated real binaries (bit flips, byte and word overwrites aimed at the headers,
the section/command tables, the build-info block, the pclntab header and functab and the
runtime.buildVersion string, truncation) must give a typed result within a time and a memory
bound, from read_build_info and from read_functions. The "-noblock" bases have their build-info
magic overwritten, so the pclntab and data-string paths run on every case. Derandomized and
database-less, so every CI run tries the same cases."""

from __future__ import annotations

import functools
import os
import resource
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures import build_fixture
from go_processes.buildinfo import BuildInfo, BuildInfoError, FuncTable, read_build_info, read_functions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Bounds per read, not speed goals (bench/ has those): far above a correct read on a loaded 2-core
# machine, far below the failure each guards against.
TIME_LIMIT = 60.0  # wall seconds: a watchdog for a read that never returns (a hang)
CPU_LIMIT = 10.0  # CPU seconds of the reading thread, load-independent: an unbounded loop
MEM_LIMIT = 32 << 20  # peak bytes allocated by one read
BLOCK_MAGIC = b"\xff Go buildinf:"
# Values a length, offset or count field may be set to.
HUGE = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF,
        (1 << 63) - 1, 1 << 63, (1 << 64) - 1]

BASES = ["stripped", "linux_s390x", "windows_386", "windows_amd64", "darwin_arm64", "fat", "gccgo", "old",
         "stripped-noblock", "windows_amd64-noblock", "linux_s390x-noblock", "old-noblock"]
NO_MAGIC = b"\xff Go XXXXXXXX:"
# The pclntab magics (go1.2, 1.16, 1.18, 1.20) and the two zero pad bytes, either byte order.
PCLNTAB_MAGICS = [struct.pack(e + "I", m) + b"\0\0" for m in (0xFFFFFFFB, 0xFFFFFFFA, 0xFFFFFFF0, 0xFFFFFFF1)
                  for e in "<>"]


@functools.cache
def base(name: str) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """The fixture's bytes and the regions worth aiming at: (lo, hi) file ranges."""
    if name.endswith("-noblock"):
        data = build_fixture(name.removesuffix("-noblock")).read_bytes().replace(BLOCK_MAGIC, NO_MAGIC)
    else:
        data = build_fixture(name).read_bytes()
    n = len(data)
    regions = [(0, min(n, 4096)), (0, n)]
    blk = data.find(BLOCK_MAGIC)
    if blk >= 0:
        regions.append((max(0, blk - 64), min(n, blk + 512)))
    for magic in PCLNTAB_MAGICS:  # the pclntab header and the start of its functab
        at = data.find(magic)
        if at >= 0:
            regions += [(at, min(n, at + 80)), (at, min(n, at + (64 << 10)))]
    ver = data.find(b"go1.")  # the runtime.buildVersion text (or the first go1. string)
    if ver >= 0:
        regions.append((ver, min(n, ver + 16)))
    if data[:4] == b"\x7fELF":
        e = "<" if data[5] == 1 else ">"
        shoff = struct.unpack_from(e + ("Q" if data[4] == 2 else "I"), data, 40 if data[4] == 2 else 32)[0]
        if 0 < shoff < n:
            regions.append((shoff, n))
    if data[:4] == b"\xca\xfe\xba\xbe":
        off = struct.unpack_from(">I", data, 16)[0]  # first slice's headers
        regions.append((off, min(n, off + 4096)))
    return data, tuple(regions)


# Bases that could not be built here, with the reason (filled by load_bases): test_bases_complete
# names them, so a missing toolchain shows as a skip (a failure in CI) instead of a smaller campaign.
MISSING_BASES: dict[str, str] = {}


def load_bases() -> list[str]:
    names = []
    for name in BASES:
        try:
            base(name)
        except pytest.skip.Exception as e:  # a missing toolchain; a failed build still fails
            MISSING_BASES[name] = str(e.msg)
            continue
        names.append(name)
    return names


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 7), st.integers(0, 1 << 32), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 7), st.integers(0, 1 << 32),
              st.sampled_from([0, 0xFF, 0x7F, 0x80]) | st.integers(0, 255)),
    st.tuples(st.just("word"), st.integers(0, 7), st.integers(0, 1 << 32),
              st.sampled_from(["<I", ">I", "<Q", ">Q", "<H", ">H"]), st.sampled_from(HUGE)),
    st.tuples(st.just("trunc"), st.integers(0, 7), st.integers(0, 1 << 32)),
)


def mutate(data: bytes, regions: tuple[tuple[int, int], ...], ops: list[tuple[Any, ...]]) -> bytes:
    b = bytearray(data)
    for op in ops:
        lo, hi = regions[op[1] % len(regions)]
        hi = min(hi, len(b))
        if hi <= lo:
            continue
        off = lo + op[2] % (hi - lo)
        if op[0] == "flip":
            b[off] ^= 1 << op[3]
        elif op[0] == "byte":
            b[off] = op[3]
        elif op[0] == "word":
            size = struct.calcsize(op[3])
            if off + size <= len(b):
                struct.pack_into(op[3], b, off, op[4] & ((1 << (8 * size)) - 1))
        else:
            del b[off:]
    return bytes(b)


class Runner:
    """One memfd (a regular file that lives in memory) rewritten per case, read in a worker thread
    so that a hang fails the case instead of the run."""

    def __init__(self, trace_memory: bool = False) -> None:
        self.fd = os.memfd_create("buildinfo-fuzz")
        self.trace = trace_memory

    def check(self, data: bytes) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        box: dict[str, Any] = {}

        def target() -> None:
            cpu0 = time.thread_time()
            try:
                box["r"] = read_build_info(self.fd)
            except BaseException as e:
                box["e"] = e
            try:
                box["f"] = read_functions(self.fd)
            except BaseException as e:
                box["fe"] = e
            box["cpu"] = time.thread_time() - cpu0

        if self.trace:
            tracemalloc.start()
            tracemalloc.reset_peak()
        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(TIME_LIMIT)
        peak = tracemalloc.get_traced_memory()[1] if self.trace else 0
        if self.trace:
            tracemalloc.stop()
        assert not t.is_alive(), f"no answer within {TIME_LIMIT}s (hang or unbounded read)"
        assert box["cpu"] < CPU_LIMIT, f"{box['cpu']:.1f} CPU seconds for one read"
        assert peak < MEM_LIMIT, f"{peak >> 20} MiB allocated at peak"
        for err, ok, want in (("e", "r", BuildInfo), ("fe", "f", FuncTable)):
            if err in box:
                e = box[err]
                if not isinstance(e, BuildInfoError):
                    raise AssertionError(f"untyped {type(e).__name__}: {e}") from e
                assert isinstance(e.reason, str) and e.reason
            else:
                assert isinstance(box[ok], want)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture(scope="module")
def bases() -> list[str]:
    names = load_bases()
    if not names:
        pytest.skip("no fuzz base could be built: " + "; ".join(MISSING_BASES.values()))
    return names


def test_bases_complete(bases: list[str]) -> None:
    """The campaigns below mutate whatever bases were built; this names every one that was not."""
    if MISSING_BASES:
        pytest.skip("fuzzing without " + "; ".join(f"{n} ({r})" for n, r in MISSING_BASES.items()))
    assert bases == BASES


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    r = Runner()
    yield r
    r.close()


@pytest.fixture(scope="module")
def traced_runner() -> Iterator[Runner]:
    r = Runner(trace_memory=True)
    yield r
    r.close()


COMMON = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.function_scoped_fixture])


@settings(COMMON, max_examples=2500)
@given(pick=st.integers(0, 1 << 16), ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_binaries_give_typed_results(bases: list[str], runner: Runner, pick: int,
                                             ops: list[tuple[Any, ...]]) -> None:
    data, regions = base(bases[pick % len(bases)])
    runner.check(mutate(data, regions, ops))


@settings(COMMON, max_examples=400)
@given(pick=st.integers(0, 1 << 16), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_binaries_memory_bound(bases: list[str], traced_runner: Runner, pick: int,
                                       ops: list[tuple[Any, ...]]) -> None:
    data, regions = base(bases[pick % len(bases)])
    traced_runner.check(mutate(data, regions, ops))


def test_process_memory_stayed_bounded(bases: list[str], runner: Runner) -> None:
    """After the campaigns above, the whole process must not have ballooned (a coarse catch for
    allocations tracemalloc does not see, e.g. mmap of a huge length)."""
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10  # KiB on Linux
    assert maxrss_mib < 1024, f"max RSS {maxrss_mib} MiB"
