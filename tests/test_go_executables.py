"""go_executables through the osqueryd stand-in, over a real tree of Go fixtures, non-Go files and traps.

Independent oracles: which files a LIKE pattern reaches comes from the C library's own glob(3),
driven the way osquery's genGlobs drives it (filesystem.cpp: '%' -> '*', re-glob with "/**"
appended while a trailing "**" finds something), evaluated BEFORE the symlinks, FIFO and socket are
added (so it never sees them); which of those files are Go, and what they contain, comes from the
Go toolchain (`go version`, `go version -m -json`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import skips
from fixtures import GO_FIXTURES, build_fixture, c_binary, git_head
from gobuild import go_version, go_version_m
from osqueryd import EQUALS, GLOB, LIKE, CallError, OsqueryD, osquery5_context

# --- glob(3) as osquery calls it --------------------------------------------------------------


class _GlobT(ctypes.Structure):
    _fields_ = [("gl_pathc", ctypes.c_size_t), ("gl_pathv", ctypes.POINTER(ctypes.c_char_p)),
                ("gl_offs", ctypes.c_size_t), ("gl_flags", ctypes.c_int), ("_rest", ctypes.c_void_p * 16)]


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
GLOB_MARK, GLOB_BRACE, GLOB_TILDE = 1 << 1, 1 << 10, 1 << 12  # glibc <glob.h>


def platform_glob(pattern: str) -> list[str]:
    """posix/fileops.cpp platformGlob: glob(GLOB_TILDE | GLOB_MARK | GLOB_BRACE)."""
    g = _GlobT()
    _LIBC.glob(pattern.encode(), GLOB_TILDE | GLOB_MARK | GLOB_BRACE, None, ctypes.byref(g))
    try:
        return [g.gl_pathv[i].decode() for i in range(g.gl_pathc)]
    finally:
        _LIBC.globfree(ctypes.byref(g))


def gen_globs(like: str) -> list[str]:
    """filesystem.cpp genGlobs with GLOB_ALL: directories end in '/' (GLOB_MARK)."""
    path = like.replace("%", "*")
    results: list[str] = []
    for _ in range(1, 64):
        found = platform_glob(path)
        results += found
        wild = path.rfind("**")
        if not found or wild < 0 or wild + 3 < len(path):
            break
        path += "/**"
    return results


# --- the tree ---------------------------------------------------------------------------------

GO_NAMES = ("default", "mods", "stripped", "old", "vcs")


class Tree:
    def __init__(self, root: Path, outside: Path) -> None:
        self.root = root
        self.outside = outside
        self.go: set[str] = set()  # regular Go files, as the Go toolchain says
        # (pattern, directory mode) -> (path, directory) rows of osquery's file table, from glob(3)
        self.like_rows: dict[tuple[str, bool], set[tuple[str, str]]] = {}
        self.locked_readable = True  # can this user list the mode-000 directory (root can)?

    def is_go(self, paths: list[str]) -> set[str]:
        return {p for p in paths if p in self.go}

    def expected_like(self, pattern: str, dirs: bool = False) -> set[tuple[str, str]]:
        """The file table's rows for this LIKE, restricted to the files the Go toolchain reads."""
        return {(p, d) for p, d in self.like_rows[(pattern, dirs)] if p in self.go}


def _copy(src: Path, dst: Path, mode: int = 0o755) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, mode)


PATTERNS = ["{root}/%", "{root}/%%", "{root}/bin/%%", "{root}/%/%", "{root}/{{bin,lib}}/%", "{root}/bin/h%",
            "{root}/bin/%/", "{root}/%/%/deep/%", "{root}/%%/deep/%"]


