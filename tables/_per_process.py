"""Tables with child rows per running Go process (go_modules, go_vulnerabilities, and the next
ones): pid push-down, the scan, the expansion into child rows, the filters and the pid and path
columns, in one place.

Rows come from each Go process's executable (``library`` = 0) and, as ``go_libraries`` finds them,
from the Go shared objects every process maps (c-shared libraries, plugins; ``library`` = 1, ``path``
names the library). ``library = 0`` skips the second part, which reads every process's maps;
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
from ._api import QueryContext, Row
from ._shared import DETECTOR

# (process, build info, the library it is of or None for the executable) -> child rows
Children = Callable[[Process, BuildInfo, Library | None], Iterable[Mapping[str, object]]]


def child_rows(ctx: QueryContext, children: Children, narrow: tuple[str, ...] = ()) -> Iterator[Row]:
    """``children(proc, info, None)`` for every running Go process the constraints allow, then
    ``children(proc, info, lib)`` for every Go library a process maps, each child row with ``pid``,
    ``path`` and ``library`` in front."""
    pids = ctx.equals_int("pid")
    paths = ctx.equals("path")
    kinds = ctx.equals_int("library")
    wanted = wanted_values(ctx, narrow)
    if kinds is None or 0 in kinds:
        for proc, info in running_go(DETECTOR, pids, path=paths is not None or ctx.uses("path")):
            if paths is not None and proc.path not in paths:
                continue
            yield from attach(proc.pid, proc.path, children(proc, info, None), wanted)
    if kinds is None or 1 in kinds:
        for proc, found in libraries(DETECTOR, pids):
            for lib, info in found:
                if paths is None or lib.path in paths:
                    yield from attach(proc.pid, lib.path, children(proc, info, lib), wanted, library=1)


def wanted_values(ctx: QueryContext, columns: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The ``=``/``IN`` values of each of ``columns`` the query constrains."""
    return {c: v for c in columns if (v := ctx.equals(c)) is not None}


def attach(pid: int | None, path: str, children: Iterable[Mapping[str, object]],
           wanted: Mapping[str, frozenset[str]], library: int = 0) -> Iterator[Row]:
    """The child rows whose values ``wanted`` allows, with ``pid``, ``path`` and ``library`` in
    front."""
    for child in children:
        if all(child[c] in values for c, values in wanted.items()):
            yield {"pid": pid, "path": path, "library": library, **child}


LIBRARY_DOC = ("1 when path is a Go library the process maps (c-shared, plugin: see go_libraries), 0 when "
               "it is the process's executable")
