"""The one logger: stdlib ``logging`` under the name ``go_processes``, configured once by the entry
point (``go-processes``, ``go_processes.ext``) from ``--verbose``. Library code only logs; without
configuration Python prints warnings and worse on stderr and drops the rest."""

from __future__ import annotations

import logging
import sys
from collections.abc import Hashable
from typing import TextIO

from ._cache import Cache

LOG = logging.getLogger("go_processes")
_handler: logging.Handler | None = None
_seen: Cache[Hashable, bool] = Cache(4096)


def configure(verbose: bool, prog: str = "go_processes", stream: TextIO | None = None) -> None:
    """Send the project's messages to ``stream`` (stderr) as ``prog: message`` lines: every one with
    ``verbose``, else warnings and worse. Calling it again replaces the previous configuration."""
    global _handler
    if _handler is not None:
        LOG.removeHandler(_handler)
    _handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    _handler.setFormatter(logging.Formatter(prog.replace("%", "%%") + ": %(message)s"))
    LOG.addHandler(_handler)
    LOG.setLevel(logging.DEBUG if verbose else logging.WARNING)
    LOG.propagate = False


def once(logger: logging.Logger, key: Hashable, msg: str, *args: object, level: int = logging.DEBUG) -> None:
    """Log ``msg`` the first time ``key`` is seen (per process, bounded): a failing process is
    scanned by every query, and one line about it is enough."""
    if not logger.isEnabledFor(level) or _seen.get(key) is not None:
        return
    _seen.put(key, True)
    logger.log(level, msg, *args)
