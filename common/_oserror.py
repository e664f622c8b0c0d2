"""What an OS error means to a reader of other processes' files: the one place that decides it.

- ``GONE``: the thing is not there (any more): the process exited, the file or a component of its
  path is missing. Expected in every scan; never logged.
- ``DENIED``: it is there, but not ours to read: permissions, or a link our policy refused to
  follow (``O_NOFOLLOW`` and the in-root resolver's owner policy answer ELOOP). Expected; never
  logged.
- ``UNEXPECTED``: anything else (EIO, ENOMEM, EMFILE...): worth one debug line, and the one
  process or file still never fails a query.
"""

from __future__ import annotations

import errno
from typing import Literal

GONE: Literal["gone"] = "gone"
DENIED: Literal["denied"] = "denied"
UNEXPECTED: Literal["unexpected"] = "unexpected"
Meaning = Literal["gone", "denied", "unexpected"]

_GONE = frozenset({errno.ENOENT, errno.ESRCH, errno.ENOTDIR})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.ELOOP})


def meaning(e: OSError) -> Meaning:
    """:data:`GONE`, :data:`DENIED` or :data:`UNEXPECTED` for ``e``."""
    if e.errno in _GONE:
        return GONE
    if e.errno in _DENIED:
        return DENIED
    return UNEXPECTED


def expected(e: OSError) -> bool:
    """True when ``e`` is part of reading a changing host (gone or denied), not worth a log line."""
    return e.errno in _GONE or e.errno in _DENIED
