"""go_build_settings: every build setting a Go program records, one row per setting.

``go version -m`` prints them as ``build`` lines: ``-tags``, ``-ldflags``, ``GOEXPERIMENT``,
``GOAMD64``, ``GOFIPS140``, ``DefaultGODEBUG``, ``CGO_CFLAGS`` and the rest, of which the other
tables turn a few into columns. Keys and values are the program's ``runtime/debug.BuildSetting``s,
as ``go version -m -json`` prints them (the text form quotes a value with spaces; the value is the
same), in the order the program records them.

Running processes by default (``pid =``/``IN`` reads only those, through ``tables/_per_process.py``);
with a ``path`` or ``directory`` constraint and none on ``pid``, the files they name, found exactly
as ``go_executables`` finds them (``=``, ``LIKE`` with ``%``/``%%``, ``pid_with_namespace``), so the
two join by path. ``key =``/``IN`` only narrows.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ..buildinfo import BuildInfo
from ..procs import Process
from . import go_executables
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnOptions as Opt
from ._api import ColumnType as T
from ._per_process import attach, child_rows, wanted_values

COLUMNS = (
    Column("pid", T.BIGINT, "Process ID; NULL on the rows of a file named by a path or directory constraint",
           Opt.INDEX | Opt.OPTIMIZED),
    Column("path", T.TEXT, "Path of the executable (the process's, or the file as go_executables spells it)",
           Opt.INDEX),
    Column("directory", T.TEXT,
           "Directory of the executable (for files: as the constraint spells it, as in go_executables)",
           Opt.ADDITIONAL),
    Column("key", T.TEXT, "Build setting, e.g. -tags, -ldflags, GOEXPERIMENT, GOAMD64, GOFIPS140, "
           "DefaultGODEBUG", Opt.ADDITIONAL),
    Column("value", T.TEXT, "Its value, as runtime/debug.BuildSetting holds it (go version -m -json)"),
    Column("pid_with_namespace", T.INTEGER,
           "As in go_executables: with = N, file paths are looked up inside process N's root; 0 on "
           "other rows", Opt.ADDITIONAL | Opt.HIDDEN),
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    wanted = wanted_values(ctx, ("key",))
    # File rows have pid NULL, which no pid constraint lets through: with one, path only narrows
    # the process rows.
    if (ctx.constraints_on("path") or ctx.constraints_on("directory")) and not ctx.constraints_on("pid"):
        for f, _, info, root in go_executables.files(ctx):
            for row in attach(None, f.path, _settings(info), wanted):
                yield {**row, "directory": f.directory, "pid_with_namespace": root or 0}
        return
    for row in child_rows(ctx, _process_settings, narrow=("key",), path_for=("directory",)):
        path = str(row["path"])
        yield {**row, "directory": posixpath.dirname(path) if path else "", "pid_with_namespace": 0}


def _process_settings(proc: Process, info: BuildInfo) -> Iterator[dict[str, object]]:
    return _settings(info)


def _settings(info: BuildInfo) -> Iterator[dict[str, object]]:
    for key, value in info.settings:
        yield {"key": key, "value": value}


TABLE = Table(
    name="go_build_settings",
    description="Every build setting Go programs record (the build lines of go version -m), one row per "
    "setting: for running processes, or with a path or directory constraint for files as "
    "go_executables finds them.",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT pid, path, value AS tags FROM go_build_settings WHERE key = '-tags'",
        "SELECT p.pid, p.exe, s.value FROM go_processes p JOIN go_build_settings s USING (pid) "
        "WHERE s.key = 'GOEXPERIMENT'",
        "SELECT path, key, value FROM go_build_settings WHERE directory = '/usr/local/bin'",
        "SELECT path, value FROM go_build_settings WHERE path LIKE '/opt/%%' AND key = '-ldflags'",
    ),
)
