"""go_modules: the modules compiled into each running Go program, one row per (process, module).

Rows per process: the main module (``main`` = 1, when the binary records one), every dependency,
and one row for the Go standard library, module ``stdlib``, whose version is the Go version the
binary records without experiment suffixes (``go1.21.4 X:arenas`` -> ``go1.21.4``; the same spelling
as ``go version`` and the Go vulnerability database's ``stdlib`` module), empty when the binary does
not record it (gccgo, Go <= 1.12 found by pclntab). So one query covers toolchain and dependencies.

``pid = / IN`` reads only those processes (pid is INDEX|OPTIMIZED, so a join with
``listening_ports`` or ``go_processes`` costs one /proc lookup per pid); ``module = / IN`` skips the
other rows (SQLite re-checks it). Module data comes from the shared Detector, keyed by the
executable's identity: a binary already read by another table or query is not read again.
Go libraries that processes map (``go_libraries``) have their rows too, with ``path`` naming the
library and ``library`` = 1; ``library = 0`` spares reading every process's maps.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..buildinfo import BuildInfo, Module, go_release
from ..procs import Library, Process
from ._api import Column, ColumnOptions, ColumnType, QueryContext, Row, Table
from ._per_process import LIBRARY_DOC, child_rows

TEXT, INT, BIG = ColumnType.TEXT, ColumnType.INTEGER, ColumnType.BIGINT
Opt = ColumnOptions

STDLIB = "stdlib"

COLUMNS = (
    Column("pid", BIG, "Process ID", Opt.INDEX | Opt.OPTIMIZED),
    Column("path", TEXT, "Path of the file the module is compiled into: the executable the process runs, "
           "or a Go library it maps (library = 1)"),
    Column("module", TEXT, "Module path (stdlib for the Go standard library)", Opt.ADDITIONAL),
    Column("version", TEXT, "Module version as recorded (v0.17.0, (devel)); for stdlib the Go version"),
    Column("sum", TEXT, "Module checksum (h1:...); empty for the main module and for replaced modules"),
    Column("replace_module", TEXT, "Path of the replacement module or directory (=> line), empty if none"),
    Column("replace_version", TEXT, "Version of the replacement; (devel) for a directory replacement"),
    Column("replace_sum", TEXT, "Checksum of the replacement module"),
    Column("main", INT, "1 for the main module, 0 for dependencies and stdlib"),
    Column("library", INT, LIBRARY_DOC, Opt.ADDITIONAL),
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    return child_rows(ctx, _children, narrow=("module",), library_children=_library_children)


def _library_children(proc: Process, info: BuildInfo, lib: Library) -> Iterator[dict[str, object]]:
    return _children(proc, info)


def _children(proc: Process, info: BuildInfo) -> Iterator[dict[str, object]]:
    for module, main in _modules(info):
        rep = module.replace
        yield {
            "module": module.path,
            "version": module.version,
            "sum": module.sum,
            "replace_module": rep.path if rep else "",
            "replace_version": rep.version if rep else "",
            "replace_sum": rep.sum if rep else "",
            "main": main,
        }


def _modules(bi: BuildInfo) -> Iterator[tuple[Module, int]]:
    if bi.main is not None and bi.main.path:
        yield bi.main, 1
    for dep in bi.deps:
        yield dep, 0
    yield Module(STDLIB, go_release(bi.go_version)), 0


TABLE = Table(
    name="go_modules",
    description="Modules (and the Go standard library) compiled into each running Go program, and into "
    "each Go library (c-shared, plugin) a running process maps (library = 1).",
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT pid, path, version FROM go_modules WHERE module = 'golang.org/x/net'",
        "SELECT p.exe, m.module, m.version FROM go_processes p JOIN go_modules m USING (pid)",
        "SELECT DISTINCT m.path, m.version FROM listening_ports l JOIN go_modules m USING (pid) "
        "WHERE m.module = 'stdlib'",
        "SELECT pid, path, version FROM go_modules WHERE library = 1 AND module = 'stdlib'",
    ),
)
