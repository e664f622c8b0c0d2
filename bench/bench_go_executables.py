"""go_executables over a large directory, cold and warm, against `go version -m` over the same files.

    python bench/bench_go_executables.py [--runs 5] [--dir /usr/bin] [--no-socket]

Scanned: ``path LIKE '<dir>/%%'`` for each --dir (default /usr/bin) plus the test fixtures' build
cache (tests/gobuild.py), against ``go version -m <dir>...`` (which walks the same trees) in the same
run. Cold = a fresh Detector (in-process) or a freshly launched extension (socket); warm = the
same Detector / extension asked again. Goals (issue 5): cold within 2x of go version, warm at
least 5x faster than it. The OS page cache is warm for both sides (the first, discarded, round
reads every file once). Prints medians and ratios; it is a report, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from go_processes.buildinfo import Detector
from go_processes.tables import QueryContext, go_executables
from gobuild import CACHE, GO_NEW

LIKE = 65


def context(dirs: list[str]) -> dict:
    likes = [{"op": LIKE, "expr": d.rstrip("/") + "/%%"} for d in dirs]
    return {"constraints": [{"name": "path", "list": likes}]}


def run_in_process(dirs: list[str], detector: Detector) -> tuple[float, int]:
    go_executables.DETECTOR = detector  # the module's shared instance, swapped for this measurement
    started = time.perf_counter()
    rows = list(go_executables.generate(QueryContext.parse(context(dirs))))
    return time.perf_counter() - started, len(rows)


def run_go_version(go: str, dirs: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    r = subprocess.run([go, "version", "-m", *dirs], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
    elapsed = time.perf_counter() - started
    files = sum(1 for line in r.stdout.splitlines() if line and not line[0].isspace())
    return elapsed, files


def run_socket(dirs: list[str], runs: int) -> tuple[list[float], list[float], int]:
    from osqueryd import OsqueryD, osquery5_context

    cold: list[float] = []
    warm: list[float] = []
    count = 0
    cons = {"path": [(LIKE, d.rstrip("/") + "/%%") for d in dirs]}
    for _ in range(runs):
        with_osq = OsqueryD()
        try:
            with_osq.wait_ready()
            ctx = osquery5_context(with_osq.columns("go_executables"), cons)
            client = with_osq.client(timeout=300)
            for i in range(2):
                started = time.perf_counter()
                rows = client.generate("go_executables", ctx)
                (cold if i == 0 else warm).append(time.perf_counter() - started)
                count = len(rows)
        finally:
            with_osq.close()
    return cold, warm, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", action="append", default=None)
    ap.add_argument("--no-socket", action="store_true")
    args = ap.parse_args()
    if not GO_NEW:
        print("no current Go toolchain: cannot measure `go version -m`", file=sys.stderr)
        return 2
    dirs = [d for d in (args.dir or ["/usr/bin"]) + [str(CACHE / "bin")] if os.path.isdir(d)]
    n_files = sum(len(files) for d in dirs for _, _, files in os.walk(d))
    print(f"scanning {', '.join(dirs)} ({n_files} files), {args.runs} runs each")

    run_go_version(GO_NEW, dirs)  # warm the page cache for both sides
    run_in_process(dirs, Detector())
    go_t, cold_t, warm_t = [], [], []
    rows = go_files = 0
    for _ in range(args.runs):
        t, go_files = run_go_version(GO_NEW, dirs)
        go_t.append(t)
        detector = Detector(max_entries=1 << 17)
        t, rows = run_in_process(dirs, detector)
        cold_t.append(t)
        t, _ = run_in_process(dirs, detector)
        warm_t.append(t)
    go_m, cold_m, warm_m = (statistics.median(x) for x in (go_t, cold_t, warm_t))
    print(f"go version -m       : {go_m * 1000:8.1f} ms  ({go_files} Go files)")
    print(f"go_executables cold    : {cold_m * 1000:8.1f} ms  ({rows} rows)  cold/go = {cold_m / go_m:.2f}x"
          f"  goal <= 2x: {'met' if cold_m <= 2 * go_m else 'MISSED'}")
    print(f"go_executables warm    : {warm_m * 1000:8.1f} ms  go/warm = {go_m / warm_m:.1f}x faster"
          f"  goal >= 5x: {'met' if go_m >= 5 * warm_m else 'MISSED'}")
    if not args.no_socket:
        try:
            cold_s, warm_s, srows = run_socket(dirs, args.runs)
        except Exception as e:  # the stand-in or the installed extension is missing
            print(f"socket: skipped ({e})")
        else:
            cs, ws = statistics.median(cold_s), statistics.median(warm_s)
            print(f"socket cold (new ext): {cs * 1000:8.1f} ms  ({srows} rows)  cold/go = {cs / go_m:.2f}x")
            print(f"socket warm          : {ws * 1000:8.1f} ms  go/warm = {go_m / ws:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
