"""Linux: where a process runs, read from /proc/<pid>/cgroup and /proc/<pid>/ns/*, never by asking
a container runtime.

A container runtime names the cgroup it puts a container in after the container; this module reads
that name back. It knows only the layouts the runtimes' own source builds (cited below) and gives
empty values for any other path, never a guess:

- runc's systemd driver turns the OCI ``cgroupsPath`` "slice:prefix:name" into the unit
  ``<prefix>-<name>.scope`` (runc libcontainer/cgroups/systemd/common.go ``getUnitName``), so every
  runtime that drives runc/crun through systemd shows up as ``<prefix>-<id>.scope``:
  docker ``docker-<id>.scope`` (moby cmd/dockerd/daemon_systemd_unix.go ``newCgroupParent``:
  parent "system.slice", prefix "docker"), containerd's CRI plugin ``cri-containerd-<id>.scope``
  (containerd internal/cri/server/podsandbox helpers ``getCgroupsPath``: ``base:cri-containerd:id``
  when the parent is a ``.slice``), cri-o ``crio-<id>.scope`` (cri-o internal/config/cgmgr/systemd
  ``ContainerCgroupPath``: ``parent:crio:id``), podman ``libpod-<id>.scope`` (podman's
  libpod: ``parent:libpod:id``, in machine.slice or the user's slice).
- With the cgroupfs driver the path is the parent joined with the id: docker ``/docker/<id>``
  (moby: parent "docker"), podman ``/libpod_parent/libpod-<id>``, cri-o ``<pod parent>/crio-<id>``
  (cri-o cgmgr/cgroupfs ``ContainerCgroupPath``), containerd ``<pod parent>/<id>`` (``getCgroupsPath``:
  ``filepath.Join(parent, id)``). The last one names no runtime (cri-dockerd builds the same path),
  so its runtime is empty while its id is known.
- Kubernetes pods (kubelet pkg/kubelet/cm/cgroup_manager_linux.go): cgroupfs
  ``/kubepods[/burstable|/besteffort]/pod<uid>``; systemd ``kubepods.slice/kubepods-burstable.slice/
  kubepods-burstable-pod<uid>.slice`` where ``escapeSystemdCgroupName`` turned the uid's "-" into
  "_" (systemd uses "-" for slice nesting); we turn them back.
- LXC (>= 4.0) runs the payload in ``lxc.payload.<name>`` (lxc src/lxc/cgroups/cgroup.h
  ``DEFAULT_PAYLOAD_CGROUP_PREFIX``); the monitor's ``lxc.monitor.<name>`` is not the container.
  When the cgroup already exists LXC retries with a "-<n>" suffix (``CGROUP_CREATE_RETRY``), which
  the name then carries.
- systemd-nspawn registers with systemd-machined, whose scope is ``machine-<name>.scope`` with the
  name unit-escaped (``\\x2d`` for "-"; systemd src/machine/machine.c). libvirt registers its
  guests there too, as ``qemu-<n>-<name>`` / ``lxc-<n>-<name>``: those are not nspawn and stay empty.

Conmon (``crio-conmon-<id>.scope``, ``libpod-conmon-<id>.scope``) and the runtimes' own daemons are
not inside a container and get empty values. The outermost container on the path wins (a container
runtime inside a container, e.g. a kind node, shows as the host's container); ``pod_uid`` is given
only when that container sits inside the pod's cgroup.

Trust: the cgroup name is whatever the owner of that cgroup subtree chose. Root-owned runtimes
name their own subtrees, but a user with a delegated subtree (rootless podman, user@.service) can
name a cgroup like any runtime's; the columns say what the path claims, nothing more.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from ..common import Cache, expected, once

log = logging.getLogger(__name__)

_CGROUP_MAX = 64 * 1024  # 13 v1 hierarchies plus v2, each path at most PATH_MAX
_MEMO_MAX = 4096

_HEX64 = re.compile(r"[0-9a-f]{64}")
# A pod uid: a UUID (API-server pods) or 32 hex digits (static pods: kubelet hashes the manifest).
_POD_UID = re.compile(r"[0-9a-f]{8}([-_][0-9a-f]{4}){3}[-_][0-9a-f]{12}|[0-9a-f]{32}")
_KUBEPODS_POD = re.compile(r"kubepods(?:-burstable|-besteffort)?-pod(.+)\.slice")
_UNIT_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_LIBVIRT_MACHINE = re.compile(r"(?:qemu|lxc)-\d+-")

# <prefix>-<64 hex>.scope, as runc's systemd driver names the unit.
_SCOPE_PREFIXES = (
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("crio-", "cri-o"),
    ("libpod-", "podman"),
)


@dataclass(frozen=True, slots=True)
class Container:
    """What a cgroup path says about the container around a process."""

    id: str  # the runtime's full id (64 hex digits), or the lxc / machined name
    runtime: str  # docker, containerd, cri-o, podman, lxc, systemd-nspawn; "" when the path names none
    pod_uid: str  # the Kubernetes pod's uid with dashes; "" outside a pod


def container_of(path: str) -> Container | None:
    """The container a cgroup path (one line of /proc/<pid>/cgroup, after the second colon) names,
    or None when it names none in a layout listed in this module's docstring."""
    pod = ""
    in_kubepods = False
    parent = ""
    for name in path.split("/"):
        if not name:
            continue
        found = _container_component(name, parent, in_kubepods and bool(pod))
        if found is not None:
            cid, runtime = found
            return Container(cid, runtime, pod)
        if name.startswith("kubepods"):
            in_kubepods = True
            m = _KUBEPODS_POD.fullmatch(name)
            if m and _POD_UID.fullmatch(m.group(1)):
                pod = m.group(1).replace("_", "-")
        elif in_kubepods and name.startswith("pod") and _POD_UID.fullmatch(name[3:]):
            pod = name[3:]  # cgroupfs: the uid as the API server spells it
        parent = name
    return None


