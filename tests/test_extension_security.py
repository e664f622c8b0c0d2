"""Who can reach the extension (issue 13): whoever connects to ``<manager socket>.<uuid>`` runs
``generate`` as the extension's user (root), so the socket is owner-only whatever the umask; the
extension refuses a manager socket directory in which another user could replace sockets; and it
works least-privilege, as user nobody with the two capabilities the README's Security section
names.

Every "cannot connect" is paired with a control in the same directory that the same user *can*
connect to, so a test cannot pass because the user could not reach the directory at all.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import osqueryd
import pytest
from fixtures import build_fixture
from gobuild import go_version_m
from osqueryd import OsqueryD

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux credentials and /proc"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to act as other users"),
]

NOBODY = 65534
DAEMON = 1  # another unprivileged uid, neither nobody nor root


def _connect_as(path: str, uid: int, gid: int | None = None) -> str:
    """"ok", or the errno name of connect(``path``) made by a forked child running as ``uid`` (no
    capabilities: setuid from root to another uid clears them). A fork, not a fresh interpreter:
    ours may live under /root, where other users cannot start it."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        answer = b"fork child failed"
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid if gid is None else gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(path)
                answer = b"ok"
            except OSError as e:
                answer = errno.errorcode.get(e.errno or 0, str(e)).encode()
        finally:
            os.write(wfd, answer)
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def _control_socket(path: str) -> socket.socket:
    """A listening socket made under umask 000 (mode 0777): what the extension's was before."""
    old = os.umask(0)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
    finally:
        os.umask(old)
    s.listen(1)
    return s


def _umask_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in status")


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def test_socket_is_owner_only_under_umask_000() -> None:
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        directory = os.path.dirname(osq.socket)
        os.chmod(directory, 0o755)  # others may reach the directory: only the socket's mode stops them
        control = _control_socket(os.path.join(directory, "control"))
        try:
            assert _connect_as(control.getsockname(), NOBODY) == "ok"
        finally:
            control.close()
        old = os.umask(0)  # as a daemon started with umask 000 would launch it
        try:
            osq.launch()
        finally:
            os.umask(old)
        osq.wait_ready()  # the manager (our uid) connected and pinged
        assert _umask_of(osq.proc.pid) == 0  # the extension really ran under umask 000, and restored it
        path = osq.extension_path()
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert st.st_uid == os.geteuid()
        assert _connect_as(path, NOBODY) == "EACCES"
        assert osq.client().ping().code == 0
        _no_traceback(osq.stderr())


def test_replaced_stale_socket_is_owner_only() -> None:
    """The stale socket a killed extension left (mode 0777 here) is replaced by an owner-only one."""
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        os.chmod(os.path.dirname(osq.socket), 0o755)
        osq.handler.next_uuid = 4244
        stale = _control_socket(osq.extension_path(4244))
        stale.close()  # the file stays, nobody listens
        assert stat.S_IMODE(os.lstat(osq.extension_path(4244)).st_mode) == 0o777
        osq.launch()
        assert osq.wait_ready() == 4244
        assert stat.S_IMODE(os.lstat(osq.extension_path(4244)).st_mode) == 0o600
        assert _connect_as(osq.extension_path(4244), NOBODY) == "EACCES"


# -- the manager socket's directory ------------------------------------------------------------


def test_world_writable_manager_directory_is_refused() -> None:
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        directory = os.path.dirname(osq.socket)
        os.chmod(directory, 0o777)
        osq.launch()
        code = osq.wait_exit(10)
        assert code is not None, "still running in a directory every user can write"
        assert code != 0
        err = osq.stderr()
        assert "refusing to start" in err and directory in err and "sticky" in err, err
        assert osq.handler.attempts == []  # refused before registering anything
        _no_traceback(err)


def test_manager_socket_of_another_user_is_refused() -> None:
    """In a sticky directory such as /tmp anyone may create the manager's socket first: one owned
    by another user is not osqueryd's, and the extension neither registers there nor listens."""
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        os.chmod(os.path.dirname(osq.socket), 0o1777)
        os.chown(osq.socket, NOBODY, NOBODY)
        osq.launch()
        code = osq.wait_exit(10)
        assert code is not None and code != 0
        err = osq.stderr()
        assert "refusing to start" in err and f"{osq.socket} is owned by uid {NOBODY}" in err, err
        assert osq.handler.attempts == []
        _no_traceback(err)


@pytest.mark.parametrize("mode", [0o1777, 0o755, 0o700], ids=["sticky", "0755", "0700"])
def test_sticky_or_private_manager_directory_starts(mode: int) -> None:
    with OsqueryD(osqueryd.probe_command(), launch=False) as osq:
        os.chmod(os.path.dirname(osq.socket), mode)
        osq.launch()
        osq.wait_ready()
        assert osq.client().ping().code == 0
        assert "refusing" not in osq.stderr()


def _start_alone(socket_path: Path, timeout: int) -> tuple[subprocess.CompletedProcess, float]:
    """The extension with no manager: it either refuses at once or waits ``timeout`` for one."""
    argv = [*osqueryd.default_command(), "--socket", str(socket_path), "--timeout", str(timeout)]
    start = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return r, time.monotonic() - start


