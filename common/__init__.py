"""Shared infrastructure below every layer: the one logger, the one cache type and the bounded
buffer, what an OS error means (``meaning``), singletons built on first use (``singletons``).
Imports nothing from the project, so any layer (buildinfo, procs, tables, vulndb, extension, the
command) may import it."""

from ._cache import Buffer, Cache
from ._lazy import singletons
from ._log import LOG, configure, once
from ._oserror import DENIED, GONE, UNEXPECTED, expected, meaning

__all__ = ["DENIED", "GONE", "LOG", "UNEXPECTED", "Buffer", "Cache", "configure", "expected",
           "meaning", "once", "singletons"]

# The distribution's version, here so every layer can read it without importing the command's
# package (vulndb's User-Agent, the extension's registration). pyproject.toml and
# packaging/build-deb.sh and build-rpm.sh read this line; go_processes.__version__ re-exports it.
__version__ = "0.1.0"
