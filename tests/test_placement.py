"""Container, pod and namespace attribution (go_processes' container_id, container_runtime, pod_uid,
cgroup_path, pid_namespace, mnt_namespace) against real cgroups and namespaces.

As root, this test creates cgroups named exactly as each runtime names them (docker, containerd's CRI
plugin under kubepods slices, cri-o, podman, lxc, systemd-nspawn), in the cgroup v2 hierarchy and in
v1 hierarchies, moves real Go processes into them and checks the columns against the ids it made up
itself. Every cgroup it creates is removed at teardown, even when a test fails. Namespace inodes are
checked against util-linux's lsns. Layouts no test can create meaningfully (nested runtimes, libvirt
guests, malformed files) are parsing tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures import build_fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux cgroups and namespaces")

from go_processes.procs import _cgroup, placement  # noqa: E402
from go_processes.tables import QueryContext  # noqa: E402
from go_processes.tables.go_processes import TABLE  # noqa: E402

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _mounts() -> dict[str, Path]:
    """Writable cgroup hierarchies: "v2" and the v1 ones by their option name (pids, name=systemd)."""
    out: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or not fields[1].startswith(str(CGROUP_ROOT)):
            continue
        where = Path(fields[1])
        if fields[2] == "cgroup2":
            out["v2"] = where
        elif fields[2] == "cgroup":
            for opt in fields[3].split(","):
                if opt in ("pids", "name=systemd"):
                    out[opt] = where
    return {k: v for k, v in out.items() if os.access(v, os.W_OK)}


MOUNTS = _mounts()


def need(kind: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    if kind not in MOUNTS:
        pytest.skip(f"no writable cgroup hierarchy {kind!r} mounted under /sys/fs/cgroup")
    return MOUNTS[kind]


class Cgroups:
    """Creates cgroups, moves processes into them, and removes every one it made."""

    def __init__(self) -> None:
        self.made: list[Path] = []
        self.procs: list[subprocess.Popen] = []

    def make(self, hierarchy: str, rel: str) -> Path:
        base = need(hierarchy)
        path = base
        for part in rel.strip("/").split("/"):
            path = path / part
            if not path.exists():
                path.mkdir()
                self.made.append(path)
        return path

    def go_process(self) -> subprocess.Popen:
        exe = build_fixture("default")
        p = subprocess.Popen([str(exe), "sleep"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def move(self, pid: int, cgroup: Path) -> None:
        (cgroup / "cgroup.procs").write_text(f"{pid}\n")

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.kill()
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=10)
        left = []
        for path in sorted(self.made, key=lambda p: len(p.parts), reverse=True):
            for _ in range(50):  # an exited task leaves the cgroup asynchronously
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                left.append(str(path))
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    c = Cgroups()
    try:
        yield c
    finally:
        c.close()


def hex_id() -> str:
    return secrets.token_hex(32)  # 64 hex digits, as docker, containerd, cri-o and podman ids


def first_line_path(pid: int) -> str:
    """osquery's processes.cgroup_path: the first line of /proc/<pid>/cgroup after its second colon."""
    first = Path(f"/proc/{pid}/cgroup").read_text().split("\n", 1)[0]
    return first.split(":", 2)[2]


def row_of(pid: int, cols: list[str] | None = None) -> dict:
    ctx = QueryContext.parse({"constraints": [{"name": "pid", "list": [{"op": 2, "expr": str(pid)}]}],
                              **({"colsUsed": cols} if cols else {})})
    rows = list(TABLE.generate(ctx))
    assert len(rows) == 1, f"pid {pid}: {len(rows)} rows"
    return dict(rows[0])


def check(pid: int, cid: str, runtime: str, pod: str = "") -> dict:
    row = row_of(pid)
    assert (row["container_id"], row["container_runtime"], row["pod_uid"]) == (cid, runtime, pod)
    assert row["cgroup_path"] == first_line_path(pid)
    return row


# --- real cgroups, one per runtime layout -----------------------------------------------------


def test_docker_systemd_driver_v2(cgroups: Cgroups) -> None:
    cid = hex_id()
    cg = cgroups.make("v2", f"system.slice/docker-{cid}.scope")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "docker")


