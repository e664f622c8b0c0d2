"""Entry point of ``go_processes.ext``, the executable osqueryd launches.

osqueryd runs an extension as ``[--verbose] --socket PATH --timeout N --interval N``. Unknown
extra arguments are reported and ignored rather than fatal: an extension that dies on start-up
is relaunched by osqueryd every few seconds forever, which helps nobody.

Start-up cost is paid on every (re)launch, so this module imports nothing heavy until the
arguments are parsed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..tables import Table

DEFAULT_SOCKET = "/var/osquery/osquery.em"  # osqueryd's default --extensions_socket on Linux/macOS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="go_processes.ext",
        description="osquery extension serving the go_processes table (launched by osqueryd/osqueryi).",
    )
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="path of osquery's extension manager socket")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the manager")
    p.add_argument("--interval", type=float, default=3.0, help="seconds between pings of the manager")
    p.add_argument("--verbose", action="store_true", help="log every call on stderr")
    p.add_argument("--vulndb", help="Go vulnerability database for go_vulnerabilities (osqueryi only: "
                   "osqueryd passes no custom flags; see README for GO_PROCESSES_VULNDB and the config file)")
    p.add_argument("--events_expiry", type=int, help="seconds go_process_events keeps a row (default 3600; "
                   "also GO_PROCESSES_EVENTS_EXPIRY or events_expiry in the config file)")
    p.add_argument("--events_max", type=int, help="rows go_process_events keeps at most, the newest "
                   "(default 50000; also GO_PROCESSES_EVENTS_MAX or events_max in the config file)")
    return p


def version() -> str:
    """This distribution's version, as reported to osquery (``osquery_extensions.version``).

    Read from the package, not from importlib.metadata: that costs 15 ms of start-up and is
    missing from frozen single-file builds.
    """
    from ..common import __version__

    return str(__version__)


def run(argv: Sequence[str] | None = None, tables: Sequence[Table] | None = None) -> int:
    """Run the extension until it is told to stop; returns the exit code.

    ``tables`` defaults to every table module in ``go_processes.tables``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["vulndb"], ["vulns"]):
        # The single file is all a host gets (no go-processes command): it also updates the
        # database (the Debian package's timer runs `go_processes.ext vulndb update`).
        from ..vulns import vulndb_main, vulns_main

        return (vulndb_main if argv[0] == "vulndb" else vulns_main)(argv[1:])
    args, unknown = _parser().parse_known_args(argv)
    from ..common import LOG, configure

    configure(args.verbose, prog="go_processes.ext")
    if unknown:
        LOG.warning("ignoring unknown arguments: %s", " ".join(unknown))
    if args.vulndb:
        from ..vulndb import set_location

        set_location(os.path.abspath(args.vulndb))
    if args.events_expiry is not None or args.events_max is not None:
        from ..tables._exec_source import set_options

        set_options(args.events_expiry, args.events_max)
    from .server import Extension, Options

    if tables is None:
        from ..tables import all_tables

        tables = all_tables()
    if not tables:
        LOG.warning("no tables found; registering none")
    options = Options(socket=args.socket, timeout=args.timeout, interval=args.interval, verbose=args.verbose)
    return Extension(options, tables).run(version())


def main(argv: Sequence[str] | None = None, tables: Sequence[Table] | None = None) -> NoReturn:
    """Console-script entry: :func:`run`, then end the process at once.

    ``os._exit`` skips interpreter teardown, so serving threads that are mid-call cannot delay
    the exit or print noise while modules are torn down.
    """
    try:
        code = run(argv, tables)
    except KeyboardInterrupt:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
