"""A Table as osquery wants to see it: routes for registration, rows as maps of strings.

osquery parses every value from a string by the column's type (an empty string is NULL for
INTEGER/BIGINT/DOUBLE; integers are read base 0 with trailing junk ignored), so the conversion is
ours to get right: the SDK's ``str(v)`` turns None into "None" and True into "True".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable

from ..common import Cache
from ..tables import ColumnType, Row, Table

_PLANS_MAX = 256  # distinct colsUsed sets remembered per table
_INTEGER_TYPES = frozenset({ColumnType.INTEGER, ColumnType.BIGINT, ColumnType.UNSIGNED_BIGINT})


def routes(table: Table) -> list[dict[str, str]]:
    """The route list osquery reads at registration and on the "columns" action."""
    return [
        {"id": "column", "name": c.name, "type": ColumnType(c.type).value, "op": str(int(c.options))}
        for c in table.columns
    ]


def _text(value: str) -> str:
    # A NUL cuts a C string short somewhere between osquery and its log; lone surrogates (from
    # os.fsdecode of non-UTF-8 bytes) cannot be encoded by thrift and would break the reply.
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            except UnicodeEncodeError:  # a surrogate os.fsdecode never makes (JSON's "\ud800")
                value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _integer(value: object) -> str:
    if type(value) is str:
        return _text(value)
    if isinstance(value, float) and not isinstance(value, bool):
        return str(int(value)) if math.isfinite(value) else ""
    return _other(value)


def _other(value: object) -> str:
    if type(value) is str:
        return _text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))  # int(): an IntEnum's str() is its name on Python 3.10
    if isinstance(value, float):
        return repr(float(value)) if math.isfinite(value) else ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text(bytes(value).decode("utf-8", "replace"))
    return _text(str(value))


def _converter(kind: ColumnType) -> Callable[[object], str]:
    return _integer if kind in _INTEGER_TYPES else _other


def row_converter(table: Table) -> Callable[[Iterable[Row], Collection[str] | None], list[dict[str, str]]]:
    """A function turning the table's rows into osquery rows, every value a string.

    Every column the query reads is present (missing ones become "", NULL for numeric types);
    keys the table does not declare are dropped. With ``used`` (the context's colsUsed) the other
    columns are left out: SQLite never asks osquery for them (a column absent from a row reads as
    NULL), so neither converting nor sending them buys anything.
    """
    plan = [(c.name, _converter(ColumnType(c.type))) for c in table.columns]
    plans: Cache[frozenset[str], list[tuple[str, Callable[[object], str]]]] = Cache(_PLANS_MAX)

    def convert(rows: Iterable[Row], used: Collection[str] | None = None) -> list[dict[str, str]]:
        todo = plan
        if used is not None:
            key = frozenset(used)
            found = plans.get(key)
            if found is None:
                # At least one column, so that a row is never an empty map (count(*) reads none).
                found = [p for p in plan if p[0] in key] or plan[:1]
                plans.put(key, found)
            todo = found
        out = []
        for row in rows:
            get = row.get
            converted: dict[str, str] = {}
            for name, conv in todo:
                value = get(name)
                # The common cases inline, exactly as the converters treat them: plain ASCII text
                # without NUL is kept, a plain int (not bool, not an enum) is its decimal string.
                if type(value) is str and value.isascii() and "\x00" not in value:
                    converted[name] = value
                elif type(value) is int:
                    converted[name] = str(value)
                else:
                    converted[name] = conv(value)
            out.append(converted)
        return out

    return convert
