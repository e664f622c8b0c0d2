"""Inputs a local user controls, and what they must not achieve (issue 13): make us read outside
their own files, block, or report something false about another user's process.

What a user controls, and where each is covered:

- gops pidfile content, FIFO, symlink, stale file: tests/test_procs.py (test_pidfile_without_a_port,
  test_fifo_pidfile_does_not_hang, test_symlinked_pidfile_is_refused,
  test_stale_pidfile_is_not_an_agent);
- a huge pidfile (read only as far as a port can go): here;
- a pidfile planted by another user for someone else's process, wherever GOPS_CONFIG_DIR,
  XDG_CONFIG_HOME or HOME puts it: here;
- GOPS_CONFIG_DIR through a symlink another user owns: tests/test_procs.py
  (test_symlinked_config_dir_is_refused); through root's or the agent's own link (followed, inside
  its root): here, and tests/test_wrong_answers.py (a HOME behind /home -> var/home);
- GOPS_CONFIG_DIR leading out of the process's own root (``..``, host paths): here;
- /proc/<pid>/root contents (etc/passwd as a symlink, a FIFO, a huge file): here;
- executables (FIFO, symlink, device, unreadable, malformed ELF/PE/Mach-O):
  tests/test_buildinfo_hostile.py, tests/test_buildinfo_fuzz.py;
- directories walked by go_executables (symlink loops and escapes, unreadable, FIFOs):
  tests/test_go_executables.py;
- a binary literally named "x (deleted)", the kernel's suffix for a deleted file: here.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures import build_fixture
from gobuild import AGENT, Build, Program, build
from test_procs import Spawner

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to act as other users and to chroot"),
]

from go_processes.procs import _linux, _psutil, gops_agent, processes  # noqa: E402

NOBODY = 65534  # the victim's uid in these tests
DAEMON = 1  # the other local user, who plants files

# A Go program that listens (as a web server would) but is no gops agent: it writes no pidfile.
LISTENER = """package main

import (
\t"fmt"
\t"net"
\t"time"
)

func main() {
\tln, err := net.Listen("tcp", "127.0.0.1:0")
\tif err != nil {
\t\tpanic(err)
\t}
\tfmt.Println(ln.Addr().(*net.TCPAddr).Port)
\ttime.Sleep(time.Hour)
}
"""
LISTENER_BUILD = Build(program=Program(module="example.com/listener", files=(("main.go", LISTENER),)),
                       name="listener")
AGENT_BUILD = Build(program=Program(module="example.com/agent", files=(("main.go", AGENT),)), name="agent")


class Started(Spawner):
    """Processes started by a test, always killed (test_procs' Spawner), plus port printers."""

    def port_printer(self, argv: list[str], **kw) -> tuple[subprocess.Popen, int]:
        """Start a program that prints its listening port first; returns it and the port."""
        p = self.popen(argv, stdout=subprocess.PIPE, **kw)
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], 20)
        assert ready, f"{argv[0]} did not start"
        line = p.stdout.readline()
        assert line.strip().isdigit(), f"{argv[0]} failed: {line!r}"
        return p, int(line)


@pytest.fixture
def started() -> Iterator[Started]:
    s = Started()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can write, sticky as /tmp is, reachable by every user."""
    d = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="gops-shared-"))
    os.chmod(d, 0o1777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any user can reach and run programs from (the build cache and pytest's
    tmp_path may be private to root)."""
    d = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="local-inputs-bin-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _world_copy(src: Path, directory: Path, name: str) -> Path:
    dst = directory / name
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755)
    return dst


def _as_user(uid: int, action: Callable[[], object]) -> None:
    """Run ``action`` in a forked child as ``uid`` (no capabilities), as that user would."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            action()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"action as uid {uid} failed"


def _one(pid: int):
    [p] = processes([pid])
    return p


def _wait_exec(pid: int, exe: Path) -> None:
    """Until ``pid`` runs ``exe`` (a wrapper such as chroot execs it a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.stat(f"/proc/{pid}/exe"), os.stat(exe)):
                return
        assert time.monotonic() < deadline, f"{exe} did not start"
        time.sleep(0.01)


class _Read:
    def __init__(self, result: object, nbytes: int) -> None:
        self.result, self.nbytes = result, nbytes


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _bytes_read(fn: Callable[[], object]) -> _Read:
    """``fn()`` and how many bytes this process read meanwhile (the kernel's count of read(2)
    bytes; the test's other threads are idle), so a read bound is checked without timing."""
    before = _rchar()
    result = fn()
    return _Read(result, _rchar() - before)


def _bounded(fn: Callable[[], object], seconds: float = 5.0) -> object:
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "hung"
    return box[0]


# -- pidfiles planted by someone else --------------------------------------------------------------


