"""Where the database is, whether we trust it, and the one opened copy every query shares.

Location, first that is set: :func:`set_location` (the extension's ``--vulndb`` flag and the
CLI's), the environment variable ``GO_PROCESSES_VULNDB``, the ``vulndb =`` line of the config file
(``/etc/osquery-go-processes.conf``, or the file ``GO_PROCESSES_CONFIG`` names), else
:data:`DEFAULT_LOCATION`. osqueryd passes no custom flags to autoloaded extensions and starts them
with its own environment, so on hosts running osqueryd the config file is the way that always works.

The database is opened on the first query that needs it and again when its files change (an
update swaps a symlink, so the resolved path changes); the config file and the database are
checked as trusted (see ``_trust``) on every query, so loosening permissions takes effect at once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ..buildinfo import identity_of
from ._db import Database
from ._model import NotInstalled, Untrusted, VulnDBError
from ._trust import check_path, read_trusted

DEFAULT_LOCATION = "/var/lib/osquery-go-processes/vulndb"
DEFAULT_CONFIG = "/etc/osquery-go-processes.conf"
ENV_LOCATION = "GO_PROCESSES_VULNDB"
ENV_CONFIG = "GO_PROCESSES_CONFIG"
MAX_CONFIG = 64 << 10

_explicit: str | None = None


def set_location(path: str | None) -> None:
    """Use ``path`` (a flag's value) instead of the environment, config file and default."""
    global _explicit
    _explicit = path or None


def location() -> tuple[str, str]:
    """(location, where it came from: flag, environment, config file path or default).

    Raises :class:`Untrusted` or :class:`Malformed`-like :class:`VulnDBError` for a config file
    we must not believe."""
    if _explicit:
        return _explicit, "flag"
    env = os.environ.get(ENV_LOCATION)
    if env:
        return env, ENV_LOCATION
    config = os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG
    value = config_value(config, "vulndb")
    if value:
        return value, config
    return DEFAULT_LOCATION, "default"


def config_value(path: str, name: str) -> str | None:
    """``name = value`` from the config file (``#`` comments), None when the file is absent.

    A symlink is followed as for the database: only when :func:`check_path` trusts the link and
    every directory on the way to its target; the checked target is what is opened (no link)."""
    try:
        real = check_path(path)
    except FileNotFoundError:
        return None
    except Untrusted as e:
        raise Untrusted(f"config file refused: {e.reason}") from None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise VulnDBError(f"config file {path}: {e.strerror or e}") from None
    try:
        data = read_trusted(fd, f"config file {path}", MAX_CONFIG)
    finally:
        os.close(fd)
    for line in data.decode("utf-8", "replace").splitlines():
        k, sep, v = line.split("#", 1)[0].partition("=")
        if sep and k.strip() == name:
            return v.strip()
    return None


@dataclass(frozen=True, slots=True)
class Status:
    """The database as a query sees it: opened, or why not."""

    location: str
    database: Database | None
    error: str  # "" when database is set


class Store:
    """The shared, lazily opened database; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._db: Database | None = None

    def get(self) -> Status:
        try:
            where, _source = location()
        except VulnDBError as e:
            return Status("", None, e.reason)
        try:
            real = check_path(where)
            signature = _signature(where, real)
        except FileNotFoundError:
            return Status(where, None, f"no vulnerability database at {where} "
                          "(run `go-processes vulndb update`)")
        except Untrusted as e:
            return Status(where, None, f"refused: {e.reason}")
        with self._lock:
            if self._key == signature and self._db is not None:
                return Status(where, self._db, "")
            try:
                db = Database(real)
            except NotInstalled as e:
                return Status(where, None, f"no vulnerability database: {e.reason}")
            except Untrusted as e:
                return Status(where, None, f"refused: {e.reason}")
            except VulnDBError as e:
                return Status(where, None, f"unreadable database: {e.reason}")
            self._db, self._key = db, signature  # the old copy closes when no query holds it
            return Status(where, db, "")


def _signature(where: str, real: str) -> tuple[object, ...]:
    out: list[object] = [where, real]
    for p in (real, os.path.join(real, "index", "db.json"), os.path.join(real, "ID")):
        try:
            st = os.lstat(p)
        except OSError:
            out.append(None)
            continue
        out.append(identity_of(st))
    return tuple(out)

