"""Why the reader walks headers itself: the same job done with pyelftools, pefile and macholib.

For every Go fixture and a sample of /usr/bin ELF files, time (a) our whole ``read_build_info``
and (b) the least each library must do before it could even look for the build-info block
(parse the headers and list sections/segments). Both sides get the same files and the same number
of passes, interleaved (ours, library, ours, library ...), best pass each. A library that is not
installed gets a message and no ratio; a file a library fails on is counted and named, never timed
as if it had been parsed. Each library's import cost (a fresh interpreter) is printed beside the
ratio: it is paid once per process, not per file. Printed, never asserted.
Run: ``python bench/bench_parsers.py [--passes 5] [--limit 150]`` (extras: pip install .[bench]).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from go_processes.buildinfo import BuildInfoError, read_build_info


def _ours(path: str) -> None:
    # A typed answer ("not Go", "malformed") is a finished read, timed as such; anything else raises.
    with contextlib.suppress(BuildInfoError):
        read_build_info(path)


def _pyelftools(path: str) -> None:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        for s in elf.iter_sections():
            _ = s.name
        for seg in elf.iter_segments():
            _ = seg["p_flags"]


def _pefile(path: str) -> None:
    import pefile

    pe = pefile.PE(path, fast_load=True)
    for s in pe.sections:
        _ = s.Characteristics
    pe.close()


def _macholib(path: str) -> None:
    from macholib.MachO import MachO

    m = MachO(path)
    for h in m.headers:
        for _cmd in h.commands:
            pass


def _kind(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if head == b"\x7fELF":
        return "elf"
    if head[:2] == b"MZ":
        return "pe"
    if head in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce"):
        return "macho"
    return None


# format -> (library name, module to import, function)
LIBRARY: dict[str, tuple[str, str, Callable[[str], None]]] = {
    "elf": ("pyelftools", "elftools.elf.elffile", _pyelftools),
    "pe": ("pefile", "pefile", _pefile),
    "macho": ("macholib", "macholib.MachO", _macholib),
}


def import_cost(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter (the library's own start-up)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return float(r.stdout)


def usable(files: list[str], fn: Callable[[str], None]) -> tuple[list[str], dict[str, str]]:
    """The files ``fn`` parses, and path -> error for those it fails on (kept out of the timing,
    and out of ours too, so both sides time the same files)."""
    ok, failed = [], {}
    for p in files:
        try:
            fn(p)
        except Exception as e:
            failed[p] = f"{type(e).__name__}: {e}"
        else:
            ok.append(p)
    return ok, failed


def interleaved_best(a: Callable[[str], None], b: Callable[[str], None], files: list[str],
                     passes: int) -> tuple[float, float]:
    """Best pass of ``a`` and of ``b`` over ``files``: the same number of passes each, alternating."""
    best_a = best_b = float("inf")
    for _ in range(passes):
        for fn, which in ((a, "a"), (b, "b")):
            t = time.perf_counter()
            for p in files:
                fn(p)
            took = time.perf_counter() - t
            if which == "a":
                best_a = min(best_a, took)
            else:
                best_b = min(best_b, took)
    return best_a, best_b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--limit", type=int, default=150, help="how many /usr/bin ELF files to add")
    args = ap.parse_args()
    import fixtures  # the test suite's catalogue (builds cached Go fixtures)

    files: dict[str, list[str]] = {"elf": [], "pe": [], "macho": []}
    for name, fx in fixtures.GO_FIXTURES.items():
        if fx.build is None or fx.build.toolchain == "gccgo":
            continue
        try:
            files[fx.format].append(str(fixtures.build_fixture(name)))
        except fixtures.pytest.skip.Exception as e:  # a missing toolchain: named, not hidden
            print(f"fixture {name} not built: {e.msg}", file=sys.stderr)
    for p in fixtures.system_elf_samples(args.limit):
        files["elf"].append(str(p))
    print(f"{'format':<7}{'files':>6}{'ours ms/file':>14}{'library ms/file':>17}  ratio  library"
          f" (import, once per process)")
    for kind, paths in files.items():
        paths = [p for p in paths if _kind(p) == kind and os.path.isfile(p)]
        if not paths:
            print(f"{kind:<7}{0:>6}  no files of this format")
            continue
        lib, module, fn = LIBRARY[kind]
        try:
            importlib.import_module(module)
        except ImportError as e:
            print(f"{kind:<7}{len(paths):>6}  {lib} is not installed ({e}; pip install .[bench]): no ratio")
            continue
        paths, failed = usable(paths, fn)
        for p, err in failed.items():
            print(f"  {lib} fails on {p}: {err} (left out on both sides)")
        if not paths:
            continue
        ours, theirs = interleaved_best(_ours, fn, paths, args.passes)
        n = len(paths)
        print(f"{kind:<7}{n:>6}{ours / n * 1e3:>14.3f}{theirs / n * 1e3:>17.3f}  {theirs / ours:5.1f}x  {lib}"
              f" ({import_cost(module) * 1e3:.0f} ms)")
    print(f"our reader's import: {import_cost('go_processes.buildinfo') * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
