"""Benchmark go_process_events under exec storms, through the real extension (osqueryd.py's stand-in).

Not a test: prints what issue 19 section 3 asks, per storm:
- non-Go: a compiled driver (built here) execs /bin/true at 1,000 per second for 30 s;
- new Go: the driver writes a fresh copy of a small Go program to /dev/shm and execs it, 100 per
  second for 30 s (every exec is a file the extension has never read: the cold path).
For each: the extension's CPU time (all its threads, /proc/<pid>/stat) per exec and in percent of
one core over the storm, the execs the source saw (status `execs`, which also counts whatever else
runs on the host) and the Go rows captured against the execs the driver made, every loss counter,
and the extension's RSS before and after. Goals: <= 10 % of one core at 1,000 non-Go execs per
second, no loss at those rates, RSS flat and < 60 MB.

Run as root: python bench/bench_process_events.py [--seconds 30] [--rate 1000] [--go-rate 100]
[--go-ms 0] (--go-ms 10: each Go program runs 10 ms instead of exiting at once)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import gobuild
from benchutil import rss_mb
from osqueryd import OsqueryD

# storm RATE SECONDS true|go [TEMPLATE DIR [ARGS...]]: exec /bin/true, or a fresh copy of TEMPLATE
# in DIR with ARGS, RATE times per second for SECONDS; prints how many it started, the seconds it
# took and how many exited with an error.
STORM = """package main

import (
\t"fmt"
\t"os"
\t"os/exec"
\t"path/filepath"
\t"strconv"
\t"sync"
\t"sync/atomic"
\t"time"
)

func main() {
\trate, _ := strconv.Atoi(os.Args[1])
\tsecs, _ := strconv.Atoi(os.Args[2])
\tmode := os.Args[3]
\tvar tmpl []byte
\tvar dir string
\tif mode == "go" {
\t\ttmpl, _ = os.ReadFile(os.Args[4])
\t\tdir = os.Args[5]
\t}
\tinterval := time.Second / time.Duration(rate)
\tstart := time.Now()
\tvar wg sync.WaitGroup
\tstarted := 0
\tvar failed int64
\tfor i := 0; i < rate*secs; i++ {
\t\ttime.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
\t\tpath := "/bin/true"
\t\tif mode == "go" {
\t\t\tpath = filepath.Join(dir, fmt.Sprintf("p%d", i))
\t\t\tif err := os.WriteFile(path, tmpl, 0o755); err != nil {
\t\t\t\tcontinue
\t\t\t}
\t\t}
\t\tcmd := exec.Command(path)
\t\tif err := cmd.Start(); err != nil {
\t\t\tcontinue
\t\t}
\t\tstarted++
\t\twg.Add(1)
\t\tgo func(p string) {
\t\t\tif cmd.Wait() != nil {
\t\t\t\tatomic.AddInt64(&failed, 1)
\t\t\t}
\t\t\tif mode == "go" {
\t\t\t\tos.Remove(p)
\t\t\t}
\t\t\twg.Done()
\t\t}(path)
\t}
\twg.Wait()
\tfmt.Println(started, time.Since(start).Seconds(), failed)
}
"""
STORM_BUILD = gobuild.Build(program=gobuild.Program(module="example.com/storm", files=(("main.go", STORM),)),
                            name="storm")
# The Go program of the second storm (a fresh copy per exec): exits at once, or after the
# milliseconds its argument says.
TINY_BUILD = gobuild.Build(program=gobuild.Program(module="example.com/tiny",
                                                  files=(("main.go", gobuild.SLEEP_EXEC),)),
                           flags=("-ldflags=-s -w",), name="tiny")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(osq: OsqueryD) -> dict[str, int]:
    [row] = osq.client(timeout=60).generate("go_process_events_status")
    return {k: int(v) for k, v in row.items() if v.lstrip("-").isdigit()}


def storm(osq: OsqueryD, name: str, argv: list[str], go_dir: str | None) -> None:
    pid = osq.proc.pid
    before, cpu0, rss0 = status(osq), cpu_seconds(pid), rss_mb(pid)
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    time.sleep(1.0)  # the reader catches up with the tail
    wall = time.monotonic() - t0
    after, cpu1, rss1 = status(osq), cpu_seconds(pid), rss_mb(pid)
    started, took, failed = int(out[0]), float(out[1]), int(out[2])
    cpu = cpu1 - cpu0
    seen = after["execs"] - before["execs"]
    print(f"\n{name}: {started} execs in {took:.1f} s ({started / took:.0f}/s), {failed} exited non-zero")
    print(f"  extension CPU  {cpu:.2f} s = {cpu / started * 1e6:.0f} us per exec, "
          f"{100 * cpu / wall:.1f} % of one core over {wall:.1f} s")
    print(f"  execs seen     {seen} (>= {started} expected; the host's other execs count too)")
    if go_dir is not None:
        rows = osq.client(timeout=120).generate("go_process_events")
        captured = sum(1 for r in rows if r["path"].startswith(go_dir + "/"))
        print(f"  Go rows        {captured} of {started} ({100 * captured / max(started, 1):.1f} %)")
    for k in ("kernel_drops", "gone_before_read", "backlog_drops", "dropped_over_bound"):
        print(f"  {k:<15}{after[k] - before[k]}")
    print(f"  RSS            {rss0:.1f} -> {rss1:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rate", type=int, default=1000, help="non-Go execs per second")
    ap.add_argument("--go-rate", type=int, default=100, help="execs of new Go executables per second")
    ap.add_argument("--go-ms", type=int, default=0, help="ms each Go program runs (0: exits at once)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the process connector needs CAP_NET_ADMIN")
    driver, tiny = gobuild.build(STORM_BUILD), gobuild.build(TINY_BUILD)
    true = shutil.which("true") or "/bin/true"
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with OsqueryD() as osq, tempfile.TemporaryDirectory(prefix="go-storm-", dir=shm) as go_dir:
        osq.wait_ready()
        deadline = time.monotonic() + 10
        while status(osq).get("running") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        print(f"extension pid {osq.proc.pid}, RSS {rss_mb(osq.proc.pid):.1f} MB idle; non-Go program {true}")
        storm(osq, f"non-Go storm ({args.rate}/s of {true})",
              [str(driver), str(args.rate), str(args.seconds), "true"], None)
        lives = f"runs {args.go_ms} ms" if args.go_ms else "exits at once"
        storm(osq, f"new Go executables ({args.go_rate}/s, a fresh copy of a {tiny.stat().st_size >> 10} KiB "
              f"program each, which {lives})",
              [str(driver), str(args.go_rate), str(args.seconds), "go", str(tiny), go_dir, str(args.go_ms)],
              go_dir)


if __name__ == "__main__":
    main()