def test_docker_cgroupfs_driver_v1_only(cgroups: Cgroups) -> None:
    """docker's cgroupfs driver on a v1 host: the v2 line says "/", the v1 line names the container."""
    cid = hex_id()
    cg = cgroups.make("pids", f"docker/{cid}")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "docker")


def test_containerd_kubepods_systemd_slices(cgroups: Cgroups) -> None:
    cid, pod = hex_id(), str(uuid.uuid4())
    esc = pod.replace("-", "_")  # kubelet's escapeSystemdCgroupName
    cg = cgroups.make("v2", "kubepods.slice/kubepods-burstable.slice/"
                            f"kubepods-burstable-pod{esc}.slice/cri-containerd-{cid}.scope")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "containerd", pod)


def test_crio_in_the_named_systemd_v1_hierarchy(cgroups: Cgroups) -> None:
    """cri-o under a besteffort pod, in the name=systemd v1 hierarchy; on this layout the systemd
    line comes first in /proc/<pid>/cgroup, so cgroup_path is exactly the path made here."""
    cid, pod = hex_id(), str(uuid.uuid4())
    rel = (f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod.replace('-', '_')}.slice/"
           f"crio-{cid}.scope")
    cg = cgroups.make("name=systemd", rel)
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    row = check(p.pid, cid, "cri-o", pod)
    if Path(f"/proc/{p.pid}/cgroup").read_text().split("\n", 1)[0].split(":")[1] == "name=systemd":
        assert row["cgroup_path"] == "/" + rel


def test_crio_cgroupfs_guaranteed_pod_v1(cgroups: Cgroups) -> None:
    cid, pod = hex_id(), str(uuid.uuid4())
    cg = cgroups.make("pids", f"kubepods/pod{pod}/crio-{cid}")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "cri-o", pod)


def test_podman_v2(cgroups: Cgroups) -> None:
    cid = hex_id()
    cg = cgroups.make("v2", f"machine.slice/libpod-{cid}.scope")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "podman")


def test_lxc_payload_v2(cgroups: Cgroups) -> None:
    cg = cgroups.make("v2", "lxc.payload.web01")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, "web01", "lxc")


def test_nspawn_machine_name_unescaped(cgroups: Cgroups) -> None:
    cg = cgroups.make("v2", "machine.slice/machine-build\\x2dbox.scope")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, "build-box", "systemd-nspawn")


def test_hybrid_host_prefers_the_v2_line(cgroups: Cgroups) -> None:
    v2_id, v1_id = hex_id(), hex_id()
    a = cgroups.make("v2", f"system.slice/docker-{v2_id}.scope")
    b = cgroups.make("pids", f"docker/{v1_id}")
    p = cgroups.go_process()
    cgroups.move(p.pid, a)
    cgroups.move(p.pid, b)
    check(p.pid, v2_id, "docker")


@pytest.mark.parametrize("rel", [
    "system.slice/crio-conmon-{id}.scope",  # cri-o's conmon: beside the container, not in it
    "machine.slice/libpod-conmon-{id}.scope",
    "system.slice/docker-{short}.scope",  # a short id is never reported as a container id
    "system.slice/docker.service",  # the daemon itself
    "user.slice/user-0.slice/session-1.scope",
    "lxc.monitor.web01",  # LXC's monitor process is not the container
    "kubepods.slice/kubepods-burstable.slice",  # a pod's parent, no container
])
def test_unknown_layouts_give_empty_columns(cgroups: Cgroups, rel: str) -> None:
    cid = hex_id()
    cg = cgroups.make("v2", rel.format(id=cid, short=cid[:12]))
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, "", "")


def test_process_leaves_a_container(cgroups: Cgroups) -> None:
    """Membership is read on every query, never cached per process: a moved process moves."""
    cid = hex_id()
    cg = cgroups.make("v2", f"system.slice/docker-{cid}.scope")
    home = cgroups.make("v2", "k8stest-host.slice")
    p = cgroups.go_process()
    cgroups.move(p.pid, cg)
    check(p.pid, cid, "docker")
    cgroups.move(p.pid, home)
    check(p.pid, "", "")


