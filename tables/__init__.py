"""The tables this extension serves: one module per table, each defining ``TABLE``.

Adding a table means writing one module here; it is found by name, in alphabetical order.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._api import (
    Column,
    ColumnOptions,
    ColumnType,
    Constraint,
    ContextError,
    Operator,
    QueryContext,
    Row,
    Table,
    run,
    serving,
)


def all_tables() -> tuple[Table, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        table = getattr(module, "TABLE", None)
        if isinstance(table, Table):
            found.append(table)
    return tuple(found)


__all__ = [
    "Column",
    "ColumnOptions",
    "ColumnType",
    "Constraint",
    "ContextError",
    "Operator",
    "QueryContext",
    "Row",
    "Table",
    "all_tables",
    "run",
    "serving",
]
