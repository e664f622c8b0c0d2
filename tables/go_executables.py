"""go_executables: Go executables on disk, found the way osquery's ``file`` table finds files.

Constraints mirror ``file`` (specs/utility/file.table): ``path`` is REQUIRED|INDEX and
``directory`` REQUIRED, so osquery refuses a query that constrains neither (any constraint on either
satisfies it). ``path = X`` reads that file; ``path LIKE P`` walks with osquery's glob rules (``%``
one level, a trailing ``%%`` recursive); ``directory = D`` lists the regular files in D (not
recursive); ``directory LIKE P`` lists the files of every directory P matches. Other operators match
nothing, as in ``file``. Several constraints in one query give the union of their files.

Only Go executables are rows: each regular file is read once per identity (device, inode, size,
mtime) through the shared Detector, so a warm re-scan costs one lstat per file. Symlinks are never
rows and never followed below what the query names; special files are never opened. The walk's
limits (depth 64, 100,000 entries, 60 s per query) and what happens at them are documented in
``tables/_walk.py``: the walk stops, the rows found so far are returned and a warning is logged.

If a generate call arrives without a path or directory constraint (osquery itself never sends one)
it raises :class:`MissingConstraint`, which the extension reports as a failed call.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import partial

from ..buildinfo import BuildInfo, Identity, identity_of
from . import _executable as executable
from . import _walk
from ._api import Column, ColumnOptions, ColumnType, ContextError, Operator, QueryContext, Row, Table
from ._shared import DETECTOR

TEXT, INT, BIG = ColumnType.TEXT, ColumnType.INTEGER, ColumnType.BIGINT
Opt = ColumnOptions


class MissingConstraint(ContextError):
    """Neither path nor directory is constrained: there is nothing bounded to scan."""


COLUMNS = (
    Column("path", TEXT, "Absolute path of the executable", Opt.REQUIRED | Opt.INDEX),
    Column("directory", TEXT, "Directory of the executable (as the constraint spells it)", Opt.REQUIRED),
    Column("filename", TEXT, "Name portion of the path"),
    *executable.COLUMNS,
    Column("size", BIG, "Size of the file in bytes"),
    Column("mtime", BIG, "Last modification time (seconds since the epoch)"),
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    paths = ctx.constraints_on("path")
    directories = ctx.constraints_on("directory")
    if not paths and not directories:
        raise MissingConstraint(
            "go_executables needs a path or directory constraint (as osquery's file table)")
    budget = _walk.Budget()
    seen: set[tuple[str, str]] = set()

    def rows(found: Iterator[_walk.Found]) -> Iterator[Row]:
        for f in found:
            key = (f.path, f.directory)
            if key in seen:
                continue
            seen.add(key)
            identity = identity_of(f.st)
            result = DETECTOR.detect(identity, partial(_walk.open_found, f))
            if isinstance(result, BuildInfo):
                yield _row(f.path, f.directory, f.name, identity, result)

    for c in paths:
        if c.op == Operator.EQUALS:
            row = _exact(c.expr, seen)
            if row is not None:
                yield row
        elif c.op == Operator.LIKE:
            yield from rows(_walk.files_like(c.expr, budget))
    for c in directories:
        if c.op == Operator.EQUALS:
            yield from rows(_walk.files_in(c.expr, budget))
        elif c.op == Operator.LIKE:
            yield from rows(_walk.files_in_dirs_like(c.expr, budget))


def _exact(path: str, seen: set[tuple[str, str]]) -> Row | None:
    """``path = X``: that file if it is a regular Go executable (a symlink is not followed)."""
    if not os.path.isabs(path):
        return None
    directory, filename = os.path.split(path)
    if (path, directory) in seen:
        return None
    seen.add((path, directory))
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    identity = identity_of(st)
    result = DETECTOR.cached(identity)
    if result is None:
        opened, result = DETECTOR.detect_path(path)
        if opened is not None:
            identity = opened
    if not isinstance(result, BuildInfo):
        return None
    return _row(path, directory, filename, identity, result)


def _row(path: str, directory: str, filename: str, identity: Identity, bi: BuildInfo) -> Row:
    return {
        "path": path,
        "directory": directory,
        "filename": filename,
        **executable.values(bi, identity),
        "size": identity[2],
        "mtime": identity[3] // 1_000_000_000,
    }


TABLE = Table(
    name="go_executables",
    description=(
        "Go executables on disk, found as osquery's file table finds files: constrain `path` (`=`, or "
        "`LIKE` with `%` for one level and a trailing `%%` for recursion) or `directory` (`=`, not "
        "recursive). Symlinks are never followed below the named prefix; FIFOs, sockets, devices and "
        f"pseudo file systems are skipped. Per query the walk stops after {_walk.MAX_DEPTH} levels, "
        f"{_walk.MAX_ENTRIES:,} directory entries or {_walk.TIME_BUDGET:.0f} s, returns the rows found "
        "so far and logs a warning."
    ),
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT path, version, module, module_version FROM go_executables WHERE directory = '/usr/local/bin'",
        "SELECT path, version FROM go_executables WHERE path LIKE '/opt/%%'",
        "SELECT * FROM go_executables WHERE path = '/usr/bin/containerd'",
    ),
)
