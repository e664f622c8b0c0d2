"""The process layer against real processes: Go programs from every toolchain the project installs
(started here, killed at teardown), non-Go processes, threads, zombies, kernel threads, a deleted
executable, one started through a symlink, one in its own mount namespace, and gops-agent-like
programs run as another user. Expected values come from the Go toolchain (`go version -m` on
/proc/<pid>/exe) and from what this test reads or set up itself, never from our own output.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import pwd
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import skips
from fixtures import build_fixture
from gobuild import AGENT, Build, Program, build, go_version_m

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks Linux /proc")

from go_processes.buildinfo import BuildInfo, Detector, NotGoExecutable  # noqa: E402
from go_processes.procs import (  # noqa: E402
    Process,
    executable,
    executables,
    gops_agent,
    processes,
    running_go,
)

AGENT_BUILD = Build(program=Program(module="example.com/agent", files=(("main.go", AGENT),)), name="agent")
GO_KINDS = ("default", "stripped", "pie", "cgo", "static", "old", "gccgo")
AGENT_USER = "gopsagenttest"
LONG_NAME = "go-symlinked-program-name"  # > 15 bytes: comm is truncated, argv[0] tells the rest


def wait_for(pred: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until pred() holds; the timeout is a watchdog for something that never happens."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def proc_stat(pid: int) -> tuple[str, str, int]:
    """(comm, state, ppid) as this test reads /proc/<pid>/stat itself."""
    data = Path(f"/proc/{pid}/stat").read_bytes()
    comm = data[data.index(b"(") + 1 : data.rindex(b")")].decode()
    fields = data[data.rindex(b")") + 2 :].split()
    return comm, fields[0].decode(), int(fields[1])


@dataclass
class Started:
    kind: str
    popen: subprocess.Popen
    name: str  # what exe/name must be (from how we started it)
    path: str  # the path the process sees
    on_disk: int
    go: bool  # a Go program (gccgo included)

    @property
    def pid(self) -> int:
        return self.popen.pid


class Spawner:
    """Starts processes and always kills them."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.started.append(p)
        return p

    def close(self) -> None:
        for p in self.started:
            with contextlib.suppress(OSError):
                p.kill()
        for p in self.started:
            with contextlib.suppress(Exception):
                p.wait(timeout=10)


@pytest.fixture(scope="module")
def spawner() -> Iterator[Spawner]:
    s = Spawner()
    try:
        yield s
    finally:
        s.close()


def _exe_is(pid: int, path: str) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samestat(os.stat(f"/proc/{pid}/exe"), os.stat(path))
    return False


# Kinds the zoo could not start on this machine, with the reason (filled by the zoo fixture):
# test_zoo_is_complete skips naming each one, so a missing toolchain shows in `-ra` and fails CI
# instead of quietly shrinking what the other tests walk.
ZOO_MISSING: dict[str, str] = {}


@pytest.fixture(scope="module")
def zoo(spawner: Spawner, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Started]:
    """Every kind of process the table must tell apart, running until module teardown."""
    tmp = tmp_path_factory.mktemp("zoo")
    out: dict[str, Started] = {}
    ZOO_MISSING.clear()
    for kind in GO_KINDS:
        try:
            exe = build_fixture(kind)
        except pytest.skip.Exception as e:  # recorded, and reported by test_zoo_is_complete
            ZOO_MISSING[kind] = str(e.msg)
            continue
        p = spawner.popen([str(exe), "sleep"])
        out[kind] = Started(kind, p, exe.name[:15], os.path.realpath(exe), 1, True)
    default = build_fixture("default")

    deleted = tmp / "deleted-prog"
    shutil.copy2(default, deleted)
    p = spawner.popen([str(deleted), "sleep"])
    out["deleted"] = Started("deleted", p, "deleted-prog", os.path.realpath(deleted), 0, True)

    link = tmp / LONG_NAME
    link.symlink_to(default)
    p = spawner.popen([str(link), "sleep"])
    out["symlink"] = Started("symlink", p, LONG_NAME, os.path.realpath(default), 1, True)

    if not shutil.which("unshare"):
        ZOO_MISSING["mntns"] = "unshare(1) is not installed (util-linux)"
    elif os.geteuid() != 0:
        ZOO_MISSING["mntns"] = f"{skips.NEEDS_ROOT}: unshare -m and mount need CAP_SYS_ADMIN"
    else:
        nsdir = tmp / "nsdir"  # empty on the host; inside the namespace a tmpfs holding the binary
        nsdir.mkdir()
        script = 'mount -t tmpfs tmpfs "$1" && cp "$2" "$1/prog-in-ns" && exec "$1/prog-in-ns" sleep'
        p = spawner.popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                           str(nsdir), str(default)], stderr=subprocess.PIPE)
        wait_for(lambda: proc_stat(p.pid)[0] == "prog-in-ns" or p.poll() is not None, what="unshare")
        if p.poll() is None:
            out["mntns"] = Started("mntns", p, "prog-in-ns", str(nsdir / "prog-in-ns"), 1, True)
        else:
            err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
            ZOO_MISSING["mntns"] = f"{skips.SANDBOX}: unshare -m as root failed: {err[-200:]}"

    p = spawner.popen(["sleep", "3600"])
    sleep = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
    out["sleep"] = Started("sleep", p, "sleep", sleep, 1, False)
    p = spawner.popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    out["python"] = Started("python", p, Path(sys.executable).name[:15],
                            os.path.realpath(sys.executable), 1, False)
    deleted.unlink()
    for s in out.values():
        assert s.popen.poll() is None, f"{s.kind} exited early"
    return out


