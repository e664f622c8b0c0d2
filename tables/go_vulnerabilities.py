"""go_vulnerabilities: which Go programs contain known-vulnerable code, one row per (program, advisory).

Matching is ``govulncheck -mode=binary``'s (see ``vulndb``): modules from the build info plus
``stdlib`` at the Go version, OSV ranges, GOOS/GOARCH, then the program's function list, read
from the pclntab (which stripping keeps), says whether a vulnerable function is linked in
(``level`` = symbol), only its package (package), or neither (module).

Running processes by default (``pid =``/``IN`` reads only those, as ``go_processes``), their
executables and the Go libraries they map (``library`` = 1, ``path`` names the library, see
``go_libraries``; ``library = 0`` spares reading every process's maps); with
``path =`` and no constraint on ``pid`` the named files instead, so the table joins
``go_executables`` by path. Every other constraint only narrows what the table returns without it.
The function list is read only when the query uses ``level``, ``packages`` or ``symbols``;
findings are kept per (executable, database), so a warm query costs a stat per process. Without a database the
query answers no rows and says why in the call's status message (and ``go_vulndb.error``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from .. import vulndb
from ..buildinfo import BuildInfo, BuildInfoError, FuncTable, Identity, UnreadableFile, identity_of
from ..common import Cache
from ..procs import Library, Process, executable_functions, library_functions
from . import _shared, _walk
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnOptions as Opt
from ._api import ColumnType as T
from ._per_process import LIBRARY_DOC, attach, child_rows, wanted_values

_SYMBOL_COLUMNS = ("level", "packages", "symbols")

COLUMNS = (
    Column("pid", T.BIGINT, "Process ID; NULL for a file named by a path constraint",
           Opt.INDEX | Opt.OPTIMIZED),
    Column("path", T.TEXT, "Path of the file the findings are about: the process's executable, a Go "
           "library it maps (library = 1), or the file a path = constraint names", Opt.INDEX),
    Column("osv_id", T.TEXT, "Advisory ID in the Go vulnerability database (GO-YYYY-NNNN)"),
    Column("aliases", T.TEXT, "Other IDs of the advisory (CVE-..., GHSA-...), comma-separated"),
    Column("summary", T.TEXT, "One-line summary of the advisory"),
    Column("module", T.TEXT, "Affected module path, or stdlib for the Go standard library", Opt.ADDITIONAL),
    Column("version", T.TEXT, "Version of that module in the program (for stdlib the Go version)"),
    Column("fixed_version", T.TEXT,
           "First release above version that fixes the advisory (go1.21.12, v0.17.0); empty when none"),
    Column("level", T.TEXT,
           "symbol: a vulnerable function is linked in; package: a vulnerable package but none of its "
           "vulnerable functions; module: only the module version is affected (or no function list)"),
    Column("packages", T.TEXT, "Vulnerable packages linked into the program, comma-separated"),
    Column("symbols", T.TEXT,
           "Vulnerable functions linked in, comma-separated, as package.Type.Method (package.* when the "
           "advisory marks every function of the package)"),
    Column("url", T.TEXT, "The advisory's page: https://pkg.go.dev/vuln/<osv_id>"),
    Column("published", T.TEXT, "When the advisory was published (RFC 3339)"),
    Column("modified", T.TEXT, "When the advisory was last modified (RFC 3339)"),
    Column("withdrawn", T.TEXT, "When the advisory was withdrawn (RFC 3339); empty when it stands"),
    Column("db_modified", T.TEXT, "Modified time of the vulnerability database that was used (go_vulndb)"),
    Column("library", T.INTEGER, LIBRARY_DOC + " or a file a path = constraint names", Opt.ADDITIONAL),
)

# (executable, database, with function list) -> the rows of its findings without pid and path.
Rows = list[dict[str, object]]
_cache: Cache[tuple[Identity, int, bool], Rows] = Cache(4096)


def generate(ctx: QueryContext) -> Iterator[Row]:
    status = vulndb.STORE.get()
    db = status.database
    if db is None:
        ctx.notice(f"no rows: {status.error}")
        return
    with_symbols = ctx.uses(*_SYMBOL_COLUMNS)
    paths = ctx.equals("path")
    # File rows have pid NULL, which no pid constraint lets through: with one, path only narrows
    # the process rows (a join ON v.pid = p.pid AND v.path = p.path sends both).
    if paths is not None and not ctx.constraints_on("pid"):
        for path in sorted(paths):
            found = _file(path, db, with_symbols)
            if found is not None:
                yield from attach(None, path, found, wanted_values(ctx, ("module",)), 0)
        return

    def findings(proc: Process, info: BuildInfo, lib: Library | None = None) -> Rows:
        identity = proc.exe_identity if lib is None else lib.identity
        assert identity is not None  # its build info was read by this identity
        found = _cached(identity, db, with_symbols)
        if found is None:
            functions = None
            if with_symbols:
                functions = (executable_functions(proc, _shared.DETECTOR) if lib is None
                             else library_functions(proc, lib, _shared.DETECTOR))
            found = _store(identity, db, with_symbols, info, functions)
        return found

    yield from child_rows(ctx, findings, narrow=("module",), library_children=findings)


def _file(path: str, db: vulndb.Database, with_symbols: bool) -> Rows | None:
    """Findings for the file ``path`` names, found as go_executables finds it (a regular file, never
    a symlink; a /proc/<pid>/root/... path resolved inside that root), so the two join by path."""
    with _walk.file_at(path) as f:
        if f is None:
            return None
        identity = identity_of(f.st)
        found = _cached(identity, db, with_symbols)
        if found is not None:
            return found
        info = _shared.DETECTOR.detect(identity, partial(_walk.open_found, f))
        if not isinstance(info, BuildInfo):
            return None
        # The detector opens by this identity both times, so the list is of the same file.
        functions = None
        if with_symbols:
            functions = _shared.DETECTOR.functions(identity, partial(_walk.open_found, f))
        return _store(identity, db, with_symbols, info, functions)


def program(info: BuildInfo, functions: FuncTable | BuildInfoError | None = None) -> vulndb.Program:
    """What matching needs of one executable: its build info and, if read, its function table
    (an error reading it leaves the findings at module level)."""
    symbols = None
    if isinstance(functions, FuncTable):
        symbols = vulndb.package_symbols(functions.functions, info.path)
    return vulndb.Program(
        go_version=info.go_version,
        modules=vulndb.modules_of(info.main, info.deps),
        goos=info.goos,
        goarch=info.goarch or info.arch,
        format=info.format,
        symbols=symbols,
    )


def _cached(identity: Identity, db: vulndb.Database, with_symbols: bool) -> Rows | None:
    found = _cache.get((identity, db.generation, with_symbols))
    if found is None and not with_symbols:
        found = _cache.get((identity, db.generation, True))  # the precise answer serves both
    return found


def _store(identity: Identity, db: vulndb.Database, with_symbols: bool, info: BuildInfo,
           functions: FuncTable | BuildInfoError | None) -> Rows:
    """Match and keep the rows, unless the function list was wanted but could not be read this
    time (the process exited, the file changed): that answer is not the executable's."""
    rows = [_template(f, db) for f in vulndb.match(db, program(info, functions))]
    if with_symbols and (functions is None or isinstance(functions, UnreadableFile)):
        return rows
    _cache.put((identity, db.generation, with_symbols), rows)
    return rows


