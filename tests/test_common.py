"""go_processes.common: the bounded buffer and what an OS error means, on real system calls."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from go_processes.common import DENIED, GONE, UNEXPECTED, Buffer, meaning


def _error(fn) -> OSError:
    with pytest.raises(OSError) as e:
        fn()
    return e.value


def test_buffer_keeps_the_newest_and_counts_what_it_dropped():
    b: Buffer[int] = Buffer(3)
    for i in range(10):
        b.put(i)
    assert len(b) == 3
    assert b.drain() == ([7, 8, 9], 7)
    assert b.drain() == ([], 0)  # a drain empties it and resets the count
    with pytest.raises(ValueError):
        Buffer(0)


def test_buffer_from_many_threads_loses_nothing_it_does_not_count():
    b: Buffer[int] = Buffer(1000)
    threads = [threading.Thread(target=lambda: [b.put(i) for i in range(5000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items, dropped = b.drain()
    assert len(items) == 1000 and len(items) + dropped == 20000


def test_os_errors_mean_gone_denied_or_unexpected(tmp_path: Path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to("target")
    gone = _error(lambda: os.open(tmp_path / "missing", os.O_RDONLY))
    gone_pid = _error(lambda: os.kill(2**22 + 12345, 0))  # above pid_max: no such process
    not_dir = _error(lambda: os.open(tmp_path / "target" / "x", os.O_RDONLY))
    refused = _error(lambda: os.open(tmp_path / "link", os.O_RDONLY | os.O_NOFOLLOW))
    is_dir = _error(lambda: os.open(tmp_path, os.O_WRONLY))
    assert [meaning(e) for e in (gone, gone_pid, not_dir)] == [GONE] * 3
    assert meaning(refused) == DENIED
    assert meaning(is_dir) == UNEXPECTED
