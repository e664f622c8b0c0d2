"""The README documents every column as the tables define it (one fact, one place)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_reference_matches_the_tables():
    generated = subprocess.run([sys.executable, "-m", "go_processes", "--schema"], capture_output=True,
                               text=True, check=True, timeout=60).stdout
    text = README.read_text()
    block = re.search(r"<!-- tables:begin -->\n(.*)<!-- tables:end -->", text, re.S)
    assert block, "README lacks the tables:begin/end markers"
    assert "### `go_processes`" in generated
    assert block.group(1).strip() == generated.strip(), (
        "README's table reference is stale: regenerate it with `make readme`")


def test_the_opening_names_every_table():
    """A newcomer reading only the first paragraphs learns that each table exists."""
    from go_processes.tables import all_tables

    opening = README.read_text().split("\n## ", 1)[0]
    names = [t.name for t in all_tables()]
    assert len(names) >= 9
    assert [n for n in names if f"`{n}`" not in opening] == []