@pytest.fixture(scope="module")
def tree() -> Iterator[Tree]:
    exes = {name: build_fixture(name) for name in GO_NAMES}
    base = Path(tempfile.mkdtemp(prefix="gobin-"))
    os.chmod(base, 0o755)
    root, outside = base / "tree", base / "outside"
    root.mkdir()
    outside.mkdir()
    # Go files at several depths, one hidden, one non-executable copy.
    _copy(exes["default"], root / "bin" / "hello")
    _copy(exes["mods"], root / "bin" / "mods")
    _copy(exes["stripped"], root / "lib" / "sub" / "deep" / "stripped")
    _copy(exes["old"], root / "bin" / "sub" / "old-go")
    _copy(exes["vcs"], root / "lib" / "vcs-go")
    _copy(exes["default"], root / "bin" / ".hidden-go")
    _copy(exes["default"], root / ".cache" / "go-in-hidden-dir")
    _copy(exes["mods"], root / "data" / "not-executable", 0o644)
    _copy(exes["default"], root / "locked" / "go-in-locked-dir")
    _copy(exes["default"], outside / "escaped-go")
    # Non-Go files.
    _copy(c_binary(), root / "bin" / "c-hello")
    (root / "bin" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "lib" / "empty").write_bytes(b"")
    (root / "lib" / "text.txt").write_text("text\n")
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()], outside]:
        os.chmod(d, 0o755)

    t = Tree(root, outside)
    files = [str(p) for p in root.rglob("*") if p.is_file()]
    t.go = set(go_version(files))
    assert t.go, "the Go toolchain recognised none of the fixtures"
    # The glob oracle, before any symlink, FIFO or socket exists.
    for pat in PATTERNS:
        like = pat.format(root=root)
        found = gen_globs(like)
        t.like_rows[(like, False)] = {(p, os.path.dirname(p)) for p in found if not p.endswith("/")}
        rows: set[tuple[str, str]] = set()
        for found_dir in (p for p in found if p.endswith("/")):
            for e in os.scandir(found_dir):
                if e.is_file(follow_symlinks=False):
                    dir_value = found_dir if like.endswith("/") else found_dir.rstrip("/")
                    rows.add((found_dir + e.name, dir_value))
        t.like_rows[(like, True)] = rows
    # Now the traps.
    os.symlink(".", root / "loop")  # a directory symlink to itself
    os.symlink("b", root / "lib" / "a")
    os.symlink("a", root / "lib" / "b")  # a symlink cycle
    os.symlink(root / "bin" / "hello", root / "bin" / "link-to-go")  # a symlink to a Go binary
    os.symlink(outside, root / "bin" / "escape")  # a symlink out of the tree
    os.mkfifo(root / "bin" / "fifo")
    os.mkfifo(root / "lib" / "sub" / "deep" / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "bin" / "sock"))
    s.close()
    os.chmod(root / "locked", 0)
    # Root (CAP_DAC_OVERRIDE) still lists a mode-000 directory and the glob oracle above, taken as
    # the same user before the chmod, lists its contents; any other user can list nothing in it.
    t.locked_readable = os.access(root / "locked", os.R_OK | os.X_OK)
    if not t.locked_readable:
        t.go = {p for p in t.go if not p.startswith(f"{root}/locked/")}
    yield t
    os.chmod(root / "locked", 0o755)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def osq():
    with_osq = OsqueryD()
    try:
        with_osq.wait_ready()
        yield with_osq
    finally:
        with_osq.close()


def generate(osq: OsqueryD, constraints: dict, cols_used=None, timeout: float = 120) -> list[dict[str, str]]:
    """The rows; the client's timeout is a watchdog for a walk that never ends, not a speed goal."""
    ctx = osquery5_context(osq.columns("go_executables"), constraints, cols_used)
    return osq.client(timeout=timeout).generate("go_executables", ctx)


def pairs(rows: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(r["path"], r["directory"]) for r in rows}


# --- routes and the required constraint -------------------------------------------------------


def test_routes_mirror_the_file_table(osq):
    ops = {r["name"]: int(r["op"]) for r in osq.routes("go_executables")}
    assert ops["path"] == 1 | 2  # INDEX | REQUIRED, as specs/utility/file.table
    assert ops["directory"] == 2  # REQUIRED
    # pid_with_namespace: additional | hidden, as in osquery's package tables (python_packages.table)
    assert ops["pid_with_namespace"] == 4 | 16
    assert all(v == 0 for k, v in ops.items() if k not in ("path", "directory", "pid_with_namespace"))
    types = dict(osq.columns("go_executables"))
    assert types["size"] == types["mtime"] == "BIGINT"


def test_no_path_or_directory_fails_cleanly(osq):
    with pytest.raises(CallError) as e:
        generate(osq, {})
    assert "path or directory" in str(e.value)
    assert osq.client().ping().code == 0  # still serving


def test_other_operators_match_nothing(osq, tree):
    assert generate(osq, {"path": [(GLOB, f"{tree.root}/bin/*")]}) == []


# --- path = -----------------------------------------------------------------------------------


def test_path_equals_matches_go_version_m(osq, tree):
    for name, rel in [("default", "bin/hello"), ("mods", "bin/mods"), ("stripped", "lib/sub/deep/stripped"),
                      ("old", "bin/sub/old-go"), ("vcs", "lib/vcs-go")]:
        path = str(tree.root / rel)
        rows = generate(osq, {"path": [(EQUALS, path)]})
        assert len(rows) == 1, (name, rows)
        _assert_row(rows[0], path, os.path.dirname(path), GO_FIXTURES[name].stripped)
        if name == "vcs":  # git itself, not only the Go toolchain, names the commit
            row = rows[0]
            assert (row["vcs"], row["vcs_revision"], row["vcs_modified"]) == ("git", git_head(), "1")


