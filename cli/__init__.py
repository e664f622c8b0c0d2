"""go_processes: find every Go program on a host, as an osquery extension and a standalone command.

Layers, each a folder of the source tree installed under this package:
``common`` (what every layer shares), ``buildinfo`` (executables to build info), ``procs``
(processes and gops agents), ``tables`` (one module per osquery table), ``extension`` (the osquery
side) and this package's ``main`` (the standalone ``go-processes`` command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .common import __version__ as __version__


def __getattr__(name: str) -> str:
    """``__version__``, which lives in common/ (below every layer), read on first use: every
    import of any layer loads this package first, and the extension's entry point must stay cheap
    to import (nothing beyond itself)."""
    if name == "__version__":
        from .common import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