def test_cgroup_columns_are_read_only_when_used(cgroups: Cgroups, monkeypatch: pytest.MonkeyPatch) -> None:
    p = cgroups.go_process()
    calls: list[str] = []
    real_cgroups, real_ns = _cgroup.cgroups, _cgroup.namespace

    def spy_cgroups(pid: int) -> _cgroup.Cgroups:
        calls.append("cgroup")
        return real_cgroups(pid)

    def spy_namespace(pid: int, kind: str) -> str:
        calls.append(kind)
        return real_ns(pid, kind)

    monkeypatch.setattr(_cgroup, "cgroups", spy_cgroups)
    monkeypatch.setattr(_cgroup, "namespace", spy_namespace)
    row = row_of(p.pid, ["pid", "version"])
    assert calls == [] and "container_id" not in row
    row_of(p.pid, ["pid", "container_id"])
    assert calls == ["cgroup"]
    calls.clear()
    row_of(p.pid, ["pid", "mnt_namespace"])
    assert calls == ["pid", "mnt"]


# --- namespaces ---------------------------------------------------------------------------------


def lsns(pid: int, kind: str) -> str:
    out = subprocess.run(["lsns", "-n", "-o", "NS", "-t", kind, "-p", str(pid)], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        pytest.skip(f"lsns failed: {out.stderr.strip()}")
    return out.stdout.strip()


def test_namespaces_match_lsns(cgroups: Cgroups) -> None:
    if not shutil.which("unshare") or not shutil.which("lsns"):
        pytest.skip("util-linux unshare and lsns are needed")
    exe = build_fixture("default")
    u = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--propagation", "private",
                          str(exe), "sleep"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    cgroups.procs.append(u)
    child = 0
    deadline = time.monotonic() + 10
    while not child and time.monotonic() < deadline and u.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            kids = Path(f"/proc/{u.pid}/task/{u.pid}/children").read_text().split()
            if kids and os.path.samefile(f"/proc/{kids[0]}/exe", exe):
                child = int(kids[0])
        time.sleep(0.01)
    if not child:
        pytest.skip(f"unshare --pid --mount does not work here: {u.stderr.read() if u.stderr else ''}")
    try:
        row = row_of(child)
        mine = row_of(cgroups.go_process().pid)
        assert row["pid_namespace"] == lsns(child, "pid") != mine["pid_namespace"] == lsns(os.getpid(), "pid")
        assert row["mnt_namespace"] == lsns(child, "mnt") != mine["mnt_namespace"] == lsns(os.getpid(), "mnt")
    finally:
        os.kill(child, 9)


def test_unreadable_namespace_is_empty_not_an_error() -> None:
    gone = placement(2**22 + 12345, cgroup=True, namespaces=True)  # above pid_max: never a process
    assert gone.pid_namespace == ""
    assert gone.cgroup_path == ""


# --- parsing: layouts no real cgroup here makes meaningful ---------------------------------------


ID = "0123456789abcdef" * 4
POD = "9b2a5c4e-1f3d-4e6a-8b7c-0d1e2f3a4b5c"


@pytest.mark.parametrize("path,expected", [
    # containerd under kubepods with the cgroupfs driver: the id is known, the runtime is not
    (f"/kubepods/burstable/pod{POD}/{ID}", (ID, "", POD)),
    (f"/kubepods/besteffort/pod{POD}/{ID}", (ID, "", POD)),
    # cri-dockerd with the systemd driver: docker scope inside a guaranteed pod's slice
    (f"/kubepods.slice/kubepods-pod{POD.replace('-', '_')}.slice/docker-{ID}.scope", (ID, "docker", POD)),
    # a static pod's uid is 32 hex digits (the manifest's hash)
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{'f' * 32}.slice/"
     f"cri-containerd-{ID}.scope", (ID, "containerd", "f" * 32)),
    # rootless podman in the user's systemd instance
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope", (ID, "podman", "")),
    (f"/libpod_parent/libpod-{ID}", (ID, "podman", "")),
    # a kind node: the host's docker container wins, the pod inside it is not this container's pod
    (f"/docker/{ID}/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
     f"kubelet-kubepods-besteffort-pod{POD.replace('-', '_')}.slice/cri-containerd-{'a' * 64}.scope",
     (ID, "docker", "")),
    # an id-shaped cgroup outside a pod and outside /docker is not a container
    (f"/{ID}", None),
    (f"/system.slice/{ID}", None),
    # libvirt guests register with machined too: not nspawn
    ("/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope", None),
    ("/machine.slice/machine-lxc\\x2d4242\\x2dct.scope", None),
    # upper-case hex and ids of the wrong length are not ids
    (f"/system.slice/docker-{ID.upper()}.scope", None),
    (f"/system.slice/docker-{ID}0.scope", None),
    ("/kubepods/burstable/podnot-a-uid/" + ID, None),
    ("", None),
    ("/", None),
])
def test_layouts_by_parsing(path: str, expected: tuple[str, str, str] | None) -> None:
    got = _cgroup.container_of(path)
    assert (None if got is None else (got.id, got.runtime, got.pod_uid)) == expected


