"""The extension's side of osquery's Thrift protocol: register, serve, watch the manager, exit.

Built on the generated classes from the ``osquery`` package, without the SDK's runtime:
- connections are served concurrently (osqueryd pings on a fresh connection, with a 10 s
  timeout, before every call, so one slow ``generate`` must never hold up a ping);
- every failure inside a call becomes a non-zero ``ExtensionStatus`` with a message, never a
  Thrift exception, and the server keeps running;
- the process ends promptly, without a traceback, on ``shutdown()``, on SIGTERM/SIGINT and as
  soon as the manager stops answering pings, removing its socket file;
- whoever can connect to the socket can run ``generate`` as the extension's user (root), so the
  socket is owner-only from the moment it exists, whatever the umask, and the extension refuses
  to start when another user could stand in for the manager or replace our socket.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ..common import once
from ..tables import ContextError, QueryContext, Table, run, serving
from . import _wire
from ._values import routes, row_converter

EXTENSION_NAME = "go_processes"

EXIT_OK = 0  # shutdown() from the manager, SIGTERM, SIGINT
EXIT_FAILED = 1  # no manager, registration refused, manager gone, cannot serve

PING_TIMEOUT = 10.0  # seconds; the same bound osqueryd puts on its pings to us
IDLE_TIMEOUT = 600.0  # seconds a served connection may sit idle (osquery's thrift_timeout is 300)
MAX_CONNECTIONS = 64  # served at once; further connections wait in the listen backlog
CONNECT_RETRY = 0.02  # seconds between attempts to reach the manager (osquery uses 20 ms)
SOCKET_MODE = 0o600  # the extension socket: connect() needs write permission, so owner only


class ExtensionError(Exception):
    """Start-up failed: the message is what the operator needs to read on stderr."""


@dataclass
class Options:
    socket: str
    timeout: float = 3.0  # seconds to keep trying to reach the manager
    interval: float = 3.0  # seconds between pings of the manager
    verbose: bool = False


class _Log:
    """The extension's messages, through the project's one logger (configured by the entry point
    from --verbose): problems always, the trace of calls only when verbose."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(__name__)

    def __call__(self, message: str) -> None:
        self._logger.warning(message)

    def once(self, key: Hashable, message: str) -> None:
        """A warning the first time ``key`` is seen: a condition every query meets again (no
        vulnerability database) is worth one line, while each call's status message still says it."""
        once(self._logger, key, "%s", message, level=logging.WARNING)

    def debug(self, message: str) -> None:
        self._logger.debug(message)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text}" if text != type(e).__name__ else text


def unsafe_manager_socket(socket_path: str) -> str | None:
    """Why another user could stand in for the manager at ``socket_path`` or replace our socket
    beside it, or None.

    Someone who can rename or create entries in its directory can put their own socket in place
    of the manager's or ours. Checked for the directory and every one above it, after resolving
    symlinks and as spelled (where the symlinks live): each must be owned by root or by us, and
    not writable by others unless sticky (as /tmp: there only an entry's owner may remove it);
    so must the manager socket itself, when it exists. A missing directory is not refused here:
    there is no manager to reach, which registration reports.
    """
    me = os.geteuid()
    directory = os.path.dirname(os.path.abspath(socket_path))
    seen: set[str] = set()
    for start in (os.path.realpath(directory), directory):
        path = start
        while path not in seen:
            seen.add(path)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            except OSError as e:
                return f"cannot check {path}: {e.strerror or e}"
            if st.st_uid not in (0, me):
                return f"{path} is owned by uid {st.st_uid}, neither root nor this process's user"
            if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
                mode = stat.S_IMODE(st.st_mode)
                return f"{path} is writable by every user and has no sticky bit (mode {mode:04o})"
            path = os.path.dirname(path)
    try:
        owner = os.lstat(socket_path).st_uid
    except OSError:
        return None
    if owner not in (0, me):
        return f"{socket_path} is owned by uid {owner}, neither root nor this process's user"
    return None


