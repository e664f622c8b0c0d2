"""What more than one benchmark measures the same way."""

from __future__ import annotations


def rss_mb(pid: int) -> float:
    """The resident set of ``pid`` (VmRSS) in MiB; NaN when the status file has none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
