"""What the process layer answers with: plain values, shared by the reader and every platform."""

from __future__ import annotations

from dataclasses import dataclass

from ..buildinfo import Identity


@dataclass(frozen=True, slots=True)
class Process:
    """One live, non-zombie, user-space process (a thread group leader, never a thread)."""

    pid: int
    ppid: int
    name: str  # as gops shows it: comm, or argv[0]'s base name when comm is truncated
    path: str  # the executable's path as the process sees it, without " (deleted)"; "" unknown
    on_disk: int  # 1 the executable is present on disk, 0 deleted, -1 unknown (as osquery's processes)
    uid: int  # real uid; -1 unknown
    start_time: int  # platform start-time stamp: with pid it names one process instance
    exe_identity: Identity | None  # (dev, ino, size, mtime_ns, ctime_ns) of the executable itself


@dataclass(frozen=True, slots=True)
class Library:
    """A file a process maps executable, other than the executable it runs: a shared library, a
    plugin, a dlopen()ed object."""

    path: str  # as the process maps it (its own view: a container's path), without " (deleted)"
    on_disk: int  # 1 the mapped file is still at path, 0 it was deleted or replaced (as Process.on_disk)
    identity: Identity  # of the mapped file itself (read through the mapping, not through path)
    where: str  # how the platform reopens that very file (Linux: a map_files entry); opaque here


@dataclass(frozen=True, slots=True)
class Agent:
    """What was found of a gops agent for one process."""

    pidfile: str  # the <config dir>/<pid> path, as the target process sees it
    port: int  # the port number the pidfile holds
    address: str  # the address the process listens on for that port; "" when not listening
    listening: bool  # True only when the process itself has a TCP socket in LISTEN on ``port``


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a process runs: its cgroup, the container and pod that cgroup names, and its pid and
    mount namespaces. Every field is "" when unknown or not applicable (a host process)."""

    cgroup_path: str  # as osquery's processes.cgroup_path: the first line of /proc/<pid>/cgroup
    container_id: str  # the runtime's full id (docker, containerd, cri-o, podman) or lxc/machine name
    container_runtime: str  # docker, containerd, cri-o, podman, lxc, systemd-nspawn, or ""
    pod_uid: str  # Kubernetes pod uid, dashes restored
    pid_namespace: str  # namespace inodes as decimal text, as osquery's process_namespaces
    mnt_namespace: str
