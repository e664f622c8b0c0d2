"""The Go vulnerability database (vuln.go.dev) and matching programs against it.

No osquery and no processes here: :class:`Database` reads the documented layout from a directory
or the bulk zip, :func:`match` says which advisories affect a :class:`Program` and at which level
(symbol, package, module), :data:`STORE` is the shared copy opened lazily from the configured,
trusted location, and :func:`update` installs a new copy atomically.
"""

from ..buildinfo import split_function  # re-exported: the one reading of a function name
from ..common import singletons
from ._db import Database, parse_entry
from ._match import (
    LEVEL_MODULE,
    LEVEL_PACKAGE,
    LEVEL_SYMBOL,
    STDLIB,
    TOOLCHAIN,
    Finding,
    ModuleVersion,
    Program,
    match,
    modules_of,
    package_symbols,
)
from ._model import Affected, Entry, Malformed, NotInstalled, Package, Untrusted, VulnDBError
from ._store import (
    DEFAULT_CONFIG,
    DEFAULT_LOCATION,
    ENV_CONFIG,
    ENV_LOCATION,
    Status,
    Store,
    config_value,
    location,
    set_location,
)
from ._trust import check_path
from ._update import DEFAULT_SOURCE, Installed, UpdateError, update
from ._version import go_semver, key

STORE: Store  # the one shared copy, built on first use: importing builds nothing
__getattr__ = singletons(globals(), STORE=Store)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LOCATION",
    "DEFAULT_SOURCE",
    "ENV_CONFIG",
    "ENV_LOCATION",
    "LEVEL_MODULE",
    "LEVEL_PACKAGE",
    "LEVEL_SYMBOL",
    "STDLIB",
    "STORE",
    "TOOLCHAIN",
    "Affected",
    "Database",
    "Entry",
    "Finding",
    "Installed",
    "Malformed",
    "ModuleVersion",
    "NotInstalled",
    "Package",
    "Program",
    "Status",
    "Store",
    "Untrusted",
    "UpdateError",
    "VulnDBError",
    "check_path",
    "config_value",
    "go_semver",
    "key",
    "location",
    "match",
    "modules_of",
    "package_symbols",
    "parse_entry",
    "set_location",
    "split_function",
    "update",
]
