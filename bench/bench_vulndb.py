"""Benchmark the vulnerability tables against the goals of issue 10, with peers from the same run.

Not a test: prints medians, goals and ratios.

- load:   opening the database (both indexes) and reading every advisory (``Database.load_all``);
          peer: read + ``json.loads`` of every ``ID/*.json`` file, the floor any reader pays
- index:  opening a database whose index/modules.json is at the format's limits: MAX_ENTRIES items
          of one module path, MAX_INDEX bytes of distinct IDs (the worst case for gathering a
          module's IDs); goal < 2 s, the time every query waits on the store's lock
- match:  ``vulndb.match`` for a Go 1.19 program already read (function list included);
          goal < 5 ms
- query:  ``SELECT * FROM go_vulnerabilities`` through the real extension socket on a host with
          N Go processes of 5 distinct binaries: cold (fresh extension) and warm; peer:
          ``SELECT * FROM go_processes`` on the same processes, same extension
- RSS:    the extension's VmRSS after the warm queries, database fully loaded (go_vulndb's
          invalid_entries reads every advisory); goal < 60 MB

Reads the database snapshot in tests/data. Run: python bench/bench_vulndb.py [--go 100] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import gobuild
from benchutil import rss_mb
from go_processes import vulndb
from go_processes.buildinfo import Detector
from go_processes.extension._wire import _PROTOCOL as FAST_PROTOCOL  # osqueryd's client is C++
from go_processes.tables.go_vulnerabilities import program
from osqueryd import OsqueryD, osquery5_context
from vulndb_util import SNAPSHOT, extract_tar, fix_modes

SERVER = gobuild.Program(module="example.com/vserver", files=(("main.go", """package main

import "net/http"

func main() { panic(http.ListenAndServe("127.0.0.1:0", nil)) }
"""),))
SPECS = [  # (build, argv tail)
    (gobuild.Build(toolchain="old"), ["sleep"]),
    (gobuild.Build(toolchain="old", flags=("-ldflags=-s -w",)), ["sleep"]),
    (gobuild.Build(program=SERVER, toolchain="old"), []),
    (gobuild.Build(), ["sleep"]),
    (gobuild.Build(program=SERVER), []),
]


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _python_child(pid: int) -> int:
    """The interpreter: the console script is one process; the single file's bootloader has one child."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else pid


def worst_index(path: Path) -> tuple[int, int]:
    """Write index/modules.json at the format's limits; returns (items, IDs)."""
    from go_processes.vulndb import _db

    per_item = (_db.MAX_INDEX // _db.MAX_ENTRIES - 40) // len('{"id":"GO-2026-0000000"},')
    n = 0
    items = []
    for _ in range(_db.MAX_ENTRIES):
        vulns = [{"id": f"GO-2026-{n + j:07d}"} for j in range(per_item)]
        items.append({"path": "example.com/m", "vulns": vulns})
        n += per_item
    data = json.dumps(items, separators=(",", ":")).encode()
    assert len(data) <= _db.MAX_INDEX, len(data)
    path.write_bytes(data)
    return len(items), n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--go", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if not SNAPSHOT.exists():
        print(f"needs {SNAPSHOT}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-vulndb-"))
    location = tmp / "vulndb"
    extract_tar(SNAPSHOT, location)
    fix_modes(location)

    # -- load -------------------------------------------------------------------------------------
    def peer_load():
        for p in (location / "ID").iterdir():
            json.loads(p.read_bytes())

    def open_only():
        vulndb.Database(str(location)).close()

    def load_all():
        db = vulndb.Database(str(location))
        db.load_all()
        db.close()

    peer = _median(peer_load, args.runs)
    opened = _median(open_only, args.runs)
    full = _median(load_all, args.runs)
    entries = len(vulndb.Database(str(location)))
    print(f"database: {entries} entries")
    print(f"  open (indexes only)      {opened * 1000:7.1f} ms")
    print(f"  load every advisory      {full * 1000:7.1f} ms   goal < 300 ms   "
          f"peer json.loads of every file {peer * 1000:.1f} ms (x{full / peer:.2f})")

    # -- the worst index the format allows ---------------------------------------------------------
    worst = tmp / "worst"
    shutil.copytree(location, worst)
    items, ids = worst_index(worst / "index" / "modules.json")
    fix_modes(worst)
    w = _median(lambda: vulndb.Database(str(worst)).close(), max(1, args.runs // 2))
    size = (worst / "index" / "modules.json").stat().st_size
    print(f"  open, index at the limits {w * 1000:6.1f} ms   goal < 2000 ms   ({items:,} items of one "
          f"module, {ids:,} IDs, {size / 1e6:.1f} MB)")

    # -- match --------------------------------------------------------------------------------------
    db = vulndb.Database(str(location))
    db.load_all()
    exe = gobuild.build(SPECS[2][0])
    detector = Detector()
    _, info = detector.detect_path(exe)
    _, functions = detector.functions_path(exe)
    prog = program(info, functions)  # type: ignore[arg-type]
    m = _median(lambda: vulndb.match(db, prog), args.runs * 5)
    found = vulndb.match(db, prog)
    print(f"match a Go 1.19 server     {m * 1000:7.2f} ms   goal < 5 ms   ({len(found)} findings, "
          f"function list: {'yes' if prog.symbols is not None else 'unreadable'})")

    # -- query ---------------------------------------------------------------------------------------
    procs = []
    per = max(1, args.go // len(SPECS))
    for spec, tail in SPECS:
        path = gobuild.build(spec)
        procs += [subprocess.Popen([str(path), *tail], stdout=subprocess.DEVNULL) for _ in range(per)]
    env = {vulndb.ENV_LOCATION: str(location), vulndb.ENV_CONFIG: "/nonexistent"}
    try:
        time.sleep(0.5)
        colds = []
        for _ in range(3):
            with OsqueryD(env=env) as osq:
                osq.wait_ready()
                client = osq.client(protocol=FAST_PROTOCOL)
                start = time.perf_counter()
                rows = client.generate("go_vulnerabilities")
                colds.append(time.perf_counter() - start)
        with OsqueryD(env=env) as osq:
            osq.wait_ready()
            client = osq.client(persistent=True, protocol=FAST_PROTOCOL)
            client.generate("go_vulnerabilities")
            client.generate("go_processes")
            warm = _median(lambda: client.generate("go_vulnerabilities"), args.runs)
            peer_q = _median(lambda: client.generate("go_processes"), args.runs)
            ctx = osquery5_context(osq.columns("go_vulndb"))
            client.generate("go_vulndb", ctx)  # every advisory read: the worst case for memory
            for _ in range(20):
                client.generate("go_vulnerabilities")
            rss = rss_mb(_python_child(osq.proc.pid))
        print(f"SELECT * FROM go_vulnerabilities, {len(procs)} Go processes of {len(SPECS)} binaries "
              f"({len(rows)} rows)")
        print(f"  cold                     {statistics.median(colds) * 1000:7.1f} ms   goal < 500 ms")
        print(f"  warm                     {warm * 1000:7.1f} ms   goal < 50 ms   "
              f"peer SELECT * FROM go_processes {peer_q * 1000:.1f} ms (x{warm / peer_q:.2f})")
        print(f"extension RSS, database loaded  {rss:5.1f} MB   goal < 60 MB")
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
