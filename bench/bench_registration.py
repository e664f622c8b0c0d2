"""How long the extension takes from launch to registerExtension, against osquery's budget.

osqueryd waits --extensions_timeout (default 3 s) for an autoloaded extension to register; this
measures the installed console script (`go_processes.ext` in the virtualenv) and, when `make dist`
has built it, the single file dist/go_processes.ext, each launched by the osqueryd stand-in as
osqueryd launches it. Median and worst of N launches, printed beside the budget; a report, not a
test (a bound in a test would fail on a loaded machine and prove nothing about a host).

    python bench/bench_registration.py [--launches 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import osqueryd  # noqa: E402

BUDGET = 3.0  # osquery's default --extensions_timeout, seconds


def launches(command: list[str] | None, n: int) -> list[float]:
    out = []
    for _ in range(n):
        with osqueryd.OsqueryD(command=command) as osq:
            osq.wait_registered(timeout=60)
            out.append(time.monotonic() - osq.launched_at)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=9)
    args = ap.parse_args()
    candidates: list[tuple[str, list[str] | None]] = [("console script (pip install)", None)]
    single = ROOT / "dist" / "go_processes.ext"
    if single.exists():
        candidates.append(("dist/go_processes.ext (one file)", ["env", "-i", str(single)]))
    else:
        print("dist/go_processes.ext not built (make dist): measuring the console script only")
    for label, command in candidates:
        times = launches(command, args.launches)
        med, worst = statistics.median(times), max(times)
        print(f"{label:<34} launch -> registerExtension: median {med * 1000:6.0f} ms,"
              f" worst {worst * 1000:6.0f} ms  ({args.launches} launches;"
              f" budget {BUDGET:.0f} s: {'met' if worst < BUDGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
