"""Benchmark go_libraries at node scale against its floor, and go_processes' warm scan beside it.

Not a test: prints medians. The host is brought to 1,000 processes: 400 Go programs (distinct
copies of a few fixture binaries), 600 others, of which 50 C programs that dlopen() 200 distinct
non-Go shared objects each and 10 that also load a Go c-shared library (the rows), the rest
`sleep`.

- go_libraries warm: generate, every column, on a reader that has answered before (each non-Go
  file a cache hit by identity), in this process (no socket)
- floor: the system calls alone that a correct answer needs, made from Python (``_floor``) and by
  a compiled program (FLOOR_GO below): list /proc, stat each /proc/<pid>/exe, read each maps file
  whole, stat one map_files entry per distinct executable file; nothing parsed, no rows
- go_processes warm (every column, and pid only): the table that must not pay for the maps; run
  this script on the commit before go_libraries (it then prints only these lines) to compare

Run: python bench/bench_go_libraries.py [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gobuild
from bench_go_processes import _all_exe_links, _binaries, _start_more
from benchutil import timed

LOADER_C = r"""
#include <dlfcn.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    pause();
    return 0;
}
"""

GO_LIB = """package main

import "C"

//export Answer
func Answer() C.int { return 42 }

func main() {}
"""

# The floor's system calls, compiled: bench_go_processes' floor.go, for the maps instead of stat.
FLOOR_GO = """package main

import (
\t"fmt"
\t"os"
\t"sort"
\t"strconv"
\t"strings"
\t"syscall"
\t"time"
)

func main() {
\truns, _ := strconv.Atoi(os.Args[1])
\ttimes := []float64{}
\tbuf := make([]byte, 1<<16)
\tfor i := 0; i < runs; i++ {
\t\tstart := time.Now()
\t\tpass(buf)
\t\ttimes = append(times, time.Since(start).Seconds())
\t}
\tsort.Float64s(times)
\tfmt.Println(times[len(times)/2])
}

