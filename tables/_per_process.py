"""Tables with child rows per running Go process (go_modules, go_vulnerabilities, and the next
ones): pid push-down, the scan, the expansion into child rows, the filters and the pid and path
columns, in one place.

The rule every constraint obeys here: it only narrows what the table returns without it. A
``pid =``/``IN`` constraint reads only those processes; ``path =`` keeps the processes whose
executable path is one of the values; ``=`` on a child column named in ``narrow`` keeps the child
rows with one of the values. SQLite re-checks every predicate, so the filters may be looser than
the query but never stricter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from ..buildinfo import BuildInfo
from ..procs import Process, running_go
from ._api import QueryContext, Row
from ._shared import DETECTOR

Children = Callable[[Process, BuildInfo], Iterable[Mapping[str, object]]]


def child_rows(ctx: QueryContext, children: Children, narrow: tuple[str, ...] = (),
               path_for: tuple[str, ...] = ()) -> Iterator[Row]:
    """``children(proc, info)`` for every running Go process the constraints allow, each child row
    with ``pid`` and ``path`` in front; the path is read when the query uses it or one of the
    table's columns in ``path_for`` (derived from it)."""
    pids = ctx.equals_int("pid")
    paths = ctx.equals("path")
    wanted = wanted_values(ctx, narrow)
    for proc, info in running_go(DETECTOR, pids, path=paths is not None or ctx.uses("path", *path_for)):
        if paths is not None and proc.path not in paths:
            continue
        yield from attach(proc.pid, proc.path, children(proc, info), wanted)


def wanted_values(ctx: QueryContext, columns: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The ``=``/``IN`` values of each of ``columns`` the query constrains."""
    return {c: v for c in columns if (v := ctx.equals(c)) is not None}


def attach(pid: int | None, path: str, children: Iterable[Mapping[str, object]],
           wanted: Mapping[str, frozenset[str]]) -> Iterator[Row]:
    """The child rows whose values ``wanted`` allows, with ``pid`` and ``path`` in front."""
    for child in children:
        if all(child[c] in values for c, values in wanted.items()):
            yield {"pid": pid, "path": path, **child}
