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
import io
import os
import re
import shutil
import ssl
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._db import MAX_ENTRY, MAX_INDEX, MAX_ZIP, Database
from ._model import VulnDBError
from ._trust import check_path

DEFAULT_SOURCE = "https://vuln.go.dev/vulndb.zip"
TIMEOUT = 120.0

# Layout files we install; nothing else from a source is ever written.
_MEMBER = re.compile(r"(?:[^/]{1,255}/)?(index/(db|modules|vulns)\.json|ID/(GO-\d{4}-\d{4,7})\.json)")


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
           cafile: str | None = None) -> Installed:
    """Install the database from ``source`` at ``location``; raises :class:`UpdateError`."""
    location = os.path.abspath(location)
    parent = os.path.dirname(location)
    _make_parent(parent)
    with _locked(parent):
        files = _fetch(source, cafile)
        staging = tempfile.mkdtemp(prefix=".vulndb-staging-", dir=parent)
        try:
            os.chmod(staging, 0o755)
            _write(staging, files)
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
                _install_zip(location, files)
            else:
                target = os.path.join(parent, f"{os.path.basename(location)}.{_stamp(modified)}")
                target = _unique(target)
                os.rename(staging, target)
                staging = ""
                _swap(location, target)
            return Installed(location, modified, entries, previous, True)
        finally:
            if staging:
                shutil.rmtree(staging, ignore_errors=True)


def _make_parent(parent: str) -> None:
    try:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    except OSError as e:
        raise UpdateError(f"cannot create {parent}: {e.strerror or e}") from None
    try:
        check_path(parent)
    except VulnDBError as e:
        raise UpdateError(f"refusing to install under {parent}: {e.reason}") from None


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


def _fetch(source: str, cafile: str | None) -> dict[str, bytes]:
    """The layout files of ``source``, keyed by their place in the layout (``ID/GO-...json``)."""
    if source.startswith("https://"):
        return _from_zip(_download(source, cafile), source)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", source) and not source.startswith("file://"):
        raise UpdateError(f"{source}: only https:// URLs (verified) or a local zip or directory are accepted")
    path = source.removeprefix("file://")
    try:
        st = os.stat(path)
    except OSError as e:
        raise UpdateError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        return _from_dir(path)
    if st.st_size > MAX_ZIP:
        raise UpdateError(f"{path} is over {MAX_ZIP} bytes")
    with open(path, "rb") as f:
        return _from_zip(f.read(MAX_ZIP + 1), path)


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


def _download(url: str, cafile: str | None) -> bytes:
    from .. import __version__

    # Verifies certificates and host names, against --cafile or the host's own CA bundle.
    context = ssl.create_default_context(cafile=cafile or host_ca_bundle())
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _HttpsOnly())
    request = urllib.request.Request(url, headers={"User-Agent": f"go-processes/{__version__}"})
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_ZIP:
                raise UpdateError(f"{url} is {length} bytes, over the {MAX_ZIP}-byte bound")
            data: bytes = response.read(MAX_ZIP + 1)
            if length is not None and length.isdigit() and len(data) != int(length):
                raise UpdateError(f"cannot download {url}: got {len(data)} of {length} bytes (truncated)")
    except UpdateError:
        raise
    except urllib.error.URLError as e:
        raise UpdateError(f"cannot download {url}: {e.reason}") from None
    except (OSError, ValueError) as e:  # IncompleteRead, resets, timeouts
        raise UpdateError(f"cannot download {url}: {e!r}") from None
    if len(data) > MAX_ZIP:
        raise UpdateError(f"{url} is over the {MAX_ZIP}-byte bound")
    return data


def _from_zip(data: bytes, where: str) -> dict[str, bytes]:
    if len(data) > MAX_ZIP:
        raise UpdateError(f"{where} is over {MAX_ZIP} bytes")
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                m = _MEMBER.fullmatch(info.filename)
                if m is None or info.is_dir() or m.group(1) in out:
                    continue
                limit = MAX_INDEX if m.group(1).startswith("index/") else MAX_ENTRY
                if info.file_size > limit:
                    raise UpdateError(f"{where}: {info.filename} is {info.file_size} bytes, over the bound")
                with z.open(info) as f:
                    body = f.read(limit + 1)
                if len(body) > limit:
                    raise UpdateError(f"{where}: {info.filename} is over the bound")
                out[m.group(1)] = body
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise UpdateError(f"{where} is not a valid database zip: {e}") from None
    return out


def _from_dir(path: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for sub, limit in (("index", MAX_INDEX), ("ID", MAX_ENTRY)):
        try:
            names = os.listdir(os.path.join(path, sub))
        except OSError as e:
            raise UpdateError(f"{path}/{sub}: {e.strerror or e}") from None
        for name in names:
            rel = f"{sub}/{name}"
            if _MEMBER.fullmatch(rel) is None:
                continue
            try:
                fd = os.open(os.path.join(path, sub, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as e:
                raise UpdateError(f"{path}/{rel}: {e.strerror or e}") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UpdateError(f"{path}/{rel} is not a regular file")
                body = os.read(fd, limit + 1)
            finally:
                os.close(fd)
            if len(body) > limit:
                raise UpdateError(f"{path}/{rel} is over the bound")
            out[rel] = body
    return out


def _write(root: str, files: dict[str, bytes]) -> None:
    for sub in ("index", "ID"):
        os.mkdir(os.path.join(root, sub), 0o755)
        os.chmod(os.path.join(root, sub), 0o755)
    for rel, body in files.items():
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
    failed = db.load_all()
    if failed:
        first = sorted(db.errors.items())[0]
        raise UpdateError(f"invalid database: {failed} entries cannot be read, e.g. {first[0]}: {first[1]}")
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
    """Point ``location`` at ``target`` with one rename; remove the directory it pointed at."""
    old_target = ""
    if os.path.islink(location):
        old_target = os.path.join(os.path.dirname(location), os.readlink(location))
    elif os.path.isdir(location):
        # A directory put there by hand: move it aside first (the one moment without a database).
        old_target = _unique(location + ".old")
        os.rename(location, old_target)
    link = _unique(location + ".new")
    os.symlink(os.path.basename(target), link)
    os.replace(link, location)
    _fsync_dir(os.path.dirname(location))
    if old_target and os.path.realpath(old_target) != os.path.realpath(target):
        shutil.rmtree(old_target, ignore_errors=True)


def _install_zip(location: str, files: dict[str, bytes]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".vulndb-", suffix=".zip", dir=os.path.dirname(location))
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for rel in sorted(files):
                z.writestr(rel, files[rel])
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