@pytest.mark.parametrize("layout", ["writable-parent", "through-symlink", "foreign-owner"])
def test_unsafe_directory_above_or_behind_is_refused(layout: str, tmp_path: Path) -> None:
    """Checked up to / and through symlinks: a world-writable parent lets anyone rename the
    socket directory away; another user's directory can be changed by its owner at will."""
    if layout == "writable-parent":
        culprit = tmp_path / "open"
        (culprit / "osquery").mkdir(parents=True)
        os.chmod(culprit, 0o777)
        sock = culprit / "osquery" / "osquery.em"
    elif layout == "through-symlink":
        culprit = tmp_path / "open"
        culprit.mkdir()
        os.chmod(culprit, 0o777)
        (tmp_path / "link").symlink_to(culprit)
        sock = tmp_path / "link" / "osquery.em"
    else:
        culprit = tmp_path / "someone-elses"
        culprit.mkdir()
        os.chown(culprit, NOBODY, NOBODY)
        sock = culprit / "osquery.em"
    # The refusal comes before any wait for the manager: with a 600 s --timeout, an extension that
    # waited would trip _start_alone's 60 s watchdog (subprocess.TimeoutExpired fails the test).
    r, _ = _start_alone(sock, timeout=600)
    assert r.returncode != 0
    assert "refusing to start" in r.stderr and str(culprit) in r.stderr, r.stderr
    _no_traceback(r.stderr)


def test_safe_directory_without_manager_is_not_refused(tmp_path: Path) -> None:
    """The control for the test above: same layout, safe modes: it waits for the manager instead."""
    (tmp_path / "safe" / "osquery").mkdir(parents=True)
    r, took = _start_alone(tmp_path / "safe" / "osquery" / "osquery.em", timeout=1)
    assert r.returncode != 0
    assert "refusing" not in r.stderr and "cannot reach the osquery extension manager" in r.stderr
    assert took >= 1.0


# -- least privilege -----------------------------------------------------------------------------

CAPS = ("sys_ptrace", "dac_read_search")
CAP_BITS = {"sys_ptrace": 19, "dac_read_search": 2}  # linux/capability.h


def _setpriv(caps: tuple[str, ...]) -> list[str]:
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("needs setpriv (util-linux) to run the extension as nobody with capabilities")
    status = Path("/proc/self/status").read_text()
    bounding = int(next(x.split()[1] for x in status.splitlines() if x.startswith("CapBnd:")), 16)
    missing = [c for c in caps if not bounding >> CAP_BITS[c] & 1]
    if missing:
        # The prefix is one CI accepts (tests/skips.py on the suite branch): a container's limit.
        pytest.skip(f"the machine's sandbox forbids it: {', '.join('CAP_' + c.upper() for c in missing)} "
                    "is not in this process's bounding set, so it cannot be granted")
    argv = [setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    if caps:
        wanted = ",".join(f"+{c}" for c in caps)
        argv += ["--inh-caps", wanted, "--ambient-caps", wanted]
    return argv


@pytest.fixture
def root_go_program(tmp_path: Path):
    """A Go program running as root from a directory only root can read."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    exe = private / "rootprog"
    shutil.copy2(build_fixture("default"), exe)
    p = subprocess.Popen([str(exe), "sleep"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield p, exe
    finally:
        p.kill()
        p.wait()


def _nobody_osqueryd(caps: tuple[str, ...]) -> OsqueryD:
    """The stand-in playing an osqueryd that runs as nobody: its socket directory and manager
    socket belong to nobody, and it launches the extension as nobody with ``caps``."""
    osq = OsqueryD([*_setpriv(caps), *osqueryd.default_command()], launch=False)
    try:
        os.chown(os.path.dirname(osq.socket), NOBODY, NOBODY)
        os.chown(osq.socket, NOBODY, NOBODY)
        os.chmod(osq.socket, 0o600)
    except BaseException:
        osq.close()
        raise
    return osq


def test_least_privilege_nobody_with_two_capabilities(root_go_program, tmp_path: Path) -> None:
    """README "Security": nobody + CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH sees root's Go process
    and root-only files as root would; its socket admits its own uid and no other."""
    proc, exe = root_go_program
    oracle = go_version_m(exe)
    assert oracle is not None
    with _nobody_osqueryd(CAPS) as osq:
        osq.launch()
        osq.wait_ready()
        status = Path(f"/proc/{osq.proc.pid}/status").read_text()
        assert f"Uid:\t{NOBODY}\t{NOBODY}" in status
        path = osq.extension_path()
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o600)
        # Same uid, no privilege: admitted. Another unprivileged uid: refused.
        assert _connect_as(path, NOBODY) == "ok"
        assert _connect_as(path, DAEMON) == "EACCES"

        client = osq.client()
        [row] = client.generate("go_processes", osq.context("go_processes", pid=[proc.pid]))
        assert (row["uid"], row["path"], row["version"]) == ("0", str(exe), oracle["GoVersion"])
        assert row["module"] == oracle["Main"]["Path"]
        found = client.generate("go_executables", osq.context("go_executables", directory=[str(exe.parent)]))
        assert [(r["path"], r["version"]) for r in found] == [(str(exe), oracle["GoVersion"])]


def test_without_sys_ptrace_other_users_processes_are_not_read(root_go_program) -> None:
    """The control for the test above: drop CAP_SYS_PTRACE and root's process cannot be read
    (so it is not listed), while the file itself is still found on disk."""
    proc, exe = root_go_program
    with _nobody_osqueryd(("dac_read_search",)) as osq:
        osq.launch()
        osq.wait_ready()
        client = osq.client()
        assert client.generate("go_processes", osq.context("go_processes", pid=[proc.pid])) == []
        found = client.generate("go_executables", osq.context("go_executables", directory=[str(exe.parent)]))
        assert [r["path"] for r in found] == [str(exe)]
        _no_traceback(osq.stderr())
