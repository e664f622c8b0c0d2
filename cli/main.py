"""The standalone command: the extension's rows without osquery.

``go-processes`` lists Go processes as gops does (``*`` marks a listening gops agent; ``+`` marks a
process that is not Go but hosts a Go library, shown with the library's Go version and path);
``--json`` prints the same rows for machines; ``--table`` prints another table that needs no
constraint (a table that cannot answer, go_vulnerabilities without a database, says why on stderr
and exits 1, as ``vulns`` does); ``go-processes inspect FILE|DIR ...`` reads executables like
``go version -m``; ``go-processes vulns`` and ``go-processes vulndb`` are in ``vulns.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence

from .common import configure
from .tables import ColumnOptions, Constraint, Operator, QueryContext, Row, Table, all_tables, run, serving


def _rows(table: Table, pids: Sequence[int]) -> tuple[list[Row], tuple[str, ...]]:
    constraints = {}
    if pids:
        constraints["pid"] = tuple(Constraint(Operator.EQUALS, str(p)) for p in pids)
    with serving([table]):
        return run(table, QueryContext(constraints))


def _print_gops_style(rows: Sequence[Row], hosts: Sequence[Row] = ()) -> None:
    """gops's listing; ``hosts``: go_libraries rows of processes that are not Go themselves, each a
    line with ``+`` after the name and the library's version and path (no ppid: not read)."""
    header = ("PID", "PPID", "Name", "GoVersion", "Path")
    lines = [header]
    go_pids = {r.get("pid") for r in rows}
    marked = [{**r, "ppid": "", "exe": f"{r.get('exe') or ''}+"}
              for r in hosts if r.get("pid") not in go_pids]
    for r in sorted([*rows, *marked], key=lambda r: int(r.get("pid") or 0)):  # type: ignore[call-overload]
        name = f"{r.get('exe') or ''}{'*' if r.get('agent') else ''}"
        version = str(r.get("version") or r.get("version_range") or "?")
        lines.append((str(r.get("pid")), str(r.get("ppid")), name, version, str(r.get("path") or "")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(f"{v:<{w}}" for v, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """The command; returns its exit code. Like a Unix tool it stops quietly when the reader of its
    output goes away (``go-processes | head``): exit status 141, as if killed by SIGPIPE."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
        return code
    except BrokenPipeError:
        # Whatever is still buffered would fail again at exit: send it nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13  # SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["inspect"]:
        from .inspect import main as inspect_main

        return inspect_main(args[1:])
    if args[:1] in (["vulns"], ["vulndb"]):
        from .vulns import vulndb_main, vulns_main

        return (vulns_main if args[0] == "vulns" else vulndb_main)(args[1:])
    tables = {t.name: t for t in all_tables()}
    parser = argparse.ArgumentParser(
        prog="go-processes",
        description="List Go programs running on this host (the go_processes osquery table, standalone; "
        "* marks a listening gops agent, + a process that is not Go but hosts a Go library). "
        "`go-processes inspect FILE|DIR...` reads executables like `go version -m`.",
    )
    parser.add_argument("--json", action="store_true", help="print rows as a JSON array")
    parser.add_argument("--pid", type=int, action="append", default=[], help="only this pid (repeatable)")
    parser.add_argument("--schema", action="store_true",
                        help="print every table's columns as Markdown (the README's table reference)")
    parser.add_argument("--table", default="go_processes",
                        choices=sorted(n for n, t in tables.items() if not _needs_constraint(t)),
                        help="table to print (default: go_processes)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log on stderr what was left out and why (unreadable processes, walk limits)")
    ns = parser.parse_args(args)
    configure(ns.verbose, prog="go-processes")
    if ns.schema:
        print(schema_markdown(tables.values()), end="")
        return 0
    table = tables[ns.table]
    try:
        rows, notices = _rows(table, ns.pid)
    except KeyboardInterrupt:
        return 130
    for notice in notices:
        print(f"go-processes: {table.name}: {notice}", file=sys.stderr)
    if ns.json:
        json.dump([dict(r) for r in rows], sys.stdout, indent=1, default=str)
        print()
    elif table.name == "go_processes":
        hosts, _ = _rows(tables["go_libraries"], ns.pid)
        _print_gops_style(rows, hosts)
    else:
        names = [c.name for c in table.columns]
        print("\t".join(names))
        for r in rows:
            print("\t".join("" if r.get(n) is None else str(r.get(n)) for n in names))
    # A notice with no rows is a table that could not answer (no vulnerability database): as
    # `go-processes vulns`, say why (above) and fail, so a script does not take it for "none".
    return 1 if notices and not rows else 0


def schema_markdown(tables: Iterable[Table]) -> str:
    """The README's reference for every table, generated from the column definitions themselves."""
    out = []
    for t in tables:
        out.append(f"### `{t.name}`\n\n{t.description}\n\n| column | type | description |\n|---|---|---|\n")
        for c in t.columns:
            flags = [f.name.lower() for f in ColumnOptions if f and f in c.options and f.name]
            extra = f" *({', '.join(flags)})*" if flags else ""
            out.append(f"| `{c.name}` | {c.type.value} | {c.description}{extra} |\n")
        if t.examples:
            statements = (q if q.rstrip().endswith(";") else q.rstrip() + ";" for q in t.examples)
            out.append("\n```sql\n" + "\n".join(statements) + "\n```\n")
        out.append("\n")
    return "".join(out)


def _needs_constraint(table: Table) -> bool:
    return any(c.options & ColumnOptions.REQUIRED for c in table.columns)


if __name__ == "__main__":
    sys.exit(main())
