"""go_build_settings over real builds and processes, through the osqueryd stand-in.

The oracle is the Go toolchain: `go version -m -json` of the very file (or /proc/<pid>/exe) gives
runtime/debug.BuildInfo.Settings, keys and values in the order the program records them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_godebug
from fixtures import ORACLE_FIXTURES, build_fixture
from gobuild import go_version_m, go_version_m_many
from osqueryd import EQUALS, LIKE, OsqueryD, osquery5_context

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux /proc")

exes = test_godebug.exes  # the FIPS / GODEBUG builds, as a module fixture here too


def settings_of(info: dict | None) -> list[tuple[str, str]]:
    assert info is not None
    return [(s["Key"], s.get("Value", "")) for s in info.get("Settings") or []]


@pytest.fixture(scope="module")
def osq() -> Iterator[OsqueryD]:
    o = OsqueryD()
    try:
        o.wait_ready()
        yield o
    finally:
        o.close()


def generate(osq: OsqueryD, constraints: dict, cols_used=None) -> list[dict[str, str]]:
    ctx = osquery5_context(osq.columns("go_build_settings"), constraints, cols_used)
    return osq.client(timeout=120).generate("go_build_settings", ctx)


def pairs(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(r["key"], r["value"]) for r in rows]


@pytest.fixture(scope="module")
def files(exes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture the Go toolchain reads and the FIPS/GODEBUG builds, side by side in one
    directory (copies, so directory = lists exactly them)."""
    d = tmp_path_factory.mktemp("settings")
    for name in ORACLE_FIXTURES:
        shutil.copy2(build_fixture(name), d / name)
    for name, exe in exes.items():
        shutil.copy2(exe, d / f"gd-{name}")
    return d


def test_routes(osq: OsqueryD) -> None:
    ops = {r["name"]: int(r["op"]) for r in osq.routes("go_build_settings")}
    assert ops["pid"] == 1 | 8  # INDEX | OPTIMIZED
    assert ops["path"] == 1 and ops["directory"] == 4 and ops["key"] == 4
    assert ops["pid_with_namespace"] == 4 | 16
    assert dict(osq.columns("go_build_settings"))["pid"] == "BIGINT"


def test_every_file_equals_go_version_m(osq: OsqueryD, files: Path) -> None:
    """Parity, setting by setting and in order, for every test build (cross-compiled PE and
    Mach-O, -ldflags with a quoted value, -tags, GOFIPS140, GOEXPERIMENT, DefaultGODEBUG, Go 1.19)."""
    paths = sorted(str(p) for p in files.iterdir())
    oracle = go_version_m_many(paths)
    keys: set[str] = set()
    for path in paths:
        rows = generate(osq, {"path": [(EQUALS, path)]})
        want = settings_of(oracle[path])
        if path.endswith("/fat"):
            # A universal file: Go reads its first slice, we the slice of the host's architecture
            # (as go_executables), so the oracle is that slice's own file.
            arch = dict(pairs(rows))["GOARCH"]
            want = settings_of(oracle[str(files / f"darwin_{arch}")])
        assert pairs(rows) == want, path
        assert {r["path"] for r in rows} <= {path} and {r["pid"] for r in rows} <= {""}
        assert {r["directory"] for r in rows} <= {str(files)}
        keys |= {k for k, _ in want}
    # The comparison covers the settings the issue names, not only the ten old columns.
    assert {"-tags", "-ldflags", "GOEXPERIMENT", "GOAMD64", "GOFIPS140", "DefaultGODEBUG",
            "CGO_CFLAGS", "vcs.revision"} <= keys


def test_directory_and_like_as_go_executables(osq: OsqueryD, files: Path) -> None:
    by_dir = generate(osq, {"directory": [(EQUALS, str(files))]})
    assert {r["path"] for r in by_dir} == {str(p) for p in files.iterdir()}
    flags = str(files / "flags")
    assert pairs([r for r in by_dir if r["path"] == flags]) == settings_of(go_version_m(flags))
    like = generate(osq, {"path": [(LIKE, str(files) + "/gd-%")]})
    assert {r["path"] for r in like} == {str(p) for p in files.glob("gd-*")}
    # key = only narrows
    tags = generate(osq, {"directory": [(EQUALS, str(files))], "key": [(EQUALS, "-tags")]})
    assert {(r["path"], r["value"]) for r in tags} == {
        (r["path"], r["value"]) for r in by_dir if r["key"] == "-tags"}
    assert (flags, "netgo,foo") in {(r["path"], r["value"]) for r in tags}


def test_running_processes(osq: OsqueryD, exes: dict[str, Path]) -> None:
    started = [subprocess.Popen([str(exes[n]), "sleep"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for n in ("fips", "old", "boring")]
    try:
        for p, name in zip(started, ("fips", "old", "boring"), strict=True):
            deadline = time.monotonic() + 60
            while not test_godebug._runs(p.pid, exes[name]):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        pids = [p.pid for p in started]
        for pid in pids:
            rows = generate(osq, {"pid": [(EQUALS, str(pid))]})
            assert pairs(rows) == settings_of(go_version_m(f"/proc/{pid}/exe")), pid
            exe = os.readlink(f"/proc/{pid}/exe")
            assert {(r["pid"], r["path"], r["directory"]) for r in rows} == {
                (str(pid), exe, os.path.dirname(exe))}
        both = generate(osq, {"pid": [(EQUALS, str(p)) for p in pids]})
        assert {int(r["pid"]) for r in both} == set(pids)
        # With a pid constraint, path and key only narrow the process rows.
        fips = generate(osq, {"pid": [(EQUALS, str(pids[0]))], "key": [(EQUALS, "GOFIPS140")]})
        assert [(r["key"], r["value"][:6]) for r in fips] == [("GOFIPS140", "v1.0.0")]
        wrong = generate(osq, {"pid": [(EQUALS, str(pids[0]))], "path": [(EQUALS, "/bin/sh")]})
        assert wrong == []
        # Without it, path = names the file (pid NULL), e.g. the process's own through its root.
        inside = f"/proc/{pids[1]}/root{os.readlink(f'/proc/{pids[1]}/exe')}"
        rows = generate(osq, {"path": [(EQUALS, inside)]})
        assert pairs(rows) == settings_of(go_version_m(inside)) and {r["pid"] for r in rows} == {""}
        # The full scan (no constraint) includes them too.
        scan = generate(osq, {}, cols_used=["pid", "key", "value"])
        assert set(pids) <= {int(r["pid"]) for r in scan}
    finally:
        for p in started:
            p.kill()
            p.wait(10)


def test_non_go_and_missing_files_give_nothing(osq: OsqueryD, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    assert generate(osq, {"path": [(EQUALS, str(script))]}) == []
    assert generate(osq, {"path": [(EQUALS, str(tmp_path / "missing"))]}) == []
    assert generate(osq, {"pid": [(EQUALS, str(os.getpid()))]}) == []  # python is not Go


def test_gccgo_build_settings(osq: OsqueryD) -> None:
    """`go version -m` does not read gccgo programs; the build (go build -compiler=gccgo) fixes
    the compiler setting it records."""
    rows = generate(osq, {"path": [(EQUALS, str(build_fixture("gccgo")))]})
    assert ("-compiler", "gccgo") in pairs(rows)
