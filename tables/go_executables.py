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

Inside containers, without a runtime API: a path under ``/proc/<pid>/root/`` names the file as
process <pid> sees it (its mount namespace and root), e.g. ``path LIKE '/proc/4242/root/usr/%%'``;
rows keep that spelling. The hidden column ``pid_with_namespace`` does the same as osquery's package
tables (deb_packages, python_packages...): ``WHERE pid_with_namespace = N`` runs the path and
directory constraints inside process N's root and spells the rows as N sees them, with
``pid_with_namespace`` = N (0 on rows from our own root, which ``= 0`` selects). Either way the
prefix is resolved inside that root: a symlink in the image (``/usr/bin -> /opt/x/bin``, even
absolute) stays inside it and never reaches the host's files. One query lists the Go executables
of every running container::

    SELECT p.container_id, e.path, e.version FROM go_processes p
      JOIN go_executables e ON e.pid_with_namespace = p.pid
     WHERE p.container_id != '' AND e.path LIKE '/usr/%%';

If a generate call arrives without a path or directory constraint (osquery itself never sends one)
it raises :class:`MissingConstraint`, which the extension reports as a failed call.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from ..buildinfo import BuildInfo, Identity, identity_of
from . import _build_columns as build_columns
from . import _shared, _walk
from ._api import Column, ColumnOptions, ColumnType, ContextError, Operator, QueryContext, Row, Table

TEXT, INT, BIG = ColumnType.TEXT, ColumnType.INTEGER, ColumnType.BIGINT
Opt = ColumnOptions


class MissingConstraint(ContextError):
    """Neither path nor directory is constrained: there is nothing bounded to scan."""


COLUMNS = (
    Column("path", TEXT, "Absolute path of the executable", Opt.REQUIRED | Opt.INDEX),
    Column("directory", TEXT, "Directory of the executable (as the constraint spells it)", Opt.REQUIRED),
    Column("filename", TEXT, "Name portion of the path"),
    *build_columns.COLUMNS,
    Column("size", BIG, "Size of the file in bytes"),
    Column("mtime", BIG, "Last modification time (seconds since the epoch)"),
    Column("pid_with_namespace", INT,
           "Pids that contain a namespace: with = N, paths are looked up inside process N's root (its "
           "container's files, spelled as it sees them); 0 on other rows",
           Opt.ADDITIONAL | Opt.HIDDEN),
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    for f, identity, info, root in files(ctx):
        yield _row(f, identity, info, root)


def files(ctx: QueryContext) -> Iterator[tuple[_walk.Found, Identity, BuildInfo, int | None]]:
    """The Go executables the path, directory and pid_with_namespace constraints name, with their
    identity, build info and the root they were found in (None: ours): this table's rows, and the
    file side of every table that describes files as this one finds them (go_build_settings)."""
    paths = ctx.constraints_on("path")
    directories = ctx.constraints_on("directory")
    if not paths and not directories:
        raise MissingConstraint(
            "go_executables needs a path or directory constraint (as osquery's file table)")
    budget = _walk.Budget()
    wanted = ctx.equals_int("pid_with_namespace")
    roots: list[int | None] = [None]
    if wanted is not None:
        # 0 is what host rows carry in this column: = 0 asks for them, as no constraint does.
        roots = [None] if 0 in wanted else []
        roots += [p for p in sorted(wanted) if 0 < p < 1 << 31]
    seen: set[tuple[str, str, int | None]] = set()

    def found(walked: Iterator[_walk.Found], root: int | None
              ) -> Iterator[tuple[_walk.Found, Identity, BuildInfo, int | None]]:
        for f in walked:
            key = (f.path, f.directory, root)
            if key in seen:
                continue
            seen.add(key)
            identity = identity_of(f.st)
            result = _shared.DETECTOR.detect(identity, partial(_walk.open_found, f))
            if isinstance(result, BuildInfo):
                yield f, identity, result, root

    for root in roots:
        for c in paths:
            if c.op == Operator.EQUALS:
                with _walk.file_at(c.expr, root) as f:
                    yield from found(iter(() if f is None else (f,)), root)
            elif c.op == Operator.LIKE:
                yield from found(_walk.files_like(c.expr, budget, root), root)
        for c in directories:
            if c.op == Operator.EQUALS:
                yield from found(_walk.files_in(c.expr, budget, root), root)
            elif c.op == Operator.LIKE:
                yield from found(_walk.files_in_dirs_like(c.expr, budget, root), root)


def _row(f: _walk.Found, identity: Identity, bi: BuildInfo, root: int | None) -> Row:
    return {
        "path": f.path,
        "directory": f.directory,
        "filename": f.name,
        **build_columns.values(bi),
        "size": identity[2],
        "mtime": identity[3] // 1_000_000_000,
        "pid_with_namespace": root or 0,
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
        "SELECT path, version FROM go_executables WHERE path LIKE '/proc/4242/root/usr/local/bin/%'",
        "SELECT p.container_id, e.path, e.version, e.module FROM go_processes p "
        "JOIN go_executables e ON e.pid_with_namespace = p.pid "
        "WHERE p.container_id != '' AND e.directory = '/usr/local/bin'",
    ),
)
