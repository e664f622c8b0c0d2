import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

# tests import their helpers (gobuild, osqueryd) as top-level modules, and packaging's ELF reader
# (elfdeps) as the packaging scripts do.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "packaging"))

import skips

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def pytest_configure(config: pytest.Config) -> None:
    """The checkout is the code under test: refuse to test a copy installed elsewhere, which an
    edit would not reach (`make` installs the checkout editable into .venv)."""
    try:
        import go_processes
    except ImportError:
        pytest.exit("go_processes is not importable: run `make test` (or `make deps`) first", returncode=4)
    where = Path(go_processes.__file__).resolve()
    if not where.is_relative_to(ROOT):
        pytest.exit(f"go_processes is imported from {where}, not from this checkout {ROOT}: "
                    "run the tests through `make check` (its .venv has the checkout installed editable)",
                    returncode=4)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """In CI (CI=true) every prerequisite is installed, so a skip is a broken install: fail it and
    name it, unless its reason is one of skips.ALLOWED_IN_CI (a property of the machine or account).
    A developer's run keeps the skip; `-ra` (pyproject addopts) lists every one with its reason."""
    if not IN_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if skips.allowed_in_ci(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI (CI=true), where .ci/run installs every prerequisite: {reason}\n"
                       f"(skips CI accepts start with one of: {', '.join(skips.ALLOWED_IN_CI)})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """A module-level skip (importorskip, pytestmark skipif on collection) counts as well."""
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())
