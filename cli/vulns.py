"""``go-processes vulns`` and ``go-processes vulndb``: the vulnerability tables without osquery.

``vulns [PID|FILE ...]`` prints go_vulnerabilities' rows for those processes and files (every Go
process when none is named); ``vulndb update`` installs a fresh database, ``vulndb status``
prints go_vulndb's row. Exit codes: 0 done, 1 failed (no database, update refused), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Sequence

from . import vulndb
from .tables import Constraint, Operator, QueryContext, Row, run


def vulns_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="go-processes vulns",
                                description="Known vulnerabilities in Go processes and executables "
                                "(the go_vulnerabilities table, standalone).")
    p.add_argument("targets", nargs="*", metavar="PID|FILE", help="process IDs and executable paths "
                   "(default: every running Go process)")
    p.add_argument("--json", action="store_true", help="print rows as a JSON array")
    p.add_argument("--vulndb", metavar="PATH", help="database location (default: as the extension finds it)")
    ns = p.parse_args(argv)
    if ns.vulndb:
        vulndb.set_location(os.path.abspath(ns.vulndb))
    from .tables.go_vulnerabilities import TABLE

    pids = [t for t in ns.targets if t.isdigit()]
    files = [os.path.abspath(t) for t in ns.targets if not t.isdigit()]
    contexts = []
    if pids or not files:
        by_pid = {"pid": tuple(Constraint(Operator.EQUALS, x) for x in pids)} if pids else {}
        contexts.append(QueryContext(by_pid))
    if files:
        contexts.append(QueryContext({"path": tuple(Constraint(Operator.EQUALS, f) for f in files)}))
    rows: list[Row] = []
    notices: list[str] = []
    for ctx in contexts:
        found, said = run(TABLE, ctx)
        rows.extend(found)
        notices.extend(n for n in said if n not in notices)
    for n in notices:
        print(f"go-processes vulns: {shown(n)}", file=sys.stderr)
    if ns.json:
        json.dump([dict(r) for r in rows], sys.stdout, indent=1)
        print()
    else:
        _print(rows)
    return 1 if notices and not rows and vulndb.STORE.get().database is None else 0


def shown(value: object) -> str:
    """Text for a terminal: advisories and paths are input, so control characters (escape
    sequences, carriage returns, newlines that forge lines), format characters (bidi overrides),
    line separators and lone surrogates are shown escaped, as Python writes them (``\\x1b``)."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c == " " or unicodedata.category(c) not in _HIDDEN else
                   c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in text)


_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _print(rows: Sequence[Row]) -> None:
    by_program: dict[tuple[object, object], list[Row]] = {}
    for r in rows:
        by_program.setdefault((r.get("pid"), r.get("path")), []).append(r)
    for (pid, path), found in by_program.items():
        print(f"{'' if pid is None else f'{pid} '}{shown(path)}")
        order = {"symbol": 0, "package": 1, "module": 2}
        for r in sorted(found, key=lambda r: (order.get(str(r["level"]), 3), str(r["osv_id"]))):
            fixed = shown(r["fixed_version"]) or "no fix"
            line = (f"  {shown(r['osv_id'])}  {shown(r['level']):<7}  {shown(r['module'])}@"
                    f"{shown(r['version'])} (fixed: {fixed})")
            if r.get("withdrawn"):
                line += " [withdrawn]"
            print(line)
            print(f"      {shown(r['summary'])}")
            if r.get("symbols"):
                print(f"      {shown(r['symbols'])}")


def vulndb_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="go-processes vulndb",
                                description="Install or inspect the Go vulnerability database.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("update", help="download (or copy), validate and atomically install the database")
    up.add_argument("--source", default=vulndb.DEFAULT_SOURCE,
                    help="https:// URL of the bulk zip, or a local zip or directory "
                    f"(default {vulndb.DEFAULT_SOURCE})")
    up.add_argument("--force", action="store_true", help="install even when older than the installed copy")
    up.add_argument("--cafile", help="PEM file of CA certificates to verify the server with (instead of the "
                    "system's); verification itself cannot be turned off")
    up.add_argument("--location", help="where to install (default: as the extension finds it)")
    st = sub.add_parser("status", help="print the database's location, age and errors (go_vulndb)")
    st.add_argument("--json", action="store_true")
    st.add_argument("--location", help="database location (default: as the extension finds it)")
    ns = p.parse_args(argv)
    if ns.location:
        vulndb.set_location(os.path.abspath(ns.location))
    if ns.command == "status":
        from .tables.go_vulndb import TABLE

        row = dict(next(iter(TABLE.generate(QueryContext()))))
        if ns.json:
            print(json.dumps(row, indent=1))
        else:
            for k, v in row.items():
                print(f"{k}: {shown(v)}")
        return 1 if row.get("error") else 0
    try:
        location, _ = vulndb.location()
        done = vulndb.update(location, ns.source, force=ns.force, cafile=ns.cafile)
    except vulndb.VulnDBError as e:
        print(f"go-processes vulndb update: failed, nothing changed: {shown(e.reason)}", file=sys.stderr)
        return 1
    if done.changed:
        was = f" (was {done.previous})" if done.previous else ""
        print(f"installed {done.entries} entries modified {done.modified} at {shown(done.location)}{was}")
    else:
        print(f"already up to date: {done.entries} entries modified {done.modified} at "
              f"{shown(done.location)}")
    return 0
