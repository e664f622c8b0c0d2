"""go_vulndb: the vulnerability database go_vulnerabilities uses: where, how fresh, and what is wrong.

Always one row, so a Fleet policy can flag hosts where the database is missing, refused (a file
or directory others can write), unreadable or stale. Reading it opens the database as
go_vulnerabilities would (lazily, from the configured location, after the same trust checks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from .. import vulndb
from ._api import Column, QueryContext, Row, Table
from ._api import ColumnType as T

COLUMNS = (
    Column("location", T.TEXT, "Path of the database (a directory, or the bulk .zip)"),
    Column("source", T.TEXT,
           "Where the location was set: flag, GO_PROCESSES_VULNDB, the config file's path, or default"),
    Column("modified", T.TEXT, "The database's own modified time (index/db.json), RFC 3339"),
    Column("entries", T.INTEGER, "Number of advisories (ID/*.json) in the database"),
    Column("age_days", T.INTEGER, "Whole days since modified (NULL without a database)"),
    Column("invalid_entries", T.INTEGER,
           "Advisories that could not be read (malformed, over bounds, refused); reading every entry "
           "is paid only when this column is used"),
    Column("error", T.TEXT,
           "Why no database is used: missing, refused (permissions), unreadable; empty when fine"),
)


def generate(ctx: QueryContext) -> Iterator[Row]:
    try:
        location, source = vulndb.location()
    except vulndb.VulnDBError as e:
        location, source = "", e.reason
    status = vulndb.STORE.get()
    db = status.database
    row: dict[str, object] = {"location": status.location or location, "source": source,
                              "error": status.error}
    if db is not None:
        row.update(modified=db.modified, entries=len(db), age_days=_age_days(db.modified))
        if ctx.uses("invalid_entries"):
            row["invalid_entries"] = db.load_all()
    yield row


def _age_days(modified: str) -> int | None:
    try:
        when = datetime.fromisoformat(modified.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((time.time() - when.timestamp()) // 86400)


TABLE = Table(
    name="go_vulndb",
    description=(
        "The Go vulnerability database that go_vulnerabilities uses: one row with its location, "
        "modified time, size, age and, when it cannot be used, why (missing, refused because someone "
        "other than root could write it, unreadable). Update it with `go-processes vulndb update`."
    ),
    columns=COLUMNS,
    generate=generate,
    examples=(
        "SELECT location, modified, entries, age_days, error FROM go_vulndb",
        "SELECT 1 FROM go_vulndb WHERE error = '' AND age_days <= 7",
    ),
)
