"""Whom we believe: a file decides what we report only if nobody but root or us could write it.

As osquery's check of extension binaries ("unsafe permissions", ``safePermissions`` in
osquery/filesystem), extended to every directory above the file, because whoever can rename a
directory on the way can swap the whole tree: each component must be owned by root or by our
own uid and not writable by group or others. A root-owned ancestor with the sticky bit (``/tmp``)
is accepted, because there nobody can rename or delete an entry that is not theirs; the file's
own directory (and the database itself) never may be writable by others.
"""

from __future__ import annotations

import os
import stat

from ._model import Malformed, Untrusted

_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def owners() -> tuple[int, ...]:
    """The uids we trust: root and ourselves."""
    return (0, os.geteuid()) if hasattr(os, "geteuid") else (0,)


def check_st(what: str, st: os.stat_result) -> None:
    """Refuse one file or directory we opened (its fstat): owner and group/other write bits."""
    if st.st_uid not in owners():
        raise Untrusted(f"{what} is owned by uid {st.st_uid}, not by root or uid {os.geteuid()}")
    if st.st_mode & _WRITABLE:
        raise Untrusted(f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})")


def check_path(path: str) -> str:
    """Check ``path`` and every directory above it; return the resolved path that was checked.

    Symlinks on the way are resolved and their targets checked as well (the symlink's own
    directory is checked, so nobody else could have pointed it elsewhere).
    """
    if not os.path.isabs(path):
        raise Untrusted(f"{path} is not an absolute path")
    real = os.path.realpath(path)
    # Every prefix of the path as written, then of the resolved path: a symlink's directory and
    # its target's directories are both checked.
    seen: set[str] = set()
    for p in (os.path.normpath(path), real):
        parts = p.split(os.sep)
        for i in range(1, len(parts) + 1):
            prefix = os.sep.join(parts[:i]) or os.sep
            if prefix in seen:
                continue
            seen.add(prefix)
            try:
                st = os.lstat(prefix)
            except FileNotFoundError:
                raise
            except OSError as e:
                raise Untrusted(f"cannot check {prefix}: {e.strerror or e}") from None
            last = prefix == p
            if stat.S_ISLNK(st.st_mode):
                # The link itself cannot be changed in place; who may replace it is its directory's
                # business (checked as the previous component).
                if st.st_uid not in owners():
                    raise Untrusted(f"{prefix} is a symlink owned by uid {st.st_uid}")
                continue
            if not last and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and st.st_uid == 0:
                continue  # /tmp-like: others cannot touch what is ours below it
            check_st(prefix, st)
    return real


def read_trusted(fd: int, where: str, limit: int) -> bytes:
    """All of the open file ``fd``: a regular file we trust (:func:`check_st` on the descriptor we
    read, so no swap between check and read) of at most ``limit`` bytes, also if it grows."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise Malformed(f"{where} is not a regular file")
    check_st(where, st)
    if st.st_size > limit:
        raise Malformed(f"{where} is {st.st_size} bytes, over the {limit}-byte bound")
    chunks = [os.read(fd, st.st_size + 1)]  # one read when the file is as large as fstat said
    total = len(chunks[0])
    while total != st.st_size or total > limit:
        if total > limit:
            raise Malformed(f"{where} is over the {limit}-byte bound")
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
