"""go_libraries: Go inside programs that are not Go, one row per (process, Go shared object it maps).

A Python process that loaded a Go ``-buildmode=c-shared`` library through ctypes or cffi, a C
program or sshd that dlopen()ed one (a Go PAM module), a Go program that opened a Go plugin: each
runs the Go runtime, the standard library and the library's modules, which ``go_processes`` (the
executable only) does not see. The rows carry the build columns ``go_processes`` has, with the
same meanings; a Go program's own executable is not repeated here.

What is mapped is what is read: the file is stat'ed and opened through the mapping itself
(``/proc/<pid>/map_files/...``), so a library deleted or replaced after loading, and one inside a
container, is the file the process runs, never a same-named host file. This costs a read of
``/proc/<pid>/maps`` per process (bounded, see ``procs``), paid by this table and the library rows
of ``go_modules`` and ``go_vulnerabilities`` only; each distinct file is looked at once per query
and a non-Go one (libc, libssl) is a cache hit by file identity after its first read.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..procs import libraries
from . import _build_columns as build_columns
from . import _shared
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnOptions as Opt
from ._api import ColumnType as T

COLUMNS = (
    Column("pid", T.BIGINT, "ID of the process that maps the library", Opt.INDEX | Opt.OPTIMIZED),
    Column("exe", T.TEXT, "Name of that process, as go_processes spells it (comm, or argv[0]'s base name)"),
    Column("path", T.TEXT,
           "Path of the Go shared object as the process maps it (inside its root for a container), "
           "without the ' (deleted)' suffix"),
    Column("on_disk", T.INTEGER,
           "1 the mapped file is still at path, 0 it was deleted or replaced after loading (the row "
           "describes what is mapped)"),
    *build_columns.COLUMNS,
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    pids = ctx.equals_int("pid")
    paths = ctx.equals("path")
    for proc, found in libraries(_shared.DETECTOR, pids):
        for lib, info in found:
            if paths is not None and lib.path not in paths:
                continue
            yield {"pid": proc.pid, "exe": proc.name, "path": lib.path, "on_disk": lib.on_disk,
                   **build_columns.values(info)}


TABLE = Table(
    name="go_libraries",
    description="Go shared objects (c-shared libraries, plugins) mapped into running processes, Go or "
    "not: one row per (process, library), with the build columns of go_processes. A Go program's own "
    "executable is in go_processes, not here.",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT pid, exe, path, version, module, build_mode FROM go_libraries;",
        "SELECT l.pid, l.exe, l.path, l.version FROM go_libraries l "
        "WHERE l.pid NOT IN (SELECT pid FROM go_processes);",
        "SELECT p.name, p.cmdline, l.path, l.version FROM processes p JOIN go_libraries l USING (pid);",
        "SELECT pid, exe, path FROM go_libraries WHERE on_disk = 0;",
    ),
)
