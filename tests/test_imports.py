"""Importing the package builds nothing: the shared singletons exist from their first use on."""

from __future__ import annotations

import subprocess
import sys

# Run in a fresh interpreter: in this one, other tests have long since used both singletons.
_FRESH = """
import importlib
import pkgutil
import threading
import go_processes.tables as tables
import go_processes.tables._shared as shared
import go_processes.vulndb as vulndb
import go_processes.vulndb._store as store
from go_processes.buildinfo import Detector

# Every table module, helpers included, and the list of tables the extension serves.
modules = [info.name for info in pkgutil.iter_modules(tables.__path__, tables.__name__ + ".")]
assert len(modules) >= 10 and "go_processes.tables.go_processes" in modules, modules
for name in modules:
    importlib.import_module(name)
assert len(tables.all_tables()) >= 9

built = [name for name, module in (("DETECTOR", shared), ("STORE", vulndb), ("STORE", store))
         if name in vars(module)]
assert not built, f"built at import: {built}"

# First use builds each once, whichever thread gets there first; later uses get the same one.
seen = []
threads = [threading.Thread(target=lambda: seen.append((shared.DETECTOR, vulndb.STORE))) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert len({id(d) for d, _ in seen}) == 1 and len({id(s) for _, s in seen}) == 1, seen
detector, db_store = seen[0]
assert isinstance(detector, Detector) and isinstance(db_store, store.Store)
from go_processes.tables._shared import DETECTOR
from go_processes.vulndb import STORE
assert DETECTOR is detector and STORE is db_store
print("ok")
"""


def test_importing_any_table_module_builds_neither_the_detector_nor_the_vulndb_store():
    r = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stderr