func pass(buf []byte) {
\td, _ := os.Open("/proc")
\tnames, _ := d.Readdirnames(-1)
\td.Close()
\tvar st syscall.Stat_t
\tseen := map[string]bool{}
\tfor _, name := range names {
\t\tif name[0] < '0' || name[0] > '9' {
\t\t\tcontinue
\t\t}
\t\tbase := "/proc/" + name
\t\tif syscall.Stat(base+"/exe", &st) != nil {
\t\t\tcontinue
\t\t}
\t\tfd, err := syscall.Open(base+"/maps", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
\t\tif err != nil {
\t\t\tcontinue
\t\t}
\t\tvar data []byte
\t\tfor {
\t\t\tn, err := syscall.Read(fd, buf)
\t\t\tif n <= 0 || err != nil {
\t\t\t\tbreak
\t\t\t}
\t\t\tdata = append(data, buf[:n]...)
\t\t}
\t\tsyscall.Close(fd)
\t\tfor _, line := range strings.Split(string(data), "\\n") {
\t\t\tf := strings.Fields(line)
\t\t\tif len(f) < 6 || f[1][2] != 'x' || f[4] == "0" || seen[f[3]+" "+f[4]] {
\t\t\t\tcontinue
\t\t\t}
\t\t\tseen[f[3]+" "+f[4]] = true
\t\t\tsyscall.Stat(base+"/map_files/"+f[0], &st)
\t\t}
\t}
}
"""

_X = re.compile(rb"^([0-9a-f]+-[0-9a-f]+) ..x. [0-9a-f]+ ([0-9a-f]+:[0-9a-f]+ [1-9][0-9]*) ", re.M)


def _floor() -> None:
    seen: set[bytes] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        base = "/proc/" + name
        try:
            os.stat(base + "/exe")
            with open(base + "/maps", "rb") as f:
                data = f.read()
        except OSError:
            continue
        for region, key in _X.findall(data):
            if key not in seen:
                seen.add(key)
                with contextlib.suppress(OSError):
                    os.stat(f"{base}/map_files/{region.decode()}")


def _gcc(out: Path, source: str, *flags: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--total", type=int, default=1000)
    ap.add_argument("--go", type=int, default=400)
    ap.add_argument("--mappers", type=int, default=50, help="C programs mapping --libs non-Go objects")
    ap.add_argument("--libs", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=10, help="of the mappers, how many also load a Go library")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-gl-"))
    procs: list[subprocess.Popen] = []
    try:
        loader = _gcc(work / "loader", LOADER_C)
        plain = _gcc(work / "libplain.so", "int plain(void) { return 1; }\n", "-shared", "-fPIC")
        nongo = []
        for i in range(args.libs):
            shutil.copy(plain, work / f"libnongo{i}.so")
            nongo.append(str(work / f"libnongo{i}.so"))
        golib = gobuild.build(gobuild.Build(
            program=gobuild.Program(module="example.com/benchlib", files=(("lib.go", GO_LIB),)),
            flags=("-buildmode=c-shared",), env=(("CGO_ENABLED", "1"),), name="libgo.so"))
        bins = _binaries()
        floor_exe = gobuild.build(gobuild.Build(
            program=gobuild.Program(module="example.com/floormaps", files=(("main.go", FLOOR_GO),)),
            name="floormaps"))
        _start_more(procs, [], bins, args.go, 0, work)
        for i in range(args.mappers):
            extra = [str(golib)] if i < args.hosts else []
            procs.append(subprocess.Popen([str(loader), *extra, *nongo]))
        have = len(_all_exe_links())
        for _ in range(max(0, args.total - have)):
            procs.append(subprocess.Popen(["sleep", "3600"]))
        time.sleep(2.0)
        links = _all_exe_links()
        print(f"host: {len(links)} processes with an executable; {args.go} Go programs started; "
              f"{args.mappers} map {args.libs} non-Go objects each, {args.hosts} of them a Go library")

        from go_processes.tables import QueryContext
        from go_processes.tables.go_processes import TABLE as PROCESSES

        every, pid_only = QueryContext(), QueryContext(cols_used=frozenset({"pid"}))
        list(PROCESSES.generate(every))
        gp = [timed(lambda: list(PROCESSES.generate(every))) for _ in range(args.runs)]
        gp_pid = [timed(lambda: list(PROCESSES.generate(pid_only))) for _ in range(args.runs)]
        import importlib.util

        # The commit before go_libraries has no such table: go_processes' lines only.
        if importlib.util.find_spec("go_processes.tables.go_libraries") is not None:
            from go_processes.tables.go_libraries import TABLE as LIBRARIES

            start = time.perf_counter()
            rows = list(LIBRARIES.generate(every))
            cold = time.perf_counter() - start
            warm = [timed(lambda: list(LIBRARIES.generate(every))) for _ in range(args.runs)]
            floor_py = [timed(_floor) for _ in range(args.runs)]
            out = subprocess.run([str(floor_exe), str(args.runs)], capture_output=True, text=True, check=True)
            floor_go = float(out.stdout)
            w = statistics.median(warm)
            print(f"go_libraries rows: {len(rows)} (expected {args.hosts})")
            print(f"{'go_libraries warm, every column':<40} {w * 1000:9.2f} ms")
            print(f"{'go_libraries first query (cold reads)':<40} {cold * 1000:9.2f} ms")
            print(f"{'floor made from Python':<40} {statistics.median(floor_py) * 1000:9.2f} ms "
                  f"(ours {w / statistics.median(floor_py):.2f}x)")
            print(f"{'floor made by a compiled program':<40} {floor_go * 1000:9.2f} ms "
                  f"(ours {w / floor_go:.2f}x)")
        print(f"{'go_processes warm, every column':<40} {statistics.median(gp) * 1000:9.2f} ms")
        print(f"{'go_processes warm, pid only':<40} {statistics.median(gp_pid) * 1000:9.2f} ms")
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
