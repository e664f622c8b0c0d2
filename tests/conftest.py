import sys
from pathlib import Path

import pytest

# tests import their helpers (gobuild, osqueryd) as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]


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
