"""What a table is: a name, column definitions with their options, and a generate function.

Nothing here speaks Thrift. The extension turns a :class:`Table` into osquery routes, parses the
context osqueryd sends into a :class:`QueryContext`, and converts the values a generate function
yields into osquery's string rules; table modules only describe columns and produce rows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag
from typing import Any, TypeVar, overload

PLAIN_INT = re.compile(r"-?[0-9]{1,20}")  # an integer a push-down can use exactly (SQLite re-checks)
log = logging.getLogger("go_processes.tables")


class ColumnType(str, Enum):
    """The only type names osquery accepts in routes (core/sql/column.cpp)."""

    TEXT = "TEXT"
    INTEGER = "INTEGER"  # 32-bit: use BIGINT for anything that can exceed 2**31-1
    BIGINT = "BIGINT"
    UNSIGNED_BIGINT = "UNSIGNED BIGINT"
    DOUBLE = "DOUBLE"
    BLOB = "BLOB"


class ColumnOptions(IntFlag):
    """osquery's column option bits (core/sql/column.h)."""

    DEFAULT = 0
    INDEX = 1  # constraints on this column reach generate
    REQUIRED = 2  # a query without a constraint on it fails
    ADDITIONAL = 4  # constraints reach generate, column is not an index
    OPTIMIZED = 8  # a whole IN (...) list arrives in one call (osquery >= 5.14)
    HIDDEN = 16  # left out of SELECT *


class Operator(IntEnum):
    """Constraint operators as osquery numbers them in the generate context."""

    EQUALS = 2
    GREATER_THAN = 4
    LESS_THAN_OR_EQUALS = 8
    LESS_THAN = 16
    GREATER_THAN_OR_EQUALS = 32
    MATCH = 64
    LIKE = 65
    GLOB = 66
    REGEXP = 67


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    description: str
    options: ColumnOptions = ColumnOptions.DEFAULT


@dataclass(frozen=True, slots=True)
class Constraint:
    op: int  # an Operator value; unknown numbers are kept, not rejected
    expr: str


class ContextError(ValueError):
    """The generate context is not JSON of the shape osquery sends."""


@dataclass(frozen=True)
class QueryContext:
    """The constraints and used columns of one SQLite xFilter, as osquery sends them.

    Filtering on constraints is an optimisation only: SQLite re-checks every predicate on the
    rows, so a table may return extra rows but must never miss one.
    """

    constraints: Mapping[str, tuple[Constraint, ...]] = field(default_factory=dict)
    cols_used: frozenset[str] | None = None  # None: osquery did not say, assume every column
    # Messages for whoever ran the query (the call's status message, the extension's log), for
    # conditions that are not failures: "no vulnerability database" still answers, with no rows.
    notices: list[str] = field(default_factory=list, compare=False)

    def notice(self, message: str) -> None:
        """Tell the caller something about this answer without failing the query."""
        if message not in self.notices:
            self.notices.append(message)

    @classmethod
    def parse(cls, raw: str | Mapping[str, Any] | None) -> QueryContext:
        """Accept osquery 5's context and the pre-3.0 form (op as a string, empty list as "")."""
        if raw is None or raw == "":
            return cls()
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as e:
            raise ContextError(f"context is not JSON: {e}") from None
        if not isinstance(data, Mapping):
            raise ContextError("context is not a JSON object")
        constraints: dict[str, tuple[Constraint, ...]] = {}
        entries = data.get("constraints") or []
        if not isinstance(entries, list):
            raise ContextError("constraints is not a list")
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise ContextError("constraint without a name")
            items = entry.get("list") or []
            if not isinstance(items, list):
                raise ContextError(f"constraint list of {entry['name']} is not a list")
            parsed = []
            for item in items:
                if not isinstance(item, Mapping):
                    raise ContextError(f"constraint on {entry['name']} is not an object")
                try:
                    op = int(item.get("op", 0))
                except (TypeError, ValueError):
                    raise ContextError(f"constraint op on {entry['name']} is not a number") from None
                parsed.append(Constraint(op, str(item.get("expr", ""))))
            constraints[entry["name"]] = constraints.get(entry["name"], ()) + tuple(parsed)
        used = data.get("colsUsed")
        cols_used = frozenset(str(c) for c in used) if isinstance(used, list) else None
        return cls(constraints, cols_used)

    def uses(self, *columns: str) -> bool:
        """True when the query reads any of ``columns`` (so their cost must be paid)."""
        return self.cols_used is None or any(c in self.cols_used for c in columns)

    def constraints_on(self, column: str) -> tuple[Constraint, ...]:
        return self.constraints.get(column, ())

    def equals(self, column: str) -> frozenset[str] | None:
        """The values an ``=``/``IN`` constraint allows for ``column``, or None if unconstrained.

        Several ``=`` constraints on one column (an IN list, or OR-ed terms split by SQLite into
        separate xFilter calls) arrive as one list: a row passes if it matches any of them.
        """
        values = [c.expr for c in self.constraints_on(column) if c.op == Operator.EQUALS]
        return frozenset(values) if values else None

    def equals_int(self, column: str) -> frozenset[int] | None:
        """:meth:`equals` for integer columns; None (unconstrained) when any value is not a plain
        decimal integer: SQLite also equates 1000.0, '1e3' or ' 1000' with 1000 and re-checks every
        row itself, so a push-down that cannot be exact must not narrow the scan."""
        values = self.equals(column)
        if values is None:
            return None
        out = set()
        for v in values:
            if not PLAIN_INT.fullmatch(v):
                return None
            out.add(int(v))
        return frozenset(out)


