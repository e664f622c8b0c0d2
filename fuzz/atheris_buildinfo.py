"""Coverage-guided fuzzing of read_build_info and read_functions with atheris (libFuzzer): the long
campaign that the hypothesis test in tests/test_buildinfo_fuzz.py samples on every CI run.

The property: any input ends in a BuildInfo (FuncTable) or a BuildInfoError. The seeds include
each Go fixture with its build-info magic overwritten, so the pclntab search, the function table
and the runtime.buildVersion data search are fuzzed from the first input. Another exception is a crash
(libFuzzer saves the input as crash-*); a hang or a memory blow-up is caught by libFuzzer's
-timeout and -rss_limit_mb. See fuzz/README.md for how to run it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from go_processes.buildinfo import BuildInfo, BuildInfoError, FuncTable, read_build_info, read_functions

_FD = os.memfd_create("atheris-buildinfo")  # a regular file in memory, rewritten per input


def test_one_input(data: bytes) -> None:
    os.ftruncate(_FD, 0)
    os.pwrite(_FD, data, 0)
    os.lseek(_FD, 0, os.SEEK_SET)
    for read, want in ((read_build_info, BuildInfo), (read_functions, FuncTable)):
        try:
            result = read(_FD)
        except BuildInfoError as e:
            if not (isinstance(e.reason, str) and e.reason):
                raise AssertionError(f"{type(e).__name__} without a reason") from e
            continue
        if not isinstance(result, want):
            raise AssertionError(f"{read.__name__} returned {type(result).__name__}")


def seed_corpus(corpus: Path) -> None:
    """Copy every Go fixture that can be built here (tests/fixtures.py) plus a few non-Go files."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import fixtures

    corpus.mkdir(parents=True, exist_ok=True)
    n = 0
    built, missing = fixtures.fixture_files()
    for name, reason in missing.items():
        print(f"not seeded: {name}: {reason}", file=sys.stderr)
    for path in built:
        data = path.read_bytes()
        (corpus / f"{path.parent.name}-{path.name}").write_bytes(data)
        if b"\xff Go buildinf:" in data:  # the twin without a block: pclntab and data paths
            twin = data.replace(b"\xff Go buildinf:", b"\xff Go XXXXXXXX:")
            (corpus / f"{path.parent.name}-{path.name}-noblock").write_bytes(twin)
        n += 1
    try:
        (corpus / "c-hello").write_bytes(fixtures.c_binary().read_bytes())
    except fixtures.pytest.skip.Exception as e:  # gcc missing
        print(f"not seeded: c-hello: {e.msg}", file=sys.stderr)
    (corpus / "java.class").write_bytes(fixtures.JAVA_CLASS)
    print(f"seeded {corpus} with {n} Go fixtures", file=sys.stderr)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--seed":
        seed_corpus(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