@pytest.fixture(scope="module")
def oracle(zoo: dict[str, Started]) -> dict[str, dict | None]:
    """`go version -m -json /proc/<pid>/exe` for every Go process (None: the toolchain says not Go)."""
    return {k: go_version_m(f"/proc/{s.pid}/exe") for k, s in zoo.items() if s.go}


def test_zoo_is_complete(zoo: dict[str, Started]) -> None:
    """The other tests walk whatever the zoo holds; this one names every kind it lacks."""
    assert set(GO_KINDS) | {"mntns"} <= zoo.keys() | ZOO_MISSING.keys()
    if ZOO_MISSING:
        allowed = {k: r for k, r in ZOO_MISSING.items() if skips.allowed_in_ci(r)}
        if allowed.keys() == ZOO_MISSING.keys():  # only reasons CI accepts: keep CI's rule for them
            first = next(iter(allowed.values()))
            pytest.skip(first if len(allowed) == 1 else f"{first} (and {len(allowed) - 1} more kinds)")
        pytest.skip("the zoo lacks " + "; ".join(f"{k} ({r})" for k, r in sorted(ZOO_MISSING.items())))


def test_full_scan_lists_processes_as_the_test_sees_them(zoo: dict[str, Started]) -> None:
    found = {p.pid: p for p in processes()}
    for s in zoo.values():
        p = found.get(s.pid)
        assert p is not None, s.kind
        _, _, ppid = proc_stat(s.pid)
        assert p.ppid == ppid == os.getpid(), s.kind
        assert p.name == s.name, s.kind
        assert p.path == s.path, s.kind
        assert p.on_disk == s.on_disk, s.kind
        assert p.uid == os.getuid()  # started by this test, as its own user
        assert p.exe_identity is not None
        st = os.stat(f"/proc/{s.pid}/exe")
        assert p.exe_identity == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    # Thread ids never appear as processes: each Go program runs several threads.
    ours = {s.pid for s in zoo.values()}
    tids = {int(t) for pid in ours for t in os.listdir(f"/proc/{pid}/task")} - ours
    assert tids, "expected Go programs to run threads"
    assert not tids & found.keys()


def test_symlink_and_namespace_paths(zoo: dict[str, Started]) -> None:
    comm, _, _ = proc_stat(zoo["symlink"].pid)
    assert comm == LONG_NAME[:15]  # what the kernel kept; the row shows argv[0]'s full base name
    if "mntns" not in zoo:
        pytest.skip(ZOO_MISSING["mntns"])
    ns = zoo["mntns"]
    assert not os.path.exists(ns.path), "the binary must exist only inside the namespace"
    [p] = processes([ns.pid])
    assert p.path == ns.path and p.on_disk == 1


