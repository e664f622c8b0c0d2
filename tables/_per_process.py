"""Tables with child rows per running Go process (go_modules, go_vulnerabilities, and the next
ones): pid push-down, the scan, the expansion into child rows, the filters and the pid and path
columns, in one place.

Rows come from each Go process's executable and, for a table that passes ``library_children``
(and has a ``library`` column), from the Go shared objects every process maps as ``go_libraries``
finds them (c-shared libraries, plugins; ``library`` = 1, ``path`` names the library; 0 on the
executable's rows). ``library = 0`` skips the second part, which reads every process's maps;
``library = 1`` skips the first.

The rule every constraint obeys here: it only narrows what the table returns without it. A
``pid =``/``IN`` constraint reads only those processes; ``path =`` keeps the processes whose
executable path is one of the values; ``=`` on a child column named in ``narrow`` keeps the child
rows with one of the values. SQLite re-checks every predicate, so the filters may be looser than
the query but never stricter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from ..buildinfo import BuildInfo
from ..procs import Library, Process, libraries, running_go
from . import _shared
from ._api import QueryContext, Row

Children = Callable[[Process, BuildInfo], Iterable[Mapping[str, object]]]
# (process, build info of the library, the library) -> child rows
LibraryChildren = Callable[[Process, BuildInfo, Library], Iterable[Mapping[str, object]]]


def child_rows(ctx: QueryContext, children: Children, narrow: tuple[str, ...] = (),
               path_for: tuple[str, ...] = (),
               library_children: LibraryChildren | None = None) -> Iterator[Row]:
    """``children(proc, info)`` for every running Go process the constraints allow, each child row
    with ``pid`` and ``path`` in front; the path is read when the query uses it or one of the
    table's columns in ``path_for`` (derived from it). With ``library_children`` (a table that has
    a ``library`` column), also ``library_children(proc, info, lib)`` for every Go library a process
    maps, and ``library`` in front of every row."""
    pids = ctx.equals_int("pid")
    paths = ctx.equals("path")
    kinds = ctx.equals_int("library") if library_children is not None else None
    wanted = wanted_values(ctx, narrow)
    if kinds is None or 0 in kinds:
        kind = 0 if library_children is not None else None
        with_path = paths is not None or ctx.uses("path", *path_for)
        for proc, info in running_go(_shared.DETECTOR, pids, path=with_path):
            if paths is not None and proc.path not in paths:
                continue
            yield from attach(proc.pid, proc.path, children(proc, info), wanted, kind)
    if library_children is not None and (kinds is None or 1 in kinds):
        for proc, found in libraries(_shared.DETECTOR, pids):
            for lib, info in found:
                if paths is None or lib.path in paths:
                    yield from attach(proc.pid, lib.path, library_children(proc, info, lib), wanted, 1)


def wanted_values(ctx: QueryContext, columns: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The ``=``/``IN`` values of each of ``columns`` the query constrains."""
    return {c: v for c in columns if (v := ctx.equals(c)) is not None}


def attach(pid: int | None, path: str, children: Iterable[Mapping[str, object]],
           wanted: Mapping[str, frozenset[str]], library: int | None = None) -> Iterator[Row]:
    """The child rows whose values ``wanted`` allows, with ``pid`` and ``path`` in front, and
    ``library`` when given (tables with that column)."""
    for child in children:
        if all(child[c] in values for c, values in wanted.items()):
            if library is None:
                yield {"pid": pid, "path": path, **child}
            else:
                yield {"pid": pid, "path": path, "library": library, **child}


LIBRARY_DOC = ("1 when path is a Go library the process maps (c-shared, plugin: see go_libraries), 0 when "
               "it is the process's executable")
