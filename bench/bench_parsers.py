"""Why the reader walks headers itself: the same job done with pyelftools, pefile and macholib.

For every Go fixture and a sample of /usr/bin ELF files, time (a) our whole ``read_build_info``
and (b) the least each library must do before it could even look for the build-info block
(parse the headers and list sections/segments), interleaved, best of N passes. Printed, never
asserted. Run: ``python bench/bench_parsers.py [--passes 5] [--limit 150]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from go_processes.buildinfo import BuildInfoError, read_build_info


def _ours(path: str) -> None:
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


LIBRARY: dict[str, tuple[str, Callable[[str], None]]] = {
    "elf": ("pyelftools", _pyelftools),
    "pe": ("pefile", _pefile),
    "macho": ("macholib", _macholib),
}


def _best(fn: Callable[[str], None], files: list[str], passes: int) -> float:
    best = float("inf")
    for _ in range(passes):
        t = time.perf_counter()
        for p in files:
            with contextlib.suppress(Exception):
                fn(p)
        best = min(best, time.perf_counter() - t)
    return best


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
        except BaseException as e:  # a missing toolchain skips, as in the tests
            print(f"skip {name}: {e}", file=sys.stderr)
    for p in fixtures.system_elf_samples(args.limit):
        files["elf"].append(str(p))
    print(f"{'format':<7}{'files':>6}{'ours ms/file':>14}{'library ms/file':>17}  ratio  library")
    for kind, paths in files.items():
        paths = [p for p in paths if _kind(p) == kind and os.path.isfile(p)]
        if not paths:
            continue
        lib, fn = LIBRARY[kind]
        ours = _best(_ours, paths, args.passes)
        theirs = _best(fn, paths, args.passes)
        ours = min(ours, _best(_ours, paths, args.passes))  # interleave: ours again after theirs
        n = len(paths)
        per = (ours / n * 1e3, theirs / n * 1e3)
        print(f"{kind:<7}{n:>6}{per[0]:>14.3f}{per[1]:>17.3f}  {theirs / ours:5.1f}x  {lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
