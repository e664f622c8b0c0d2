"""The shared Detector: one read per distinct file, errors cached, and never a wrong answer cached
under another file's identity."""

import os
import time
from functools import partial

import fixtures
from go_processes.buildinfo import BuildInfo, Detector, UnreadableFile, UnsupportedFormat, identity_of
from go_processes.common import Cache
from gobuild import go_version_m

go_exe = fixtures.go_exe


def _opener(path):
    return partial(os.open, str(path), os.O_RDONLY)


def test_reads_once_and_caches_go_and_non_go(go_exe, tmp_path):
    go = go_exe("default")
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    detector = Detector()
    opens = []

    def counting(path):
        opens.append(path)
        return os.open(str(path), os.O_RDONLY)

    for _ in range(3):
        assert isinstance(detector.detect(identity_of(os.stat(go)), partial(counting, go)), BuildInfo)
        # a shell script is no executable format we read (and cached as such, not re-opened)
        assert isinstance(detector.detect(identity_of(os.stat(script)), partial(counting, script)),
                          UnsupportedFormat)
    assert opens == [go, script]


def test_a_different_file_behind_the_open_is_not_cached(go_exe):
    a, b = go_exe("default"), go_exe("stripped")
    detector = Detector()
    identity_a = identity_of(os.stat(a))
    # The stat named a, but by the time of the open the path leads to b (pid reuse, exec, rename).
    result = detector.detect(identity_a, _opener(b))
    assert isinstance(result, UnreadableFile)
    assert detector.cached(identity_a) is None
    assert isinstance(detector.detect(identity_a, _opener(a)), BuildInfo)


def test_open_errors_are_not_cached(tmp_path):
    detector = Detector()
    missing = tmp_path / "gone"
    identity = (1, 2, 3, 4, 5)
    assert isinstance(detector.detect(identity, _opener(missing)), UnreadableFile)
    assert detector.cached(identity) is None


def test_bounded(tmp_path):
    detector = Detector(max_entries=3)
    for i in range(5):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"\x7fELF" + bytes(60))
        detector.detect(identity_of(os.stat(p)), _opener(p))
    assert len(detector) == 3


def test_detect_path_refuses_symlinks(go_exe, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(go_exe("default"))
    identity, result = Detector().detect_path(link)
    assert identity is None and isinstance(result, UnreadableFile)
    identity, result = Detector().detect_path(go_exe("default"))
    assert isinstance(result, BuildInfo) and identity == identity_of(os.stat(go_exe("default")))


def test_non_go_result_is_typed(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"plain text, not an executable")
    _, result = Detector().detect_path(p)
    assert isinstance(result, UnsupportedFormat)


def test_rewritten_in_place_with_mtime_put_back_is_read_again(go_exe, tmp_path):
    """The owner of a binary rewrites it in place at the same size and restores its mtime
    (utimensat): the new content must be read, because the ctime moved (no user can set it)."""
    path = tmp_path / "prog"
    path.write_bytes(go_exe("default").read_bytes())
    old = go_version_m(path)
    assert old is not None
    before = os.stat(path)
    detector = Detector()
    _, first = detector.detect_path(path)
    assert isinstance(first, BuildInfo) and first.go_version == old["GoVersion"]

    version = old["GoVersion"].encode()
    changed = version[:-1] + bytes([version[-1] ^ 1])  # the last digit, one off: same length
    data = path.read_bytes()
    assert version in data
    for _ in range(100):  # ctime ticks with the kernel's coarse clock: wait for it to move
        with open(path, "r+b") as f:
            f.write(data.replace(version, changed))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        if after.st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    same = (before.st_ino, before.st_size, before.st_mtime_ns)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == same
    assert after.st_ctime_ns != before.st_ctime_ns
    assert go_version_m(path)["GoVersion"] == changed.decode()  # the toolchain sees the edit

    _, second = detector.detect_path(path)
    assert isinstance(second, BuildInfo) and second.go_version == changed.decode()
    second = detector.detect(identity_of(os.stat(path)), _opener(path))
    assert isinstance(second, BuildInfo) and second.go_version == changed.decode()


def test_read_errors_are_not_cached(go_exe):
    """An error during the read (here EBADF: the opener hands over an fd that cannot be read, as
    EIO would fail a read) says nothing about the content: the next detect reads the file."""
    go = go_exe("default")
    identity = identity_of(os.stat(go))
    detector = Detector()
    unreadable = partial(os.open, str(go), os.O_PATH | os.O_CLOEXEC)  # fstat works, pread does not
    result = detector.detect(identity, unreadable)
    assert isinstance(result, UnreadableFile) and "read" in result.reason, result
    assert detector.cached(identity) is None
    assert isinstance(detector.detect(identity, _opener(go)), BuildInfo)


def test_cache_evicts_the_least_recently_used():
    cache = Cache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
