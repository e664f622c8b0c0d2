"""``go-processes vulndb update``: fetch, validate and atomically install a new database.

The installed location is a symlink to a sibling directory (``vulndb`` -> ``vulndb.<stamp>``);
an update builds the new directory beside it, checks it whole, then renames a new symlink over
the old one, so a query sees either the old database or the new one, never half of one. What we
write is 0755/0644 whatever the umask and owned by us, so the trust checks accept it.

Sources: an ``https://`` URL (certificates always verified, against the system's CAs or
``cafile``; redirects may not leave HTTPS), or a local zip or directory for air-gapped hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.client
import os
import re
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..common import __version__
from ._db import MAX_ZIP, Database
from ._model import Untrusted, VulnDBError
from ._trust import check_path

DEFAULT_SOURCE = "https://vuln.go.dev/vulndb.zip"
TIMEOUT = 120.0  # one connect or read
DEADLINE = 300.0  # the whole download (3 MB in 2026)


class UpdateError(VulnDBError):
    """The update did not happen; the installed database (if any) is unchanged."""


@dataclass(frozen=True, slots=True)
class Installed:
    location: str
    modified: str
    entries: int
    previous: str  # modified time of the copy it replaced, "" if none
    changed: bool  # False when the installed copy was already this one


def update(location: str, source: str = DEFAULT_SOURCE, force: bool = False,
           cafile: str | None = None, deadline: float | None = None) -> Installed:
    """Install the database from ``source`` at ``location``; raises :class:`UpdateError`.

    The source is read through the loader (:class:`Database`), under its bounds: the number of
    entries, each file's size and their total are checked from the zip's directory or the files'
    sizes before anything is written, and again while reading; memory holds the zip and one file.
    A download ends after ``deadline`` seconds (:data:`DEADLINE`) however slowly the server sends.
    """
    location = os.path.abspath(location)
    parent = os.path.dirname(location)
    _make_parent(parent)
    with _locked(parent):
        src = _open_source(source, cafile, DEADLINE if deadline is None else deadline)
        staging = ""
        try:
            try:
                src.check_size()
                staging = tempfile.mkdtemp(prefix=".vulndb-staging-", dir=parent)
                os.chmod(staging, 0o755)
                _write(staging, src.files())
            except VulnDBError as e:
                raise UpdateError(f"invalid database: {e.reason}") from None
            src.close()
            db = _validate(staging)
            modified, entries = db.modified, len(db)
            db.close()
            previous = _installed_modified(location)
            if previous and _when(modified) < _when(previous) and not force:
                raise UpdateError(f"the new database (modified {modified}) is older than the installed "
                                  f"one ({previous}); use --force to install it anyway")
            if previous == modified and not force:
                return Installed(location, modified, entries, previous, False)
            if location.endswith(".zip"):
                _install_zip(location, staging)
            else:
                target = os.path.join(parent, f"{os.path.basename(location)}.{_stamp(modified)}")
                target = _unique(target)
                os.rename(staging, target)
                staging = ""
                _swap(location, target)
            return Installed(location, modified, entries, previous, True)
        finally:
            src.close()
            if staging:
                shutil.rmtree(staging, ignore_errors=True)


def _make_parent(parent: str) -> None:
    """Create ``parent`` only under a directory we trust: the part that exists is checked first
    (every directory above it too), so nothing is created through another user's directory or link."""
    existing, missing = parent, []
    while not os.path.lexists(existing):
        existing, name = os.path.split(existing)
        missing.append(name)
    try:
        check_path(existing)
        for name in reversed(missing):
            existing = os.path.join(existing, name)
            os.mkdir(existing, 0o755)
        check_path(parent)
    except VulnDBError as e:
        raise UpdateError(f"refusing to install under {parent}: {e.reason}") from None
    except OSError as e:
        raise UpdateError(f"cannot create {existing}: {e.strerror or e}") from None