class Handler:
    """The Extension service (ping, call, shutdown) for a set of tables."""

    def __init__(self, tables: Sequence[Table], log: _Log) -> None:
        self._tables = {t.name: t for t in tables}
        self._routes = {t.name: routes(t) for t in tables}
        self._convert = {t.name: row_converter(t) for t in tables}
        self._log = log
        self.uuid = 0
        self.shutdown_requested = False

    def registry(self) -> dict[str, dict[str, list[dict[str, str]]]]:
        return {"table": {name: [dict(r) for r in rs] for name, rs in self._routes.items()}}

    def _status(self, code: int, message: str) -> Any:
        return _wire.ttypes.ExtensionStatus(code=code, message=message, uuid=self.uuid)

    def _fail(self, message: str) -> Any:
        self._log.debug(f"call failed: {message}")
        return _wire.ttypes.ExtensionResponse(status=self._status(1, message), response=[])

    def ping(self) -> Any:
        return self._status(0, "pong")

    def shutdown(self) -> None:
        # The reply is written by the processor after this returns; the connection loop sees
        # the flag once the reply is flushed and ends the process.
        self._log.debug("shutdown requested by the manager")
        self.shutdown_requested = True

    def call(self, registry: str, item: str, request: dict[str, str] | None) -> Any:
        request = request or {}
        action = request.get("action", "")
        if registry != "table":
            return self._fail(f"unknown registry: {registry}")
        table = self._tables.get(item)
        if table is None:
            return self._fail(f"unknown table: {item}")
        if action == "columns":
            self._log.debug(f"{item}: columns")
            return _wire.ttypes.ExtensionResponse(
                status=self._status(0, "OK"), response=[dict(r) for r in self._routes[item]]
            )
        if action == "generate":
            return self._generate(table, request.get("context"))
        if action in ("insert", "update", "delete"):
            return self._fail(f"table {item} is read-only: {action} is not supported")
        return self._fail(f"unknown action for table {item}: {action or '(none)'}")

    def _generate(self, table: Table, raw_context: str | None) -> Any:
        started = time.monotonic()
        try:
            context = QueryContext.parse(raw_context)
            convert = self._convert[table.name]
            rows, notices = run(table, context, lambda found: convert(found, context.cols_used))
        except ContextError as e:
            self._log(f"{table.name}: bad query context: {_one_line(e)}")
            return self._fail(f"bad query context: {_one_line(e)}")
        except Exception as e:
            self._log(f"{table.name}: generate failed: {_one_line(e)}")
            return self._fail(f"generate failed: {_one_line(e)}")
        self._log.debug(
            f"{table.name}: generate {len(rows)} rows in {(time.monotonic() - started) * 1000:.1f} ms"
        )
        for notice in notices:
            self._log.once(("notice", table.name, notice), f"{table.name}: {notice}")
        message = "; ".join(notices) or "OK"
        return _wire.ttypes.ExtensionResponse(status=self._status(0, message), response=rows)