def test_executable_matches_go_toolchain(zoo: dict[str, Started], oracle: dict[str, dict | None]) -> None:
    detector = Detector()
    procs = {p.pid: p for p in processes([s.pid for s in zoo.values()])}
    for kind, s in zoo.items():
        result = executable(procs[s.pid], detector)
        if not s.go:
            assert isinstance(result, NotGoExecutable), (kind, result)  # coreutils sleep, python: ELF
            continue
        assert isinstance(result, BuildInfo), (kind, result)
        if kind == "gccgo":
            assert oracle[kind] is None  # the Go toolchain cannot read it; we still know it is Go
            assert (result.detection, result.go_version) == ("gccgo", "")
            continue
        want = oracle[kind]
        assert want is not None, kind
        assert result.go_version == want["GoVersion"], kind
        assert result.main is not None and result.main.path == want["Main"]["Path"], kind
        assert result.main.version == want["Main"]["Version"], kind


def test_running_go_keeps_only_go(zoo: dict[str, Started]) -> None:
    ours = {s.pid: s for s in zoo.values()}
    want = {pid for pid, s in ours.items() if s.go}
    got = {p.pid: bi for p, bi in running_go(Detector()) if p.pid in ours}
    assert got.keys() == want and all(isinstance(bi, BuildInfo) for bi in got.values())
    assert {p.pid for p, _ in running_go(Detector(), list(ours))} == want
    # executables() keeps every identified process, with the reason a non-Go one is not Go.
    every = {p.pid: r for p, r in executables(Detector(), list(ours))}
    assert every.keys() == ours.keys()
    assert {pid for pid, r in every.items() if isinstance(r, BuildInfo)} == want