Row = Mapping[str, object]
"""A row: column name to str, int, float, bool or None (None is osquery's NULL / unknown)."""

R = TypeVar("R")


@dataclass(frozen=True)
class Table:
    """A table: its columns and ``generate``; optionally ``start`` and ``stop``, called once each
    by whoever serves it (the extension once it listens and before it exits, the command around
    its one query), for a table that keeps a reader thread or a kernel subscription between
    queries. Importing a table module must not start anything: that is what ``start`` is for."""

    name: str
    description: str
    columns: tuple[Column, ...]
    generate: Callable[[QueryContext], Iterable[Row]]
    examples: tuple[str, ...] = ()
    start: Callable[[], None] | None = None
    stop: Callable[[], None] | None = None

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@overload
def run(table: Table, context: QueryContext) -> tuple[list[Row], tuple[str, ...]]: ...
@overload
def run(table: Table, context: QueryContext,
        collect: Callable[[Iterable[Row]], R]) -> tuple[R, tuple[str, ...]]: ...


def run(table: Table, context: QueryContext,
        collect: Callable[[Iterable[Row]], Any] = list) -> tuple[Any, tuple[str, ...]]:
    """Run ``table`` for ``context``: its rows, gathered by ``collect`` (the extension converts
    them to osquery's strings as they come), and the notices the table left for whoever asked
    (why an answer is empty: "no vulnerability database"). The one path for the extension and
    the command, so neither drops them."""
    rows = collect(table.generate(context))
    return rows, tuple(context.notices)


@contextmanager
def serving(tables: Iterable[Table]) -> Iterator[None]:
    """Start every table that has a ``start`` hook, and stop them (in reverse order) when the
    block ends, however it ends. A hook that fails is logged and leaves its table serving what it
    can (an events table without privilege answers with a notice); it never stops the others."""
    started: list[Table] = []
    try:
        for t in tables:
            if t.start is not None:
                try:
                    t.start()
                except Exception as e:
                    log.warning("%s: start failed: %s", t.name, e)
                    continue
            started.append(t)
        yield
    finally:
        for t in reversed(started):
            if t.stop is not None:
                try:
                    t.stop()
                except Exception as e:
                    log.warning("%s: stop failed: %s", t.name, e)
