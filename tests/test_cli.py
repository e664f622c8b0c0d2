"""The standalone command as a Unix tool: a header on every text table, no traceback when the reader
of its output goes away (`go-processes | head`), --json unchanged, one logger driven by --verbose.
Rows come from real Go processes started here; expected values from the Go toolchain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from fixtures import build_fixture, ensure_proxy
from gobuild import go_version_m

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks Linux /proc")

from go_processes.tables import all_tables  # noqa: E402

COMMAND = [sys.executable, "-m", "go_processes"]


@pytest.fixture(scope="module")
def mods() -> Iterator[tuple[int, str]]:
    """A running Go program with dependencies: (pid, its executable)."""
    ensure_proxy()
    exe = str(build_fixture("mods"))
    p = subprocess.Popen([exe, "sleep"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                if os.path.samefile(f"/proc/{p.pid}/exe", exe):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        yield p.pid, exe
    finally:
        p.kill()
        p.wait()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)


def test_go_modules_text_has_a_header(mods: tuple[int, str]) -> None:
    pid, exe = mods
    out = run("--table", "go_modules", "--pid", str(pid))
    assert out.returncode == 0 and out.stderr == "", out.stderr
    lines = out.stdout.splitlines()
    table = {t.name: t for t in all_tables()}["go_modules"]
    header = lines[0].split("\t")
    assert header == [c.name for c in table.columns]
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    info = go_version_m(exe)
    assert info is not None
    want = {d["Path"] for d in info.get("Deps") or []} | {info["Main"]["Path"], "stdlib"}
    assert {r["module"] for r in rows} == want
    assert {r["pid"] for r in rows} == {str(pid)}


def test_gops_style_listing_has_its_header(mods: tuple[int, str]) -> None:
    pid, _ = mods
    out = run("--pid", str(pid))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["PID", "PPID", "Name", "GoVersion", "Path"]
    assert [line.split()[0] for line in lines[1:]] == [str(pid)]


def test_json_is_unchanged(mods: tuple[int, str]) -> None:
    pid, _ = mods
    out = run("--json", "--table", "go_modules", "--pid", str(pid))
    rows = json.loads(out.stdout)  # a JSON array and nothing else: no header line
    assert rows and all(r["pid"] == pid for r in rows)


@pytest.mark.parametrize("args", [[], ["--json"], ["--table", "go_modules"], ["inspect", "{exe}"]],
                         ids=["gops", "json", "go_modules", "inspect"])
def test_closed_pipe_ends_quietly(mods: tuple[int, str], args: list[str]) -> None:
    """The reader is gone before the command writes anything (our end of the pipe is closed at
    once): every write fails with EPIPE. No traceback, no 'Exception ignored' at exit."""
    _, exe = mods
    p = subprocess.Popen([*COMMAND, *(a.format(exe=exe) for a in args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    code = p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert err == ""
    assert code == 141  # 128 + SIGPIPE, as a tool killed by the signal reports in a shell


def test_verbose_drives_the_one_logger() -> None:
    """--verbose configures the project's logger (debug lines on stderr); without it, a debug
    line is dropped. Checked in a child process that logs one line through the package logger."""
    code = ("import logging, sys; from go_processes.main import main; "
            "main(['--schema'] + sys.argv[1:]); "
            "logging.getLogger('go_processes.test').debug('debug line')")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loud = subprocess.run([sys.executable, "-c", code, "--verbose"], capture_output=True, text=True,
                          timeout=60)
    assert quiet.returncode == loud.returncode == 0, (quiet.stderr, loud.stderr)
    assert quiet.stderr == ""
    assert loud.stderr == "go-processes: debug line\n"