def test_unexpected_errno_drops_one_process(zoo: dict[str, Started], monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """An errno the scan does not expect (EIO here, injected for one pid's status file) leaves that
    process out, once logged; the other processes are still listed."""
    from go_processes.procs import _linux

    victim, other = zoo["default"].pid, zoo["stripped" if "stripped" in zoo else "pie"].pid
    real = _linux._read_once

    def failing(path: str) -> bytes:
        if path == f"/proc/{victim}/status":
            raise OSError(errno.EIO, "Input/output error", path)
        return real(path)

    monkeypatch.setattr(_linux, "_read_once", failing)
    with caplog.at_level(logging.DEBUG, logger="go_processes"):
        for _ in range(2):
            assert [p.pid for p in processes([victim, other])] == [other]
            everyone = {p.pid for p in processes()}
            assert other in everyone and victim not in everyone
    lines = [r for r in caplog.records if str(victim) in r.getMessage()]
    assert len(lines) == 1 and "Input/output error" in lines[0].getMessage(), caplog.records


def test_unexpected_errno_in_agent_check_drops_the_agent(plain_go: tuple[subprocess.Popen, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from go_processes.procs import _linux

    p, cfg = plain_go
    with socket.create_server(("127.0.0.1", 0)) as listener:
        (cfg / str(p.pid)).write_text(str(listener.getsockname()[1]))
        proc = one(p.pid)
        assert gops_agent(proc) is not None  # a pidfile with a port: the agent check reads net/tcp
        real = _linux._read

        def failing(path: str | bytes, *args: Any, **kw: Any) -> bytes:
            if "/net/tcp" in str(path):
                raise OSError(errno.EIO, "Input/output error", path)
            return real(path, *args, **kw)

        monkeypatch.setattr(_linux, "_read", failing)
        assert gops_agent(proc) is None


def test_uid_is_the_real_uid(spawner: Spawner, agent_exe: str, agent_user: pwd.struct_passwd) -> None:
    """ruid = the agent user, euid = nobody, dumpable: /proc/<pid> is owned by the effective uid
    (the kernel's task_dump_owner), but uid is the real one, and the gops config dir is looked up
    in the real uid's home (the agent has no HOME and writes relative to that home)."""
    nobody = pwd.getpwnam("nobody").pw_uid
    gops_dir = Path(agent_user.pw_dir, ".config", "gops")
    gops_dir.mkdir(parents=True, exist_ok=True)
    for d in (gops_dir.parent, gops_dir):
        os.chown(d, agent_user.pw_uid, agent_user.pw_gid)
    p, port = start_agent(spawner, agent_exe, {"AGENT_RESUID": f"{agent_user.pw_uid},{nobody},0"},
                          cwd=agent_user.pw_dir)
    pidfile = gops_dir / str(p.pid)
    try:
        assert os.stat(f"/proc/{p.pid}").st_uid == nobody  # the case under test really is set up
        status = Path(f"/proc/{p.pid}/status").read_text()
        ruid, euid = [int(line.split()[i]) for line in status.splitlines() if line.startswith("Uid:")
                      for i in (1, 2)]
        assert (ruid, euid) == (agent_user.pw_uid, nobody)
        proc = one(p.pid)
        assert proc.uid == agent_user.pw_uid
        agent = gops_agent(proc)
        assert agent is not None and agent.listening and agent.port == port
        assert agent.pidfile == str(pidfile)
    finally:
        p.kill()
        p.wait()
        pidfile.unlink(missing_ok=True)


def test_pid_lookup_does_not_walk_proc(zoo: dict[str, Started], monkeypatch: pytest.MonkeyPatch) -> None:
    from go_processes.procs import _linux

    def no_walk() -> Iterator[int]:
        raise AssertionError("walked /proc for a pid lookup")

    monkeypatch.setattr(_linux, "_pids", no_walk)
    s = zoo["default"]
    assert [p.pid for p in processes([s.pid, s.pid])] == [s.pid]


def test_thread_id_is_not_a_process(zoo: dict[str, Started]) -> None:
    s = zoo["default"]
    tids = [int(t) for t in os.listdir(f"/proc/{s.pid}/task") if int(t) != s.pid]
    assert tids
    assert list(processes(tids)) == []
    assert list(executables(Detector(), tids)) == []


def test_zombie_and_gone_processes_are_absent(spawner: Spawner) -> None:
    z = spawner.popen([str(build_fixture("default"))])  # prints hello and exits; not reaped yet
    wait_for(lambda: proc_stat(z.pid)[1] == "Z", what="zombie")
    assert list(processes([z.pid])) == []
    assert z.pid not in {p.pid for p in processes()}
    z.wait()
    assert list(processes([z.pid])) == []
    assert list(processes([0, -1, 2**31, 2**22 + 12345])) == []


def test_kernel_threads_are_absent() -> None:
    kthreads = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                data = Path(f"/proc/{name}/stat").read_bytes()
                if int(data[data.rindex(b")") + 2 :].split()[6]) & 0x00200000:
                    kthreads.append(int(name))
    if not kthreads:
        skips.skip(skips.SANDBOX, "no kernel thread is visible in this pid namespace (a container)")
    assert list(processes(kthreads[:20])) == []
    assert not set(kthreads) & {p.pid for p in processes()}


def test_psutil_backend_on_linux(zoo: dict[str, Started]) -> None:
    """The non-Linux module, forced here: same answers for our processes."""
    from go_processes.procs import Reader, _psutil

    reader = Reader(_psutil)
    # psutil gives a path only, which does not reach into another mount namespace.
    ours = {s.pid: s for s in zoo.values() if s.kind != "mntns"}
    found = {p.pid: p for p in reader.processes(list(ours))}
    assert found.keys() == ours.keys()
    detector = Detector()
    for pid, s in ours.items():
        p = found[pid]
        assert p.ppid == os.getpid() and p.path == s.path and p.on_disk == s.on_disk, s.kind
        result = reader.executable(p, detector)
        if s.kind == "deleted":
            assert result is None  # psutil can only open the (gone) path
        else:
            assert isinstance(result, BuildInfo) == s.go, s.kind
    tid = next(int(t) for t in os.listdir(f"/proc/{zoo['default'].pid}/task") if int(t) != zoo["default"].pid)
    assert list(reader.processes([tid])) == []
    assert any(p.pid in ours for p in reader.processes())


# --- gops agent ----------------------------------------------------------------------------------


_USER_DIRS: list[str] = []  # made by user_dir(), removed when agent_user is torn down


@pytest.fixture(scope="module")
def agent_user() -> Iterator[pwd.struct_passwd]:
    """A system user (created once) whose passwd home is a directory it owns."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "creating a user and running an agent as that user")
    try:
        pw = pwd.getpwnam(AGENT_USER)
    except KeyError:
        if not shutil.which("useradd"):
            pytest.skip("useradd is not installed (passwd): cannot run an agent as another user")
        home = f"/var/tmp/{AGENT_USER}-home"
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", home,
                        "--shell", "/usr/sbin/nologin", AGENT_USER], check=True, capture_output=True)
        pw = pwd.getpwnam(AGENT_USER)
    os.makedirs(pw.pw_dir, exist_ok=True)
    os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    yield pw
    while _USER_DIRS:
        shutil.rmtree(_USER_DIRS.pop(), ignore_errors=True)


@pytest.fixture(scope="module")
def agent_exe() -> Iterator[str]:
    """The agent program where another user can run it (the fixture cache may be private)."""
    d = tempfile.mkdtemp(dir="/var/tmp", prefix="gops-agent-bin-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, "agent")
    shutil.copy2(build(AGENT_BUILD), dst)
    os.chmod(dst, 0o755)
    yield dst
    shutil.rmtree(d, ignore_errors=True)


def user_dir(pw: pwd.struct_passwd) -> str:
    d = tempfile.mkdtemp(dir="/var/tmp", prefix="gops-test-")
    os.chown(d, pw.pw_uid, pw.pw_gid)
    _USER_DIRS.append(d)
    return d


def start_agent(spawner: Spawner, exe: str, env: dict[str, str], pw: pwd.struct_passwd | None = None,
                cwd: str | None = None) -> tuple[subprocess.Popen, int]:
    """Start the agent and read the port it prints (the independent oracle for agent_port)."""
    kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []} if pw else {}
    p = spawner.popen([exe], env={"PATH": "/usr/bin:/bin", **env}, stdout=subprocess.PIPE, cwd=cwd, **kw)
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], 20)
    assert ready, "agent did not start"
    line = p.stdout.readline()
    assert line.strip().isdigit(), f"agent failed: {line!r}"
    return p, int(line)


def one(pid: int) -> Process:
    [p] = processes([pid])
    return p


def test_agent_of_another_user_via_home(spawner: Spawner, agent_exe: str,
                                        agent_user: pwd.struct_passwd) -> None:
    home = user_dir(agent_user)
    p, port = start_agent(spawner, agent_exe, {"HOME": home}, agent_user)
    pidfile = f"{home}/.config/gops/{p.pid}"
    assert Path(pidfile).read_text() == str(port)  # written by the agent itself, as its user
    assert os.stat(pidfile).st_uid == agent_user.pw_uid
    proc = one(p.pid)
    assert proc.uid == agent_user.pw_uid
    agent = gops_agent(proc)
    assert agent is not None
    assert (agent.pidfile, agent.port, agent.address, agent.listening) == (pidfile, port, "127.0.0.1", True)


def test_agent_home_from_passwd(spawner: Spawner, agent_exe: str, agent_user: pwd.struct_passwd) -> None:
    # No HOME, XDG_CONFIG_HOME or GOPS_CONFIG_DIR: the user's passwd home. (The agent program then
    # writes relative to its cwd, which we set to that home, so both agree on the file.)
    p, port = start_agent(spawner, agent_exe, {}, agent_user, cwd=agent_user.pw_dir)
    agent = gops_agent(one(p.pid))
    assert agent is not None and agent.listening and agent.port == port
    assert agent.pidfile == f"{agent_user.pw_dir}/.config/gops/{p.pid}"


def test_agent_on_all_addresses(spawner: Spawner, agent_exe: str, agent_user: pwd.struct_passwd) -> None:
    d = user_dir(agent_user)
    p, port = start_agent(spawner, agent_exe, {"XDG_CONFIG_HOME": d, "HOME": "/nonexistent",
                                               "AGENT_ADDR": "0.0.0.0:0"}, agent_user)
    agent = gops_agent(one(p.pid))
    assert agent is not None and agent.listening and agent.port == port
    assert agent.pidfile == f"{d}/gops/{p.pid}"
    # Go listens on a dual-stack [::] socket for "0.0.0.0" when the host has IPv6.
    assert ipaddress.ip_address(agent.address).is_unspecified, agent.address


def test_agent_gops_config_dir_wins(spawner: Spawner, agent_exe: str, tmp_path: Path) -> None:
    env = {"GOPS_CONFIG_DIR": str(tmp_path / "cfg"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "HOME": str(tmp_path)}
    p, port = start_agent(spawner, agent_exe, env)
    agent = gops_agent(one(p.pid))
    assert agent is not None and agent.listening and agent.port == port
    assert agent.pidfile == str(tmp_path / "cfg" / str(p.pid))


@pytest.fixture
def plain_go(spawner: Spawner, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A Go program that never listens, with its GOPS_CONFIG_DIR under the test's control."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    p = spawner.popen([str(build_fixture("default")), "sleep"], env={"GOPS_CONFIG_DIR": str(cfg)})
    yield p, cfg
    p.kill()
    p.wait()


def test_stale_pidfile_is_not_an_agent(plain_go: tuple[subprocess.Popen, Path]) -> None:
    p, cfg = plain_go
    with socket.create_server(("127.0.0.1", 0)) as listener:  # a LISTEN socket, but ours, not the target's
        port = listener.getsockname()[1]
        (cfg / str(p.pid)).write_text(str(port))
        agent = gops_agent(one(p.pid))
    assert agent is not None
    assert (agent.port, agent.listening, agent.address) == (port, False, "")


@pytest.mark.parametrize("content", [b"", b"abc", b"0", b"65536", b"-1", b"1" * 40])
def test_pidfile_without_a_port(plain_go: tuple[subprocess.Popen, Path], content: bytes) -> None:
    p, cfg = plain_go
    (cfg / str(p.pid)).write_bytes(content)
    assert gops_agent(one(p.pid)) is None


def _bounded(fn: Callable[[], object], seconds: float = 60.0) -> object:
    """fn's answer, failing if it has none within ``seconds``: a watchdog for code that would block
    forever (open() of a FIFO without a writer never returns), so the bound is the behaviour under
    test; a minute is far above any answer on a loaded machine and far below a hang."""
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "hung"
    return box[0]


def test_fifo_pidfile_does_not_hang(plain_go: tuple[subprocess.Popen, Path]) -> None:
    p, cfg = plain_go
    os.mkfifo(cfg / str(p.pid))
    proc = one(p.pid)
    assert _bounded(lambda: gops_agent(proc)) is None


def _nobody() -> int:
    """A uid that is neither root nor the agent's: links it owns are another user's."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "to give a symlink to another user")
    return pwd.getpwnam("nobody").pw_uid


def test_symlinked_pidfile_is_refused(spawner: Spawner, agent_exe: str, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    p, port = start_agent(spawner, agent_exe, {"GOPS_CONFIG_DIR": str(cfg)})
    proc = one(p.pid)
    assert gops_agent(proc) is not None  # a real, listening agent ...
    real = tmp_path / "real-port-file"
    os.replace(cfg / str(p.pid), real)
    (cfg / str(p.pid)).symlink_to(real)
    os.lchown(cfg / str(p.pid), _nobody(), -1)  # a link neither root nor the agent's user owns
    assert real.read_text() == str(port)
    assert _bounded(lambda: gops_agent(proc)) is None  # ... whose pidfile is now a symlink


def test_symlinked_config_dir_is_refused(spawner: Spawner, agent_exe: str, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.lchown(tmp_path / "link", _nobody(), -1)  # a link neither root nor the agent's user owns
    p, _ = start_agent(spawner, agent_exe, {"GOPS_CONFIG_DIR": str(tmp_path / "link" / "gops")})
    assert (tmp_path / "real" / "gops" / str(p.pid)).is_file()
    assert gops_agent(one(p.pid)) is None


def test_no_pidfile_no_agent(zoo: dict[str, Started]) -> None:
    for s in zoo.values():
        [proc] = processes([s.pid])  # every zoo process runs until teardown
        assert gops_agent(proc) is None, s.kind


def test_in_root_resolver_searches_directories_it_may_not_list(tmp_path: Path) -> None:
    """Directories on the way are searched, not read (O_PATH): a user who may pass through a
    0711 directory but not list it still reaches the file below it, as the kernel's own lookup
    would, and a directory at the end is opened for listing."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "to run the resolver as another user")
    base = tmp_path / "base"
    (base / "searchonly" / "inner").mkdir(parents=True)
    (base / "searchonly" / "inner" / "file").write_text("x")
    os.chmod(tmp_path, 0o755)
    os.chmod(base, 0o755)
    os.chmod(base / "searchonly", 0o711)
    os.chmod(base / "searchonly" / "inner", 0o755)
    from go_processes.procs._inroot import open_in_root

    nobody = pwd.getpwnam("nobody").pw_uid
    root = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child only
        try:
            os.setgroups([])
            os.setgid(nobody)
            os.setuid(nobody)
            f = open_in_root(root, ["searchonly", "inner", "file"], directory=False)
            d = open_in_root(root, ["searchonly", "inner"])
            out = f"{stat.S_ISREG(os.fstat(f).st_mode)} {sorted(os.listdir(d))}"
        except BaseException as e:
            out = repr(e)
        os.write(wfd, out.encode())
        os._exit(0)
    os.close(wfd)
    try:
        with os.fdopen(rfd, "rb") as r:
            out = r.read().decode()
    finally:
        os.waitpid(child, 0)
        os.close(root)
    assert out == "True ['file']"
