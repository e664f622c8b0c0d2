"""The shared Detector: one read per distinct file, errors cached, and never a wrong answer cached
under another file's identity."""

import os
from functools import partial

import fixtures
from go_processes.buildinfo import BuildInfo, Detector, UnreadableFile, UnsupportedFormat, identity_of

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
    identity = (1, 2, 3, 4)
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