def test_file_parsing_rules() -> None:
    v1 = (f"12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/system.slice/docker.service\n"
          "0::/\n").encode()
    parsed = _cgroup.parse(v1)
    assert parsed.path == f"/docker/{ID}"  # the first line, as osquery
    assert parsed.container is not None and (parsed.container.id, parsed.container.runtime) == (ID, "docker")
    # a colon inside a cgroup name stays in the path
    assert _cgroup.parse(b"0::/a:b\n").path == "/a:b"
    for junk in (b"", b"\n", b"garbage", b"\xff\xfe:\x00", b"0:/only-one-colon\n"):
        assert _cgroup.parse(junk).container is None
    assert _cgroup.parse(b"0:/x\n").path == ""


def test_huge_cgroup_file_is_bounded() -> None:
    """The read is bounded; a pathological file (deep nesting) parses in bounded time."""
    deep = ("0::" + "/a" * 200_000 + f"/docker-{ID}.scope\n").encode()
    # A watchdog, not a speed goal: linear work on 400 KB ends far inside 60 CPU seconds; a
    # quadratic or looping parse would not.
    cpu = time.thread_time()
    parsed = _cgroup.parse(deep)
    spent = time.thread_time() - cpu
    assert spent < 60, f"{spent:.1f} CPU seconds to parse one cgroup file"
    assert parsed.container is not None and parsed.container.id == ID


def test_status_and_exe_link_are_read_only_when_used(cgroups: Cgroups,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """uid costs a read of /proc/<pid>/status, path and on_disk a readlink: only when used. The
    agent columns do not need the uid of a process whose environment names HOME (this one's does;
    test_agent_without_home_when_uid_is_not_asked covers one without)."""
    from go_processes.procs import _linux

    p = cgroups.go_process()
    # Right after the exec, /proc/<pid>/environ can still read empty for a moment: wait for it.
    deadline = time.monotonic() + 10
    while not (environ := Path(f"/proc/{p.pid}/environ").read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"\0HOME=" in b"\0" + environ  # the case under test
    calls: list[str] = []
    real_uid, real_path = _linux._real_uid, _linux._path

    def spy_uid(base: str) -> int:
        calls.append("uid")
        return real_uid(base)

    def spy_path(pid: int, st: os.stat_result) -> tuple[str, int]:
        calls.append("path")
        return real_path(pid, st)

    monkeypatch.setattr(_linux, "_real_uid", spy_uid)
    monkeypatch.setattr(_linux, "_path", spy_path)
    expected = {"uid": os.stat(f"/proc/{p.pid}").st_uid, "path": os.path.realpath(build_fixture("default"))}
    for cols, read in ((["pid", "version", "container_id"], []), (["pid", "uid"], ["uid"]),
                       (["pid", "agent"], []), (["pid", "on_disk"], ["path"]),
                       (["pid", "path", "uid"], ["path", "uid"])):
        calls.clear()
        row = row_of(p.pid, cols)
        assert calls == read, cols
        for col in ("uid", "path"):
            if col in cols:
                assert row[col] == expected[col]