class Extension:
    """One run of the extension: register with the manager, serve, exit with a code."""

    def __init__(self, options: Options, tables: Sequence[Table]) -> None:
        self.options = options
        self.tables = tuple(tables)
        self.log = _Log()
        self.handler = Handler(tables, self.log)
        self.path = ""
        self._listener: socket.socket | None = None
        self._socket_id: tuple[int, int] | None = None
        self._exit_code: int | None = None
        self._exit_lock = threading.RLock()  # also taken by the signal handler, on the main thread
        self._stopped = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._signalled = False

    # -- start-up ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _manager(self, timeout: float) -> Iterator[Any]:
        """A manager client on a fresh connection (osquery opens one per request too), closed after."""
        proto = _wire.connect(self.options.socket, timeout)
        try:
            yield _wire.ExtensionManager.Client(proto)
        finally:
            proto.trans.close()

    def register(self, version: str) -> int:
        """Reach the manager within --timeout and register; returns the route uuid."""
        deadline = time.monotonic() + max(self.options.timeout, 0.2)
        while True:
            try:
                proto = _wire.connect(self.options.socket, max(self.options.timeout, PING_TIMEOUT))
                break
            except OSError as e:
                if time.monotonic() >= deadline or self._stopped.is_set():
                    raise ExtensionError(
                        f"cannot reach the osquery extension manager at {self.options.socket}: "
                        f"{e.strerror or e}"
                    ) from None
                time.sleep(CONNECT_RETRY)
        info = _wire.ttypes.InternalExtensionInfo(
            name=EXTENSION_NAME, version=version, sdk_version="", min_sdk_version=""
        )
        try:
            status = _wire.ExtensionManager.Client(proto).registerExtension(info, self.handler.registry())
        except (_wire.TTransportException, OSError, EOFError) as e:
            raise ExtensionError(f"registration failed: {_one_line(e)}") from None
        finally:
            proto.trans.close()
        if status.code != 0:
            raise ExtensionError(f"osquery refused the registration: {status.message} (code {status.code})")
        self.handler.uuid = int(status.uuid or 0)
        self.path = f"{self.options.socket}.{self.handler.uuid}"
        self.log.debug(f"registered as {EXTENSION_NAME} {version}, uuid {self.handler.uuid}")
        return self.handler.uuid

    def deregister(self) -> None:
        """Best effort: tell the manager our tables are gone now rather than at its next ping."""
        if not self.handler.uuid:
            return
        try:
            with self._manager(1.0) as client:
                client.deregisterExtension(self.handler.uuid)
        except Exception as e:
            self.log.debug(f"deregistration failed: {_one_line(e)}")

    def listen(self) -> None:
        """Bind the extension socket owner-only, replacing a stale socket file (never any other file).

        The socket file is created under umask 0177, so it never exists with a wider mode (the
        process is still single-threaded here: nothing else creates files meanwhile). Its mode is
        verified, and narrowed where a platform ignores the umask, before ``listen()``: until then
        every connect() is refused whatever the mode.
        """
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ExtensionError(f"cannot use {self.path}: {e.strerror}") from None
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise ExtensionError(f"{self.path} exists and is not a socket; not replacing it")
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise ExtensionError(f"cannot remove stale socket {self.path}: {e.strerror}") from None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound = False
        try:
            umask = os.umask(0o777 & ~SOCKET_MODE)
            try:
                listener.bind(self.path)
                bound = True
            finally:
                os.umask(umask)
            st = os.lstat(self.path)
            if stat.S_IMODE(st.st_mode) != SOCKET_MODE:
                os.chmod(self.path, SOCKET_MODE)
                st = os.lstat(self.path)
            if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != SOCKET_MODE:
                raise OSError(f"its mode stays {stat.S_IMODE(st.st_mode):04o}, not {SOCKET_MODE:04o}")
            listener.listen(128)
        except OSError as e:
            listener.close()
            if bound:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            raise ExtensionError(f"cannot listen on {self.path}: {e.strerror or e}") from None
        self._socket_id = (st.st_dev, st.st_ino)
        self._listener = listener
        self.log.debug(f"serving on {self.path}")

    # -- serving ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopped.is_set():
            self._slots.acquire()
            try:
                conn, _ = listener.accept()
            except OSError as e:
                self._slots.release()
                if self._stopped.is_set():
                    return
                if e.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):  # the listener is gone
                    self.log(f"cannot accept connections any more: {e.strerror or e}")
                    self.stop(EXIT_FAILED)
                    return
                self.log(f"accept failed: {e.strerror or e}")  # e.g. out of descriptors: wait, retry
                time.sleep(0.1)
                continue
            threading.Thread(target=self._serve, args=(conn,), name="ext-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        processor = _wire.Extension.Processor(self.handler)
        try:
            conn.settimeout(IDLE_TIMEOUT)
            proto = _wire.protocol(conn)
            while not self._stopped.is_set():
                processor.process(proto, proto)
                if self.handler.shutdown_requested:
                    self.stop(EXIT_OK)
                    return
        except (_wire.TTransportException, OSError, EOFError):
            pass  # the peer closed or timed out: the normal end of a connection
        except Exception as e:  # a malformed message: drop this connection, keep serving
            self.log(f"dropped a connection: {_one_line(e)}")
        finally:
            conn.close()
            self._slots.release()

    def _watch(self) -> None:
        """Ping the manager every --interval; exit when it stops answering."""
        interval = max(self.options.interval, 0.1)
        while not self._stopped.wait(interval):
            try:
                with self._manager(PING_TIMEOUT) as client:
                    status = client.ping()
            except Exception as e:
                self.log(f"osquery extension manager went away ({_one_line(e)}); exiting")
                self.stop(EXIT_FAILED)
                return
            if status.code != 0:
                self.log(f"osquery extension manager ping failed: {status.message}; exiting")
                self.stop(EXIT_FAILED)
                return

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, code: int) -> None:
        """Ask the main thread to end the process with ``code`` (the first request wins)."""
        with self._exit_lock:
            if self._exit_code is None:
                self._exit_code = code
        self._stopped.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.log.debug(f"signal {signum}: exiting")
        self._signalled = True
        self.stop(EXIT_OK)

    def _remove_socket(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if not self.path or self._socket_id is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._socket_id:  # still ours, not a successor's
                os.unlink(self.path)
        except OSError:
            pass

    def run(self, version: str) -> int:
        """Register, serve until told to stop, clean up; returns the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        try:
            unsafe = unsafe_manager_socket(self.options.socket)
            if unsafe:
                raise ExtensionError(
                    f"refusing to start: another user could stand in for the manager at "
                    f"{self.options.socket} or replace our socket: {unsafe}"
                )
            self.register(version)
        except ExtensionError as e:
            self.log(str(e))
            return EXIT_FAILED
        try:
            if self._stopped.is_set():
                self.deregister()
                return self._exit_code or EXIT_OK
            self.listen()
        except ExtensionError as e:
            self.log(str(e))
            self.deregister()
            return EXIT_FAILED
        threading.Thread(target=self._accept_loop, name="ext-accept", daemon=True).start()
        threading.Thread(target=self._watch, name="ext-watch", daemon=True).start()
        try:
            with serving(self.tables):  # their start hooks, once we listen; stop hooks on the way out
                while not self._stopped.wait(1.0):
                    pass
        finally:
            self._remove_socket()
        if self._signalled:  # stopped by the host, not by the manager: withdraw the tables now
            self.deregister()
        return EXIT_OK if self._exit_code is None else self._exit_code