def _assert_row(row: dict[str, str], path: str, directory: str, stripped: bool | None) -> None:
    info = go_version_m(path)
    assert info is not None
    settings = {s["Key"]: s["Value"] for s in info.get("Settings") or []}
    main = info.get("Main") or {}
    st = os.lstat(path)
    flag = {"1": "1", "0": "0", "true": "1", "false": "0"}
    expected = {
        "path": path,
        "directory": directory,
        "filename": os.path.basename(path),
        "version": info["GoVersion"],
        "module": main.get("Path", ""),
        "module_version": main.get("Version", ""),
        "main_package": info.get("Path", ""),
        "vcs": settings.get("vcs", ""),
        "vcs_revision": settings.get("vcs.revision", ""),
        "vcs_time": settings.get("vcs.time", ""),
        "vcs_modified": flag.get(settings.get("vcs.modified", ""), ""),
        "goos": settings.get("GOOS", ""),
        "goarch": settings.get("GOARCH", ""),
        "cgo_enabled": flag.get(settings.get("CGO_ENABLED", ""), ""),
        "compiler": settings.get("-compiler", ""),
        "build_mode": settings.get("-buildmode", ""),
        "trimpath": flag.get(settings.get("-trimpath", ""), ""),
        "detection": "buildinfo",
        "format": "elf",
        "arch": settings.get("GOARCH", ""),
        "size": str(st.st_size),
        "mtime": str(int(st.st_mtime)),
    }
    if stripped is not None:
        expected["stripped"] = "1" if stripped else "0"
    assert {k: row.get(k) for k in expected} == expected


def test_path_equals_refuses_symlinks_specials_and_non_go(osq, tree):
    for rel in ["bin/link-to-go", "bin/fifo", "bin/sock", "bin/c-hello", "bin/script.sh", "lib/empty",
                "bin", "no-such-file", "loop/bin/hello/x"]:
        assert generate(osq, {"path": [(EQUALS, str(tree.root / rel))]}, timeout=10) == [], rel
    assert generate(osq, {"path": [(EQUALS, "relative/path")]}) == []


def test_path_in_list_and_go_without_exec_bit(osq, tree):
    paths = [str(tree.root / "bin" / "hello"), str(tree.root / "data" / "not-executable"),
             str(tree.root / "bin" / "c-hello")]
    rows = generate(osq, {"path": [(EQUALS, p) for p in paths]})
    assert {r["path"] for r in rows} == tree.is_go(paths) == set(paths[:2])


# --- path LIKE / directory --------------------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_path_like_equals_glob_oracle(osq, tree, pattern):
    like = pattern.format(root=tree.root)
    rows = generate(osq, {"path": [(LIKE, like)]})
    assert pairs(rows) == tree.expected_like(like), like
    assert len(rows) == len(pairs(rows))  # no duplicates


def test_recursive_like_finds_exactly_the_reachable_go_files(osq, tree):
    rows = generate(osq, {"path": [(LIKE, f"{tree.root}/%%")]})
    r = tree.root
    # Spelled out as well, so the oracle is not the only witness: hidden names and the locked
    # directory's contents as root (root reads a mode-000 directory), never anything via a symlink.
    locked = {f"{r}/locked/go-in-locked-dir"} if tree.locked_readable else set()
    assert {x["path"] for x in rows} == {
        f"{r}/bin/hello", f"{r}/bin/mods", f"{r}/bin/sub/old-go", f"{r}/lib/sub/deep/stripped",
        f"{r}/data/not-executable", f"{r}/lib/vcs-go", *locked,
    }


@pytest.mark.parametrize("pattern", ["{root}/%", "{root}/%%", "{root}/bin/%/", "{root}/{{bin,lib}}/%"])
def test_directory_like_equals_glob_oracle(osq, tree, pattern):
    like = pattern.format(root=tree.root)
    rows = generate(osq, {"directory": [(LIKE, like)]})
    assert pairs(rows) == tree.expected_like(like, dirs=True), like


