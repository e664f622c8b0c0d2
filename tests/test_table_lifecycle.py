"""The table lifecycle: a table's start hook runs once the extension listens (and around the
command's one query), its stop hook when the extension is told to exit; importing the tables
starts nothing. Through the real entry point and osqueryd.py's stand-in for osqueryd."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import osqueryd

# The extension's real entry point serving two probe tables: "hooked" records its hooks in $HOOKS
# (start also records whether a generate had been answered already, i.e. whether it ran before
# the socket served), "broken" has a start hook that fails.
_HOOKED = """
import json, os
from pathlib import Path
import osqueryd
from go_processes.extension.main import main
from go_processes.tables import Table
log = Path(os.environ["HOOKS"])
def record(event):
    with log.open("a") as f:
        f.write(json.dumps(event) + "\\n")
probe = osqueryd.probe_table("hooked")
def generate(ctx):
    record("generate")
    return probe.generate(ctx)
def fail():
    raise RuntimeError("no privilege")
hooked = Table(probe.name, probe.description, probe.columns, generate,
               start=lambda: record("start"), stop=lambda: record("stop"))
broken = Table("broken", probe.description, probe.columns, probe.generate, start=fail)
main(sys.argv[1:], [hooked, broken])
"""


def _events(path: Path) -> list[str]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _until(pred, timeout: float = 30.0) -> bool:
    """Poll ``pred``; the timeout is a watchdog for an event that never comes."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_start_once_listening_stop_on_exit_and_a_failing_start_spares_the_others(tmp_path):
    hooks = tmp_path / "hooks.jsonl"
    with osqueryd.OsqueryD(osqueryd.python_command(_HOOKED), env={"HOOKS": str(hooks)}) as osq:
        osq.wait_ready()
        assert _until(lambda: "start" in _events(hooks))
        assert osq.client().generate("hooked")  # served
        assert osq.client().generate("broken")  # its start failed; it still answers
        assert "start failed: no privilege" in osq.stderr()
        assert _events(hooks) == ["start", "generate"]  # started once, before any query, not stopped
        osq.proc.send_signal(signal.SIGTERM)
        assert osq.wait_exit(30) == 0
    assert _events(hooks) == ["start", "generate", "stop"]


def test_importing_every_table_starts_nothing():
    code = ("import threading; from go_processes.tables import all_tables; "
            "assert len(all_tables()) >= 5; print(threading.active_count())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_the_command_starts_and_stops_the_table_around_its_query():
    from go_processes import main as cli

    events: list[str] = []
    probe = osqueryd.probe_table("hooked")

    def generate(ctx):
        events.append("generate")
        return probe.generate(ctx)

    table = type(probe)(probe.name, probe.description, probe.columns, generate,
                        start=lambda: events.append("start"), stop=lambda: events.append("stop"))
    rows, notices = cli._rows(table, [])
    assert len(rows) == 3 and notices == ()
    assert events == ["start", "generate", "stop"]