def _container_component(name: str, parent: str, in_pod: bool) -> tuple[str, str] | None:
    if name.endswith(".scope"):
        unit = name[:-6]
        for prefix, runtime in _SCOPE_PREFIXES:
            if unit.startswith(prefix) and _HEX64.fullmatch(unit, len(prefix)):
                return unit[len(prefix):], runtime
        if unit.startswith("machine-") and len(unit) > 8:
            machine = _UNIT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), unit[8:])
            if not _LIBVIRT_MACHINE.match(machine):
                return machine, "systemd-nspawn"
        return None
    if name.startswith("lxc.payload.") and len(name) > 12:
        return name[12:], "lxc"
    if parent == "docker" and _HEX64.fullmatch(name):
        return name, "docker"
    if parent == "libpod_parent" and name.startswith("libpod-") and _HEX64.fullmatch(name, 7):
        return name[7:], "podman"
    if in_pod:
        if name.startswith("crio-") and _HEX64.fullmatch(name, 5):
            return name[5:], "cri-o"
        if _HEX64.fullmatch(name):
            return name, ""  # containerd's CRI or cri-dockerd: the path does not say which
    return None


@dataclass(frozen=True, slots=True)
class Cgroups:
    """The parsed /proc/<pid>/cgroup file."""

    path: str  # as osquery's processes.cgroup_path: the path on the file's first line
    container: Container | None


_EMPTY = Cgroups("", None)
_memo: Cache[bytes, Cgroups] = Cache(_MEMO_MAX)


def parse(data: bytes) -> Cgroups:
    """Parse /proc/<pid>/cgroup content ("hierarchy-ID:controllers:path" lines, v1, v2 or both).

    The container comes from the v2 line ("0::") when it names one, then the name=systemd line,
    then the other v1 lines in file order: on a hybrid host a runtime may place a process in v2
    only, or (with the cgroupfs driver) in the v1 controllers only. Memoised by content: the
    processes of one container share the file byte for byte."""
    cached = _memo.get(data)
    if cached is not None:
        return cached
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    first = ""
    paths: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        hier, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2:
            continue
        if not paths:
            first = path  # osquery's parseProcCGroup: text after the first line's second colon
        rank = 0 if hier == "0" and not controllers else 1 if controllers == "name=systemd" else 2
        paths.append((rank * 1_000_000 + i, path))
    found = None
    for _, path in sorted(paths):
        found = container_of(path)
        if found is not None:
            break
    out = Cgroups(first, found) if paths else _EMPTY
    _memo.put(data, out)
    return out


def cgroups(pid: int) -> Cgroups:
    """The parsed cgroup file of ``pid``; empty when it cannot be read (the process exited, or no
    cgroup support)."""
    try:
        fd = os.open(f"/proc/{pid}/cgroup", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, _CGROUP_MAX)  # a seq_file: one read returns it whole up to the bound
        finally:
            os.close(fd)
    except OSError as e:
        if not expected(e):
            once(log, ("cgroup", pid, e.errno), "pid %d: no cgroup columns: %s", pid, e)
        return _EMPTY
    return parse(data)


def namespace(pid: int, kind: str) -> str:
    """The inode of ``pid``'s ``kind`` ("pid", "mnt") namespace as decimal text, as osquery's
    process_namespaces spells it; "" when it cannot be read. From the link's text ("pid:[N]",
    nsfs's ns_get_name): a readlink formats a number, a stat would instantiate the nsfs dentry."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/{kind}")
    except (OSError, ValueError):
        return ""
    if not link.endswith("]"):
        return ""
    inode = link[link.find("[") + 1 : -1]
    return inode if inode.isdigit() and inode.isascii() else ""


# (pid, start time): one process instance. setns(2) and unshare(2) with CLONE_NEWPID change only
# the namespace of the caller's future children (pid_for_children), never its own.
_pid_namespaces: Cache[tuple[int, int], str] = Cache(_MEMO_MAX)


def pid_namespace(pid: int, start_time: int | None = None) -> str:
    """:func:`namespace` for "pid", read once per process instance when ``start_time`` is given."""
    if start_time is None:
        return namespace(pid, "pid")
    key = (pid, start_time)
    cached = _pid_namespaces.get(key)
    if cached is not None:
        return cached
    found = namespace(pid, "pid")
    if found:
        _pid_namespaces.put(key, found)
    return found