def _template(f: vulndb.Finding, db: vulndb.Database) -> dict[str, object]:
    e = f.entry
    return {
        "osv_id": e.id,
        "aliases": ",".join(e.aliases),
        "summary": e.summary,
        "module": f.module,
        "version": f.version,
        "fixed_version": f.fixed_version,
        "level": f.level,
        "packages": ",".join(f.packages),
        "symbols": ",".join(f.symbols),
        "url": f"https://pkg.go.dev/vuln/{e.id}",
        "published": e.published,
        "modified": e.modified,
        "withdrawn": e.withdrawn,
        "db_modified": db.modified,
    }


TABLE = Table(
    name="go_vulnerabilities",
    description=(
        "Known vulnerabilities (Go vulnerability database, see go_vulndb) in running Go programs and the Go "
        "libraries running processes map (library = 1), or in "
        "the files a `path =` constraint names: one row per (program, advisory), with the most precise "
        "level at which vulnerable code is present. Function lists come from the pclntab, so stripped "
        "programs are judged as their unstripped twins."
    ),
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT pid, path, osv_id, module, version, fixed_version, symbols FROM go_vulnerabilities "
        "WHERE level = 'symbol'",
        "SELECT DISTINCT v.pid, v.path, v.osv_id, v.fixed_version, l.address, l.port "
        "FROM listening_ports l JOIN go_vulnerabilities v USING (pid) "
        "WHERE v.level = 'symbol' AND l.address NOT IN ('127.0.0.1', '::1')",
        "SELECT e.path, v.osv_id, v.module, v.version, v.level FROM go_executables e "
        "JOIN go_vulnerabilities v USING (path) WHERE e.path LIKE '/usr/local/bin/%'",
        "SELECT module, osv_id, COUNT(DISTINCT path) AS programs FROM go_vulnerabilities "
        "GROUP BY module, osv_id ORDER BY programs DESC",
        "SELECT pid, path, osv_id, symbols FROM go_vulnerabilities WHERE library = 1 AND level = 'symbol'",
    ),
)