@contextlib.contextmanager
def _locked(parent: str) -> Any:
    fd = os.open(os.path.join(parent, ".vulndb.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateError(f"another update is running (lock {parent}/.vulndb.lock)") from None
        yield
    finally:
        os.close(fd)


def _open_source(source: str, cafile: str | None, deadline: float) -> Database:
    """``source`` opened as a database: a download, or a local zip or directory we trust as we
    trust the installed copy (owned by root or us, not writable by others, all the way up)."""
    if source.startswith("https://"):
        data = _download(source, cafile, deadline)
        try:
            return Database(source, data=data)
        except VulnDBError as e:
            raise UpdateError(f"{source} is not a valid database zip: {e.reason}") from None
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", source) and not source.startswith("file://"):
        raise UpdateError(f"{source}: only https:// URLs (verified) or a local zip or directory are accepted")
    path = os.path.abspath(source.removeprefix("file://"))
    try:
        real = check_path(path)
        st = os.stat(real)
    except Untrusted as e:
        raise UpdateError(f"refusing the source {path}: {e.reason} (whoever can write it would choose "
                          "what is reported; copy it where only root can write)") from None
    except OSError as e:
        raise UpdateError(f"{path}: {e.strerror or e}") from None
    is_zip = not stat.S_ISDIR(st.st_mode)
    try:
        return Database(real, is_zip=is_zip)
    except Untrusted as e:
        raise UpdateError(f"refusing the source {path}: {e.reason}") from None
    except VulnDBError as e:
        raise UpdateError(f"{path} is not a valid database {'zip' if is_zip else 'directory'}: "
                          f"{e.reason}") from None


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not newurl.startswith("https://"):
            raise UpdateError(f"refusing a redirect from {req.full_url} to {newurl}: not HTTPS")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# Where distributions keep the system's CA bundle: Debian and Ubuntu; the RHEL family and Amazon
# Linux; SUSE; Fedora's and RHEL's extracted bundle; Alpine, Arch and others. A Python whose
# OpenSSL was built elsewhere (the single-file .ext) knows only its own build's directory.
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
              "/etc/ssl/ca-bundle.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
              "/etc/ssl/cert.pem")


def host_ca_bundle(candidates: tuple[str, ...] = CA_BUNDLES) -> str | None:
    """The host's CA bundle: the first candidate that is a regular file owned by root and writable by
    root alone (it decides whom the update trusts); None when SSL_CERT_FILE or SSL_CERT_DIR is set
    (OpenSSL's own override) or no candidate qualifies (OpenSSL's built-in default then)."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return None
    for path in candidates:
        try:
            st = os.stat(path)  # distributions link these into /etc/pki or /usr/share: root's files
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return path
    return None


class _Watchdog:
    """A download's total deadline: when it passes, every connection the download opened is shut
    down, so a read blocked on a server that sends a byte now and then fails at once."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock.dup())  # a duplicate: TLS takes over the original object
            if self.expired:
                _shut(self._socks[-1])
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for s in self._socks:
                _shut(s)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for s in self._socks:
                s.close()
            self._socks.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Connection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, watchdog: _Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = self._create_connection  # type: ignore[has-type]
        self._create_connection = lambda *a, **kw: watchdog.track(create(*a, **kw))


class _Https(urllib.request.HTTPSHandler):
    """HTTPS whose connections the watchdog can end (urllib's handler otherwise)."""

    def __init__(self, context: ssl.SSLContext, watchdog: _Watchdog) -> None:
        super().__init__(context=context)
        self._tls, self._watchdog = context, watchdog

    def https_open(self, req: Any) -> Any:
        return self.do_open(functools.partial(_Connection, watchdog=self._watchdog), req, context=self._tls)


def _download(url: str, cafile: str | None, deadline: float) -> bytes:
    # Verifies certificates and host names, against --cafile or the host's own CA bundle.
    context = ssl.create_default_context(cafile=cafile or host_ca_bundle())
    watchdog = _Watchdog(deadline)
    opener = urllib.request.build_opener(_Https(context, watchdog), _HttpsOnly())
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"go-processes/{__version__}"})
        with opener.open(request, timeout=min(TIMEOUT, deadline)) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_ZIP:
                raise UpdateError(f"{url} is {length} bytes, over the {MAX_ZIP}-byte bound")
            data: bytes = response.read(MAX_ZIP + 1)
            if watchdog.expired:  # the read ended because its connection was shut down
                raise UpdateError(f"cannot download {url}: not done within {deadline:.0f} s")
            if length is not None and length.isdigit() and len(data) != int(length):
                raise UpdateError(f"cannot download {url}: got {len(data)} of {length} bytes (truncated)")
    except UpdateError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as e:  # refused, reset, malformed answers
        if watchdog.expired:
            raise UpdateError(f"cannot download {url}: not done within {deadline:.0f} s") from None
        reason = e.reason if isinstance(e, urllib.error.URLError) else repr(e)
        raise UpdateError(f"cannot download {url}: {reason}") from None
    finally:
        watchdog.close()
    if len(data) > MAX_ZIP:
        raise UpdateError(f"{url} is over the {MAX_ZIP}-byte bound")
    return data


