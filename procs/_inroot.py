"""Resolve a path the way a process sees it, inside its root: the one resolver for the container
walk (``tables/_walk.py``), the gops agent's pidfile and the passwd file (``_linux.py``).

What the kernel's ``openat2(RESOLVE_IN_ROOT)`` does, done by hand so it also works where that call
is missing: every component is opened relative to its parent's descriptor with ``O_NOFOLLOW``; a
symlink is read through a descriptor of the link itself (so the link checked is the link read)
and walked here, an absolute target from the root's descriptor; ``..`` stops at the root. At most
:data:`MAX_SYMLINKS` links per resolution, as the kernel's MAXSYMLINKS.

The owner policy says whose links are followed: ``owners=None`` follows any link (a container
image's, whoever unpacked it); a set follows only links those uids own, so a link another user
planted in a shared directory such as /tmp is refused (ELOOP) while a root-owned ``/home ->
var/home`` (Fedora Atomic, Silverblue, CoreOS) is followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Sequence

MAX_SYMLINKS = 40
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
_O_PATH = getattr(os, "O_PATH", 0)
_O_LINK = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# Directories on the way are only searched, never listed: O_PATH needs no read permission on them.
_O_STEP = (_O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if _O_PATH else _O_DIR


def open_in_root(
    root_fd: int,
    parts: Sequence[str],
    *,
    start_fd: int | None = None,
    owners: Collection[int] | None = None,
    directory: bool = True,
) -> int:
    """A descriptor for ``parts`` resolved from ``start_fd`` (default: ``root_fd``) without leaving
    the root: a directory opened for reading, or with ``directory=False`` an ``O_PATH`` descriptor
    of the final entry (never a symlink; the caller checks its type and owner). The directories on
    the way are opened with ``O_PATH``: searched, never read. Raises OSError:
    ELOOP for a link the policy refuses or too many links; EXDEV for ``..`` above a start that is
    not the root (a relative path cannot be placed inside the root)."""
    todo = [p for p in reversed(parts) if p not in ("", ".")]
    stack = [os.dup(root_fd if start_fd is None else start_fd)]
    below_root = start_fd is None  # stack[0] is the root itself
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                elif not below_root:
                    raise OSError(errno.EXDEV, "'..' above the starting directory")
                continue
            last = not todo
            if last and not directory:
                fd = os.open(name, _O_LINK, dir_fd=stack[-1])
                if not stat.S_ISLNK(os.fstat(fd).st_mode):
                    return fd
                target = _link_target(fd, owners)
            else:
                try:
                    fd = os.open(name, _O_STEP | os.O_NOFOLLOW, dir_fd=stack[-1])
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise
                    fd = os.open(name, _O_LINK, dir_fd=stack[-1])
                    if not stat.S_ISLNK(os.fstat(fd).st_mode):
                        os.close(fd)
                        raise  # a file where a directory is needed
                    target = _link_target(fd, owners)
                else:
                    stack.append(fd)
                    continue
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many symlinks inside the root")
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
                if not below_root:
                    os.close(stack.pop())
                    stack.append(os.dup(root_fd))
                    below_root = True
            todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
        fd = stack.pop()
        if not directory:
            return fd  # only when parts named no file (the caller's fstat finds a directory)
        try:
            return os.open(".", _O_DIR, dir_fd=fd)  # a directory to list, not only to search
        finally:
            os.close(fd)
    finally:
        for fd in stack:
            os.close(fd)


def require_file(st: os.stat_result, path: str, owners: Collection[int] | None) -> None:
    """Raise OSError unless ``st`` is a regular file (EINVAL) owned by one of ``owners`` when
    given (EACCES): what every opener here checks before it reads."""
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", path)
    if owners is not None and st.st_uid not in owners:
        raise OSError(errno.EACCES, f"owned by uid {st.st_uid}", path)


def _link_target(fd: int, owners: Collection[int] | None) -> str:
    """The target of the symlink ``fd`` (an O_PATH descriptor of the link), if ``owners`` allow it
    to be followed; the descriptor is closed."""
    try:
        if owners is not None and os.fstat(fd).st_uid not in owners:
            raise OSError(errno.ELOOP, "symlink owned by a user the policy does not trust")
        return os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)
