"""Linux: the kernel's process connector (netlink ``NETLINK_CONNECTOR``, group ``CN_IDX_PROC``),
which tells a subscriber about every exec on the host as it happens: no auditd, no eBPF.

Subscribing needs CAP_NET_ADMIN (the kernel refuses the bind to the multicast group with EPERM
otherwise). Since Linux 6.6 a subscriber may ask for exec events only; older kernels ignore that
form of the request, so they get the plain one and every fork and exit besides (filtered here).
When the socket's receive buffer overflows the kernel drops events and the next ``recv`` fails
with ENOBUFS: :class:`Overrun`, after which the caller opens a new subscription.

The connector speaks for the host only: the kernel ignores a subscription from outside the
initial pid or user namespace (events that still arrive, because someone else subscribed, name
processes by their pids on the host, which a container's /proc would map to other processes or to
none), and its netlink socket exists only in the initial network namespace. There a subscription
is :class:`Unsupported`, never a source of wrong pids.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXEC = 0x00000002
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT = struct.Struct("=IIQII")  # what, cpu, timestamp_ns, then exec's process_pid, process_tgid
_HEAD = _NLMSGHDR.size + _CN_MSG.size
_RCVBUF = 8 << 20  # about 10,000 queued events: a burst while a new executable is read
_BATCH = 256  # events taken per wake-up before they are handled
_FILTER_SINCE = (6, 6)  # proc_input {mcast_op, event_type}: exec events only
# The inode numbers of the initial namespaces, fixed since Linux 3.8 (include/linux/proc_ns.h).
_INITIAL_NS = {"pid": 0xEFFFFFFC, "user": 0xEFFFFFFD}


class Unsupported(Exception):
    """This process cannot subscribe: it runs in a namespace the connector does not serve."""


def namespace_problem() -> str | None:
    """Why the connector would not serve this process (a pid or user namespace that is not the
    host's), or None. Unknown (no /proc/self/ns, kernels before 3.8) counts as the host's."""
    for kind, initial in _INITIAL_NS.items():
        try:
            link = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            continue
        if link != f"{kind}:[{initial}]":
            return (f"this process runs in a {kind} namespace other than the host's ({link}): the kernel's "
                    f"process connector serves only the initial pid and user namespaces (run the "
                    f"extension in the host's, e.g. a container with hostPID)")
    return None


class Overrun(Exception):
    """The kernel dropped events for this socket (ENOBUFS): subscribe again. ``events`` holds
    those read before the overrun was noticed."""

    def __init__(self, events: list[tuple[int, int]]) -> None:
        super().__init__("the kernel dropped process events (ENOBUFS)")
        self.events = events


def _kernel() -> tuple[int, int]:
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def _request(op: int, filtered: bool) -> bytes:
    payload = struct.pack("=II", op, PROC_EVENT_EXEC) if filtered else struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


class Subscription:
    """One subscription to exec events. Raises PermissionError without CAP_NET_ADMIN and
    :class:`Unsupported` in a namespace the connector does not serve."""

    def __init__(self, timeout: float = 0.5) -> None:
        problem = namespace_problem()
        if problem:
            raise Unsupported(problem)
        self._filtered = _kernel() >= _FILTER_SINCE
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                       NETLINK_CONNECTOR)
        except OSError as e:  # a kernel built without CONFIG_PROC_EVENTS / CONFIG_CONNECTOR
            if e.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
                raise Unsupported(f"this kernel has no process connector: {e.strerror}") from None
            raise
        try:
            try:  # as root, beyond net.core.rmem_max; otherwise what rmem_max allows
                self._sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF)  # SO_RCVBUFFORCE
            except OSError:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind((0, CN_IDX_PROC))
            try:
                self._sock.sendto(_request(PROC_CN_MCAST_LISTEN, self._filtered), (0, 0))
            except ConnectionRefusedError:  # no kernel end: not the initial network namespace
                raise Unsupported("this process runs in a network namespace other than the host's: the "
                                  "kernel's process connector exists only in the initial one (run the "
                                  "extension with the host's network, e.g. a container with hostNetwork)"
                                  ) from None
            self._sock.settimeout(timeout)
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[int, int]]:
        """The exec events now queued, (tgid, kernel CLOCK_MONOTONIC ns) oldest first; waits up to
        the timeout for the first one (an empty list: none came). Raises :class:`Overrun`."""
        out: list[tuple[int, int]] = []
        try:
            data = self._sock.recv(4096)  # waits (poll) up to the timeout
            fd = self._sock.fileno()  # non-blocking underneath: the rest without waiting
            for _ in range(_BATCH):
                self._parse(data, out)
                data = os.read(fd, 4096)
            self._parse(data, out)
        except (TimeoutError, BlockingIOError):
            pass
        except OSError as e:
            if e.errno == errno.ENOBUFS:
                raise Overrun(out) from None
            raise
        return out

    @staticmethod
    def _parse(data: bytes, out: list[tuple[int, int]]) -> None:
        at = 0
        while at + _HEAD + _EVENT.size <= len(data):  # one datagram may hold several messages
            length = _NLMSGHDR.unpack_from(data, at)[0]
            what, _cpu, ts, _pid, tgid = _EVENT.unpack_from(data, at + _HEAD)
            # An exec event names the thread that exec'd and its group; after exec it leads it.
            if what == PROC_EVENT_EXEC:
                out.append((tgid, ts))
            if length < _HEAD:
                break
            at += (length + 3) & ~3

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendto(_request(PROC_CN_MCAST_IGNORE, self._filtered), (0, 0))
        self._sock.close()
