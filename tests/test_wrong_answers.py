"""Answers that were wrong, each reproduced through the extension's socket (osqueryd.py plays
osqueryd) on real processes and real Go programs, or through the command:

- a live process left out because another process on the same binary exited mid-scan;
- a constraint that replaced the table's relation instead of narrowing it (go_vulnerabilities
  ``pid = P AND path = X``), and host rows lost on ``pid_with_namespace = 0`` (go_executables);
- a gops agent missed behind a root-owned symlink in its HOME (``/home -> var/home`` on Fedora
  Atomic and CoreOS), while a symlink another user owns is still refused;
- ``go-processes --table go_vulnerabilities`` without a database printing a bare header.

Expected values come from how each test set things up (the pids it started, the port the agent
printed, the binary it built), never from the code under test.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import osqueryd
import pytest
from fixtures import build_fixture
from go_processes import vulndb
from test_procs import Spawner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real Linux processes")


@pytest.fixture
def spawner() -> Iterator[Spawner]:
    s = Spawner()
    try:
        yield s
    finally:
        s.close()


def _env(db: Path | None = None) -> dict[str, str]:
    return {vulndb.ENV_LOCATION: str(db) if db else "/nonexistent/vulndb",
            vulndb.ENV_CONFIG: "/nonexistent/go-processes.conf"}


def _pids(rows: list[dict[str, str]]) -> set[int]:
    return {int(r["pid"]) for r in rows}


# --- a race must not hide another process ---------------------------------------------------------

# The real extension, except that the first detector read of one of $VICTIMS's executables first
# kills that process (SIGKILL, then waits until its exe link is gone): the exit between the
# scan's stat and the detector's open that a busy host produces by chance, made certain.
_KILL_INSIDE_DETECT = """
import os, signal, time
from go_processes.tables._shared import DETECTOR
victims = {int(p) for p in os.environ["VICTIMS"].split(",")}
real = DETECTOR.detect
def detect(identity, open_fd):
    pid = next((int(a.split("/")[2]) for a in getattr(open_fd, "args", ())
                if isinstance(a, str) and a.startswith("/proc/")), None)
    if pid in victims:
        victims.clear()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}/exe") and time.monotonic() < deadline:
            try:
                os.stat(f"/proc/{pid}/exe")
            except OSError:
                break
            time.sleep(0.005)
    return real(identity, open_fd)
DETECTOR.detect = detect
from go_processes.extension.main import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("constrained", [False, True], ids=["full-scan", "pid-in"])
def test_a_process_exiting_mid_scan_hides_no_other_process_on_its_binary(spawner, tmp_path, constrained):
    exe = tmp_path / "shared-binary"  # a binary no other process runs, so no cache knows it yet
    exe.write_bytes(build_fixture("default").read_bytes())
    exe.chmod(0o755)
    a = spawner.popen([str(exe), "sleep"])
    b = spawner.popen([str(exe), "sleep"])
    env = {**_env(), "VICTIMS": f"{a.pid},{b.pid}"}
    with osqueryd.OsqueryD(osqueryd.python_command(_KILL_INSIDE_DETECT), env=env) as osq:
        osq.wait_ready()
        ctx = osq.context("go_processes", ["pid", "path"], **({"pid": [a.pid, b.pid]} if constrained else {}))
        rows = [r for r in osq.client(timeout=120).generate("go_processes", ctx) if r["path"] == str(exe)]
        dead = [p for p in (a, b) if p.poll() is not None]
        assert len(dead) == 1 and dead[0].returncode == -signal.SIGKILL  # the race happened, to one
        (survivor,) = {a.pid, b.pid} - {dead[0].pid}
        assert _pids(rows) == {survivor}