BACKENDS = {"linux": _linux.gops_agent, "psutil": _psutil.gops_agent}


# Where gops puts the pidfile under each variable, relative to the variable's value.
CONFIG_VARS = {"GOPS_CONFIG_DIR": (), "XDG_CONFIG_HOME": ("gops",), "HOME": (".config", "gops")}


@pytest.mark.parametrize("variable", CONFIG_VARS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_pidfile_planted_by_another_user_is_not_believed(backend: str, variable: str, started: Started,
                                                         shared_dir: Path, public_dir: Path) -> None:
    """A victim (nobody) listens on a port and is no gops agent; its config dir (through
    ``variable``) lies in a shared sticky directory. Another user writes the victim's pidfile
    there with the victim's port: without an owner check the victim is reported as running a
    gops agent, which is false."""
    gops_agent = BACKENDS[backend]
    exe = _world_copy(build(LISTENER_BUILD), public_dir, "listener")
    victim, port = started.port_printer([str(exe)], env={variable: str(shared_dir)},
                                        user=NOBODY, group=NOBODY, extra_groups=[])
    proc = _one(victim.pid)
    assert proc.uid == NOBODY
    assert gops_agent(proc) is None  # no pidfile yet
    pidfile = shared_dir.joinpath(*CONFIG_VARS[variable], str(victim.pid))

    def plant() -> None:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(str(port))

    _as_user(DAEMON, plant)
    assert os.stat(pidfile).st_uid == DAEMON
    assert gops_agent(proc) is None

    # The control: the same file, now owned by the victim's user, is the victim's own claim.
    os.chown(pidfile, NOBODY, NOBODY)
    agent = gops_agent(proc)
    assert agent is not None
    assert (agent.pidfile, agent.port, agent.listening) == (str(pidfile), port, True)
    assert agent.address == "127.0.0.1"


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_agent_pidfile_in_a_shared_directory_is_believed(backend: str, started: Started,
                                                              shared_dir: Path, public_dir: Path) -> None:
    """The owner check keeps real agents: one running as nobody, writing into the shared dir."""
    gops_agent = BACKENDS[backend]
    exe = _world_copy(build(AGENT_BUILD), public_dir, "agent")
    p, port = started.port_printer([str(exe)], env={"GOPS_CONFIG_DIR": str(shared_dir)},
                                   user=NOBODY, group=NOBODY, extra_groups=[])
    assert os.stat(shared_dir / str(p.pid)).st_uid == NOBODY  # written by the agent itself
    agent = gops_agent(_one(p.pid))
    assert agent is not None and (agent.port, agent.listening) == (port, True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_link_in_the_config_dir_path_counts_only_when_root_or_the_agent_owns_it(
        backend: str, started: Started, shared_dir: Path, public_dir: Path) -> None:
    """A real agent (nobody) whose GOPS_CONFIG_DIR runs through a symlink in the shared directory:
    believed when root made the link (Fedora Atomic's /home -> var/home) or its own user did,
    not when another user did, who could point it at any file with a port in it."""
    gops_agent = BACKENDS[backend]
    real = shared_dir / "real"
    real.mkdir()
    os.chown(real, NOBODY, NOBODY)
    link = shared_dir / "link"
    link.symlink_to("real")
    exe = _world_copy(build(AGENT_BUILD), public_dir, "agent")
    p, port = started.port_printer([str(exe)], env={"GOPS_CONFIG_DIR": str(link / "gops")},
                                   user=NOBODY, group=NOBODY, extra_groups=[])
    assert (real / "gops" / str(p.pid)).read_text() == str(port)  # written by the agent itself
    proc = _one(p.pid)
    for owner, believed in ((0, True), (DAEMON, False), (NOBODY, True)):
        os.lchown(link, owner, -1)
        agent = gops_agent(proc)
        assert (agent is not None and agent.listening and agent.port == port) is believed, owner


def test_huge_pidfile_is_read_only_as_far_as_a_port_can_go(started: Started, tmp_path: Path) -> None:
    """A pidfile is a few digits: a 1 GiB (sparse) one costs no more than a real one."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    p = started.popen([str(build_fixture("default")), "sleep"], env={"GOPS_CONFIG_DIR": str(cfg)})
    with open(cfg / str(p.pid), "wb") as f:
        f.write(b"1")
        f.truncate(1 << 30)
    proc = _one(p.pid)
    read = _bytes_read(lambda: _bounded(lambda: gops_agent(proc)))
    assert read.result is None  # "1" followed by NULs is no port
    assert read.nbytes < 1 << 20, read.nbytes


# -- the process's own root ------------------------------------------------------------------------


@pytest.fixture
def jail(tmp_path: Path) -> Path:
    """A chroot holding a static Go agent at /agent (gobuild builds with CGO_ENABLED=0)."""
    root = tmp_path / "jail"
    root.mkdir()
    shutil.copy2(build(AGENT_BUILD), root / "agent")
    return root


def _chrooted_agent(started: Started, jail: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    chroot = shutil.which("chroot")
    if not chroot:
        pytest.skip("needs chroot (coreutils) to give a process its own root")
    return started.port_printer([chroot, str(jail), "/agent"], env=env)


@pytest.mark.parametrize("config_dir", ["HOST", "/../HOST", "../../HOST"],
                         ids=["host-path", "absolute-dotdot", "relative-dotdot"])
def test_config_dir_cannot_leave_the_process_root(config_dir: str, started: Started, jail: Path,
                                                  tmp_path: Path) -> None:
    """A chrooted agent names a config dir that, read from *our* root, holds a pidfile with its
    real port. The agent itself can never see that file: we must not either."""
    outside = tmp_path / "outside"  # a host directory the chrooted process cannot reach
    outside.mkdir()
    if config_dir == "HOST":
        config_dir = str(outside)
    elif config_dir == "/../HOST":
        config_dir = "/.." + str(outside)
    else:  # relative to its cwd (/ of the jail): ../../outside from the jail reaches outside
        config_dir = os.path.relpath(outside, jail)
    p, port = _chrooted_agent(started, jail, {"GOPS_CONFIG_DIR": config_dir})
    # Where the agent itself wrote, inside its root (chroot(2): ".." at / stays at /): remove
    # it, and plant the real port where the name leads from *our* root.
    inside = jail / os.path.normpath("/" + config_dir).lstrip("/") / str(p.pid)
    assert inside.read_text() == str(port)
    inside.unlink()
    (outside / str(p.pid)).write_text(str(port))
    assert _bounded(lambda: gops_agent(_one(p.pid))) is None


def test_config_dir_inside_the_root_is_read_there(started: Started, jail: Path) -> None:
    """The control for the test above: the agent's own pidfile, inside its root, is found."""
    p, port = _chrooted_agent(started, jail, {"GOPS_CONFIG_DIR": "/run/gops"})
    assert (jail / "run" / "gops" / str(p.pid)).read_text() == str(port)
    agent = gops_agent(_one(p.pid))
    assert agent is not None and (agent.pidfile, agent.port, agent.listening) == (
        f"/run/gops/{p.pid}", port, True)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of NULs, no line with a home


def _link_to_host_passwd(path: Path) -> None:
    path.symlink_to("/etc/passwd")


@pytest.mark.parametrize("make_passwd", [_fifo, _huge, _link_to_host_passwd], ids=["fifo", "huge", "symlink"])
def test_hostile_passwd_in_the_process_root(make_passwd: Callable[[Path], None], started: Started,
                                            jail: Path) -> None:
    """No HOME, XDG_CONFIG_HOME or GOPS_CONFIG_DIR: the home comes from etc/passwd inside the
    process's root, which its owner controls. A FIFO must not block, a huge file must not cost
    more than its bounded read, a symlink must not lead to our own passwd file."""
    (jail / "etc").mkdir()
    make_passwd(jail / "etc" / "passwd")
    shutil.copy2(build_fixture("default"), jail / "prog")
    chroot = shutil.which("chroot")
    if not chroot:
        pytest.skip("needs chroot (coreutils) to give a process its own root")
    p = started.popen([chroot, str(jail), "/prog", "sleep"], env={})  # no HOME: passwd decides
    _wait_exec(p.pid, jail / "prog")
    # A pidfile where root's home from *our* passwd would put it, inside the jail: found only if
    # our passwd were consulted for a process with a passwd of its own.
    gops = jail / "root" / ".config" / "gops"
    gops.mkdir(parents=True)
    (gops / str(p.pid)).write_text("1")
    proc = _one(p.pid)
    read = _bytes_read(lambda: _bounded(lambda: gops_agent(proc)) is None)
    assert read.result
    assert read.nbytes < 2 << 20  # the passwd read is bounded at 1 MiB; the file holds 1 GiB


# -- names ---------------------------------------------------------------------------------------


def test_file_named_deleted_is_not_reported_deleted(started: Started, tmp_path: Path) -> None:
    """A user may name a binary "x (deleted)": the kernel's suffix for a deleted file. The row
    must say the file is on disk, under its real name."""
    exe = tmp_path / "prog (deleted)"
    shutil.copy2(build_fixture("default"), exe)
    p = started.popen([str(exe), "sleep"])
    _wait_exec(p.pid, exe)
    proc = _one(p.pid)
    assert (proc.path, proc.on_disk) == (str(exe), 1)
    assert stat.S_ISREG(os.stat(exe).st_mode)
