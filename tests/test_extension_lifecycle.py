"""The extension process's life as osqueryd drives it: start-up and registration, refusal, the
manager going away, shutdown(), signals, and its socket file."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable

import osqueryd
import pytest
from osqueryd import OsqueryD

# What osquery 5 answers a registration naming a taken table, spelled here from osquery's source
# (interface.cpp registerExtension + registry_factory.cpp addBroadcast, osquery/osquery#8260), not
# taken from the stand-in, so a stand-in that says something else fails these tests.
OSQUERY_CONFLICT = "Failed adding registry: Registry item {} conflicts with another item of the same name."

# A watchdog, not a speed goal: how long a process that must exit may take before the test calls
# it stuck. Far above any exit on a loaded machine; what it guards against is never exiting.
EXIT_WATCHDOG = 60


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def _stderr_when(osq: OsqueryD, ready: Callable[[str], bool]) -> str:
    """The extension's stderr once ``ready`` holds for it: the log line is written after the reply
    went out, so poll for it (bounded by the watchdog) instead of sleeping a guessed while."""
    deadline = time.monotonic() + EXIT_WATCHDOG
    while not ready(err := osq.stderr()):
        assert time.monotonic() < deadline, err
        time.sleep(0.01)
    return err


def test_exits_nonzero_when_the_manager_goes_away() -> None:
    with OsqueryD(osqueryd.probe_command(), interval=1) as osq:
        osq.wait_ready()
        path = osq.extension_path()
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        osq.close_manager()
        code = osq.wait_exit(EXIT_WATCHDOG)
        assert code is not None, f"still running {EXIT_WATCHDOG} s after the manager went away"
        assert code != 0
        assert not os.path.exists(path)
        err = osq.stderr()
        assert "went away" in err
        _no_traceback(err)


def test_shutdown_replies_then_exits() -> None:
    with OsqueryD(osqueryd.probe_command()) as osq:
        osq.wait_ready()
        path = osq.extension_path()
        osq.client(timeout=5).shutdown()  # raises if no reply came back
        assert osq.wait_exit(EXIT_WATCHDOG) == 0
        assert not os.path.exists(path)
        _no_traceback(osq.stderr())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_promptly_and_removes_the_socket(signum: int) -> None:
    with OsqueryD(osqueryd.probe_command()) as osq:
        uuid = osq.wait_ready()
        assert uuid in osq.handler.extensions()
        path = osq.extension_path()
        # an open connection must not hold the exit up
        c = osq.client(timeout=5, persistent=True)
        assert c.ping().code == 0
        osq.proc.send_signal(signum)
        assert osq.wait_exit(EXIT_WATCHDOG) == 0  # a held-open connection would block it forever
        assert not os.path.exists(path)
        assert uuid not in osq.handler.extensions()  # withdrawn at once, not at osqueryd's next ping
        c.close()
        _no_traceback(osq.stderr())


def test_duplicate_extension_is_refused_and_exits_nonzero() -> None:
    with OsqueryD(osqueryd.probe_command()) as osq:
        osq.wait_ready()
        first = osq.client()
        osq.launch()  # the same extension again, as a second autoload entry would
        status = osq.wait_registered(count=2)
        assert status.code == 1 and status.message == "Duplicate extension registered"
        code = osq.wait_exit(EXIT_WATCHDOG)
        assert code is not None and code != 0
        err = osq.stderr()
        assert "Duplicate extension registered" in err
        _no_traceback(err)
        assert first.ping().code == 0  # the first one is untouched


def test_table_osquery_already_has_is_refused() -> None:
    with OsqueryD(osqueryd.probe_command("processes")) as osq:
        status = osq.wait_registered()
        assert status.code == 1
        code = osq.wait_exit(EXIT_WATCHDOG)
        assert code is not None and code != 0
        err = osq.stderr()
        assert OSQUERY_CONFLICT.format("processes") in err
        _no_traceback(err)


def test_no_manager_exits_after_timeout(tmp_path) -> None:
    missing = str(tmp_path / "osquery.em")
    start = time.monotonic()
    argv = [*osqueryd.default_command(), "--socket", missing, "--timeout", "1", "--interval", "1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=EXIT_WATCHDOG)  # gives up, no hang
    took = time.monotonic() - start
    assert r.returncode != 0
    assert missing in r.stderr
    _no_traceback(r.stderr)
    assert took >= 1.0  # it waited out --timeout 1 first (a lower bound no load can break)


def _stale_socket(path: str) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nothing listens: what a killed extension leaves behind


def test_stale_socket_file_is_replaced() -> None:
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        osq.handler.next_uuid = 4242
        _stale_socket(osq.extension_path(4242))
        osq.launch()
        assert osq.wait_ready() == 4242
        assert osq.client().ping().code == 0


def test_other_file_at_the_socket_path_is_left_alone() -> None:
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        osq.handler.next_uuid = 4243
        path = osq.extension_path(4243)
        with open(path, "w") as f:
            f.write("not a socket")
        osq.launch()
        osq.wait_registered()
        code = osq.wait_exit(EXIT_WATCHDOG)
        assert code is not None and code != 0
        with open(path) as f:
            assert f.read() == "not a socket"
        assert "not a socket" in osq.stderr()
        assert osq.handler.extensions() == {}  # registered, then withdrawn


def test_unknown_arguments_are_tolerated() -> None:
    with OsqueryD(osqueryd.probe_command(), extra_args=["--extensions_require=go_processes", "stray"]) as osq:
        osq.wait_ready()
        assert osq.client().ping().code == 0
        assert "ignoring unknown arguments" in osq.stderr()


def test_verbose_logs_calls() -> None:
    with OsqueryD(osqueryd.probe_command(), verbose=True) as osq:
        osq.wait_ready()
        osq.client().generate("probe", osq.context("probe"))
        err = _stderr_when(osq, lambda e: "generate 3 rows" in e)
        assert "registered" in err and "generate 3 rows" in err


def test_quiet_without_verbose() -> None:
    with OsqueryD(osqueryd.probe_command()) as osq:
        osq.wait_ready()
        osq.client().generate("probe", osq.context("probe"))
        osq.client(timeout=30).shutdown()  # after the exit, everything it would log is written
        assert osq.wait_exit(EXIT_WATCHDOG) == 0
        assert osq.stderr() == ""


def test_entry_point_module_imports_cheaply() -> None:
    """Importing the entry point must not import the server, Thrift or any table."""
    code = ("import sys, go_processes.extension.main; "
            "print(sorted(m for m in sys.modules if m.startswith(('thrift', 'osquery', 'go_processes.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["go_processes.extension", "go_processes.extension.main"]


def test_registers_beside_every_taken_table_name() -> None:
    """On a Fleet host fleetd already holds go_binaries, and osqueryd refuses a registration whole
    when one name is taken: ours must register against every name in the list of taken names."""
    assert osqueryd.TAKEN_TABLES.get("go_binaries") == "fleetd"  # the list is the one we think
    with OsqueryD(core_tables=osqueryd.TAKEN_TABLES) as osq:
        uuid = osq.wait_ready()
        tables = set(osq.registration()[1]["table"])
        assert {"go_processes", "go_modules", "go_executables"} <= tables
        assert not tables & set(osqueryd.TAKEN_TABLES)
        assert uuid in osq.handler.extensions()


def test_registration_refused_whole_when_one_name_is_taken() -> None:
    """The guard above can fail: a manager that already holds one of our names refuses us whole."""
    with OsqueryD(core_tables={"go_modules"}) as osq:
        status = osq.wait_registered()
        assert status.code == 1
        assert status.message == OSQUERY_CONFLICT.format("go_modules")
        assert osq.handler.extensions() == {}
        code = osq.wait_exit(EXIT_WATCHDOG)
        assert code is not None and code != 0
        assert OSQUERY_CONFLICT.format("go_modules") in osq.stderr()


def test_wire_module_leaves_the_osquery_sdk_importable() -> None:
    """The wire module loads only osquery's generated modules, and a later `import osquery` in the
    same process still gets the whole SDK (its plugin classes), not a hollow package."""
    code = ("import sys, go_processes.extension._wire; "
            "loaded = sorted(m for m in sys.modules if m.startswith('osquery.') and 'extensions' not in m); "
            "import osquery; "
            "print(loaded, hasattr(osquery, 'TablePlugin'), hasattr(osquery, 'ExtensionManager'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True", "True"], out