def _write(root: str, files: Iterable[tuple[str, bytes]]) -> None:
    """Write the layout files (names built by the loader, never taken from the source)."""
    for sub in ("index", "ID"):
        os.mkdir(os.path.join(root, sub), 0o755)
        os.chmod(os.path.join(root, sub), 0o755)
    for rel, body in files:
        fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            os.fchmod(fd, 0o644)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def _validate(root: str) -> Database:
    try:
        db = Database(root)
    except VulnDBError as e:
        raise UpdateError(f"invalid database: {e.reason}") from None
    try:
        _check(db)
    except BaseException:
        db.close()
        raise
    return db


def _check(db: Database) -> None:
    if len(db) == 0:
        raise UpdateError("invalid database: it holds no entries (ID/*.json)")
    errors = db.check_all()
    if errors:
        first = sorted(errors.items())[0]
        raise UpdateError(f"invalid database: {len(errors)} entries cannot be read, "
                          f"e.g. {first[0]}: {first[1]}")
    ids = set(db.ids())
    missing = sorted({vid for m in db.modules() for vid in db.index_ids(m)} - ids)
    if missing:
        raise UpdateError(f"invalid database: index/modules.json names {len(missing)} entries that are "
                          f"missing, e.g. {missing[0]}")


def _installed_modified(location: str) -> str:
    try:
        db = Database(os.path.realpath(location))
    except VulnDBError:
        return ""
    try:
        return db.modified
    finally:
        db.close()


def _when(modified: str) -> datetime:
    """RFC 3339 as a time (``Z`` and fractions too), so that spellings compare as instants."""
    return datetime.fromisoformat(modified.replace("Z", "+00:00"))


def _stamp(modified: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", modified)[:20]


def _unique(path: str) -> str:
    n, candidate = 0, path
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.{n}"
    return candidate


def _swap(location: str, target: str) -> None:
    """Point ``location`` at ``target`` with one rename of the link itself; remove the copy it
    pointed at only when that is one of ours (a sibling ``<name>.<stamp>`` directory), never a
    directory a link put there by someone else leads to."""
    old_target = ""
    if os.path.islink(location):
        old_target = _our_copy(location)
    elif os.path.isdir(location):
        # A directory put there by hand: move it aside first (the one moment without a database).
        old_target = _unique(location + ".old")
        os.rename(location, old_target)
    link = _unique(location + ".new")
    os.symlink(os.path.basename(target), link)
    os.replace(link, location)
    _fsync_dir(os.path.dirname(location))
    if old_target and old_target != target:
        shutil.rmtree(old_target, ignore_errors=True)


def _our_copy(location: str) -> str:
    """The directory the link ``location`` names if an update made it (``<name>.<stamp>[.n]`` beside
    the link, a real directory), else ""."""
    pointed = os.readlink(location)
    name = os.path.basename(location)
    if not re.fullmatch(re.escape(name) + r"\.[0-9A-Za-z]{1,20}(?:\.\d+)?", pointed):
        return ""
    sibling = os.path.join(os.path.dirname(location), pointed)
    try:
        return sibling if stat.S_ISDIR(os.lstat(sibling).st_mode) else ""
    except OSError:
        return ""


def _install_zip(location: str, staging: str) -> None:
    """Zip the checked copy beside ``location`` and replace it only once the loader accepts the zip
    (its own bounds: size, members, total)."""
    fd, tmp = tempfile.mkstemp(prefix=".vulndb-", suffix=".zip", dir=os.path.dirname(location))
    try:
        os.fchmod(fd, 0o644)
        src = Database(staging)
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for rel, body in src.files():
                    z.writestr(rel, body)
        finally:
            src.close()
        _validate(tmp).close()
        os.replace(tmp, location)
        _fsync_dir(os.path.dirname(location))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