def test_directory_equals_is_not_recursive(osq, tree):
    for d in [str(tree.root / "bin"), str(tree.root / "bin") + "/", str(tree.root)]:
        rows = generate(osq, {"directory": [(EQUALS, d)]})
        listed = [os.path.join(d, e.name) for e in os.scandir(d) if e.is_file(follow_symlinks=False)]
        assert pairs(rows) == {(p, d) for p in tree.is_go(listed)}, d
    assert {r["filename"] for r in generate(osq, {"directory": [(EQUALS, str(tree.root / "bin"))]})} == {
        "hello", "mods", ".hidden-go"}


def test_path_and_directory_together_give_the_union(osq, tree):
    rows = generate(osq, {"path": [(EQUALS, str(tree.root / "lib/sub/deep/stripped"))],
                          "directory": [(EQUALS, str(tree.root / "bin/sub"))]})
    assert {r["path"] for r in rows} == {str(tree.root / "lib/sub/deep/stripped"),
                                         str(tree.root / "bin/sub/old-go")}


# --- limits -----------------------------------------------------------------------------------


def test_walk_limits_stop_and_return_partial_rows(tree, monkeypatch, caplog):
    from go_processes.tables import QueryContext, _walk, go_executables

    def run(like: str) -> list[Mapping[str, object]]:
        ctx = QueryContext.parse({"constraints": [{"name": "path", "list": [{"op": LIKE, "expr": like}]}]})
        return list(go_executables.TABLE.generate(ctx))

    full = run(f"{tree.root}/%%")
    monkeypatch.setattr(_walk, "MAX_ENTRIES", 12)
    partial = run(f"{tree.root}/%%")
    assert {r["path"] for r in partial} < {r["path"] for r in full}
    assert "walk stopped early" in caplog.text
    monkeypatch.setattr(_walk, "MAX_ENTRIES", 100_000)

    caplog.clear()
    deep = Path(tempfile.mkdtemp(prefix="godeep-"))
    try:
        d = deep
        for _ in range(70):
            d = d / "d"
        d.mkdir(parents=True)
        _copy(tree.root / "bin" / "hello", d / "too-deep")
        _copy(tree.root / "bin" / "hello", deep / "d" / "d" / "shallow")
        rows = run(f"{deep}/%%")
        assert {r["path"] for r in rows} == {f"{deep}/d/d/shallow"}
        assert "64 directory levels" in caplog.text

        caplog.clear()
        monkeypatch.setattr(_walk, "TIME_BUDGET", 0.0)
        assert run(f"{deep}/%%") == []
        assert "ran for 0 s" in caplog.text
    finally:
        shutil.rmtree(deep, ignore_errors=True)


def _as_nobody(patterns: list[str]) -> dict[str, list[list[str]]]:
    """Our walk and glob(3), both as user nobody, in a forked child (this interpreter may live
    under /root, which nobody cannot read, so a fresh one could not start)."""
    from go_processes.tables import _walk

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = {}
            for like in patterns:
                ours = sorted(f.path for f in _walk.files_like(like, _walk.Budget()))
                theirs = sorted(p for p in gen_globs(like)
                                if not p.endswith("/") and os.path.isfile(p) and not os.path.islink(p))
                out[like] = [ours, theirs]
            os.write(wfd, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason=f"{skips.NEEDS_ROOT}: dropping to nobody")
def test_unreadable_directory_is_skipped(tree):
    """As an unprivileged user the mode-000 directory cannot be listed: the walk skips it silently
    (root can read it, so this runs as nobody; glob(3) is asked as the same user)."""
    patterns = [f"{tree.root}/%%", f"{tree.root}/locked/%"]
    out = _as_nobody(patterns)
    ours, theirs = out[patterns[0]]
    # glob(3) follows the directory symlinks (escape/, loop/); we never do.
    assert ours == [p for p in theirs if "/escape/" not in p and "/loop/" not in p]
    assert not any("/locked/" in p for p in ours)
    assert f"{tree.root}/bin/hello" in ours
    assert out[patterns[1]] == [[], []]


def test_warm_scan_does_not_reread(tree, monkeypatch):
    """A second scan answers from the shared cache: no file is opened for reading again."""
    from go_processes.tables import QueryContext, _walk, go_executables

    like = {"name": "path", "list": [{"op": LIKE, "expr": f"{tree.root}/%%"}]}
    ctx = QueryContext.parse({"constraints": [like]})
    first = list(go_executables.TABLE.generate(ctx))
    opened: list[str] = []
    real = _walk.open_found

    def spy(found):
        opened.append(found.path)
        return real(found)

    monkeypatch.setattr(_walk, "open_found", spy)
    assert list(go_executables.TABLE.generate(ctx)) == first
    assert opened == []
    assert stat.S_ISDIR(os.stat(tree.root).st_mode)
