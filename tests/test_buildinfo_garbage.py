"""A read leaves nothing for the cyclic collector: no answer or error holds an image, and no image
is a reference cycle, so a file's buffers (its string tables: megabytes in a large program) are
freed when the read returns, not whenever the collector next runs (issue 19: the cold read of
every new executable is the hot path)."""

import contextlib
import gc
from collections.abc import Callable
from pathlib import Path

import fixtures
import pytest
from go_processes.buildinfo import BuildInfoError, read_build_info, read_functions

go_exe = fixtures.go_exe


def _cyclic_garbage(read: Callable[[Path], object], path: Path) -> int:
    """Objects the cyclic collector frees after one read of ``path`` (the result dropped)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        with contextlib.suppress(BuildInfoError):
            read(path)
        return gc.collect()
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("read", [read_build_info, read_functions], ids=["build_info", "functions"])
@pytest.mark.parametrize("name", ["default", "stripped", "pie", "cgo", "old", "gccgo", "windows_amd64",
                                  "darwin_arm64", "fat"])
def test_go_executable_read_leaves_no_cycle(go_exe, name, read):
    assert _cyclic_garbage(read, go_exe(name)) == 0


@pytest.mark.parametrize("read", [read_build_info, read_functions], ids=["build_info", "functions"])
def test_non_go_elf_read_leaves_no_cycle(read):
    # A C program: its dynamic symbols are searched for Go's and gccgo's names, then it is no Go.
    assert _cyclic_garbage(read, fixtures.c_binary()) == 0
