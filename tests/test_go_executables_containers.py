"""go_executables inside a container, without a runtime: a real process in its own mount namespace,
chrooted into a tmpfs that exists only in that namespace, queried through /proc/<pid>/root/... paths
and through the hidden pid_with_namespace column.

The container image holds Go binaries and symlinks that would leave it if the host resolved them:
``/usr/local/bin -> /opt/app/bin`` (absolute, inside), ``/srv -> <a host directory>`` whose absolute
path also exists inside the image with a different Go binary, and ``/escape -> ../../..``. What each
file is comes from the Go toolchain (`go version -m` on the fixture that was copied there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures import build_fixture
from gobuild import go_version_m

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux mount namespaces")

from go_processes.tables import QueryContext  # noqa: E402
from go_processes.tables.go_executables import TABLE  # noqa: E402


@dataclass
class Container:
    pid: int
    host_dir: Path  # exists on the host with a Go binary; the same path inside holds another one
    modules: dict[str, str]  # file name -> main module path, from `go version -m` of its source

    @property
    def root(self) -> str:
        return f"/proc/{self.pid}/root"


SETUP = r"""
set -e
D="$1"; APP="$2"; MODS="$3"; HOSTDIR="$4"
mount -t tmpfs tmpfs "$D"
mkdir -p "$D/opt/app/bin" "$D/usr/local" "$D$HOSTDIR"
cp "$APP" "$D/opt/app/bin/app"
cp "$MODS" "$D/opt/app/bin/tool"
cp "$MODS" "$D$HOSTDIR/inside-only"
ln -s /opt/app/bin "$D/usr/local/bin"
ln -s "$HOSTDIR" "$D/srv"
ln -s ../../.. "$D/escape"
ln -s /loop "$D/loop"
exec chroot "$D" /opt/app/bin/app sleep
"""


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("chroot"):
        pytest.skip("needs root with util-linux unshare and chroot")
    app, mods = build_fixture("default"), build_fixture("mods")
    tmp = tmp_path_factory.mktemp("container")
    os.chmod(tmp, 0o755)
    image = tmp / "image"  # empty on the host; a tmpfs inside the namespace
    image.mkdir()
    host_dir = tmp / "hostside"
    host_dir.mkdir()
    shutil.copy(app, host_dir / "host-only")
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh", str(image),
                          str(app), str(mods), str(host_dir)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and p.poll() is None:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{p.pid}/root") != "/":
                    break
            time.sleep(0.01)
        time.sleep(0.05)
        if p.poll() is not None:
            pytest.skip(f"unshare -m / chroot does not work here: {p.stderr.read() if p.stderr else ''}")
        modules = {}
        for name, src in (("app", app), ("tool", mods), ("inside-only", mods), ("host-only", app)):
            info = go_version_m(src)
            assert info is not None, src
            modules[name] = info["Main"]["Path"]
        assert modules["app"] != modules["tool"], "the two fixtures must differ to tell them apart"
        assert not (image / "opt").exists(), "the image must exist only inside the namespace"
        yield Container(p.pid, host_dir, modules)
    finally:
        p.kill()
        p.wait(timeout=10)


def generate(**constraints: list[tuple[int, str]]) -> list[dict]:
    raw = {"constraints": [{"name": col, "list": [{"op": op, "expr": expr} for op, expr in items]}
                           for col, items in constraints.items()]}
    return [dict(r) for r in TABLE.generate(QueryContext.parse(raw))]


EQ, LIKE = 2, 65


def by_path(rows: list[dict]) -> dict[str, dict]:
    out = {r["path"]: r for r in rows}
    assert len(out) == len(rows)
    return out


def test_proc_root_path_follows_symlinks_inside_the_root(container: Container) -> None:
    r = container.root
    rows = by_path(generate(path=[(LIKE, f"{r}/usr/local/bin/%")]))
    assert set(rows) == {f"{r}/usr/local/bin/app", f"{r}/usr/local/bin/tool"}
    for path, row in rows.items():
        assert row["module"] == container.modules[path.rsplit("/", 1)[1]]
        assert row["directory"] == f"{r}/usr/local/bin" and row["pid_with_namespace"] == 0


def test_absolute_symlink_inside_the_container_never_reaches_the_host(container: Container) -> None:
    r = container.root
    for rows in (generate(directory=[(EQ, f"{r}/srv")]), generate(path=[(LIKE, f"{r}/srv/%")])):
        assert set(by_path(rows)) == {f"{r}/srv/inside-only"}
        assert rows[0]["module"] == container.modules["inside-only"]
    assert generate(path=[(EQ, f"{r}/srv/host-only")]) == []
    [row] = generate(path=[(EQ, f"{r}/srv/inside-only")])
    assert row["module"] == container.modules["inside-only"]
    # The host path itself is the host's file: the symlink's target exists on both sides.
    [host] = generate(path=[(EQ, str(container.host_dir / "host-only"))])
    assert host["module"] == container.modules["host-only"]


def test_dotdot_and_relative_symlinks_stop_at_the_root(container: Container) -> None:
    r = container.root
    hd = str(container.host_dir)
    for pattern in (f"{r}/../../..{hd}/%", f"{r}/escape{hd}/%", f"{r}/opt/../../..{hd}/%"):
        names = {row["path"].rsplit("/", 1)[1] for row in generate(path=[(LIKE, pattern)])}
        assert names == {"inside-only"}, pattern
    assert generate(path=[(EQ, f"{r}/escape{hd}/host-only")]) == []
    assert generate(directory=[(EQ, f"{r}/../..{hd}")])[0]["filename"] == "inside-only"


def test_symlink_loop_inside_the_root_ends(container: Container) -> None:
    r = container.root
    assert generate(path=[(LIKE, f"{r}/loop/%")]) == []
    assert generate(directory=[(EQ, "/loop/x")], pid_with_namespace=[(EQ, str(container.pid))]) == []


def test_pid_with_namespace_runs_the_query_inside_that_root(container: Container) -> None:
    pid = str(container.pid)
    rows = by_path(generate(directory=[(EQ, "/usr/local/bin")], pid_with_namespace=[(EQ, pid)]))
    assert set(rows) == {"/usr/local/bin/app", "/usr/local/bin/tool"}
    assert all(r["pid_with_namespace"] == container.pid and r["directory"] == "/usr/local/bin"
               for r in rows.values())
    assert rows["/usr/local/bin/app"]["module"] == container.modules["app"]
    # recursion from the container's root: only the container's files, spelled as it sees them
    rows = by_path(generate(path=[(LIKE, "/%%")], pid_with_namespace=[(EQ, pid)]))
    assert set(rows) == {"/opt/app/bin/app", "/opt/app/bin/tool", f"{container.host_dir}/inside-only"}
    [row] = generate(path=[(EQ, "/srv/inside-only")], pid_with_namespace=[(EQ, pid)])
    assert row["module"] == container.modules["inside-only"]
    assert generate(path=[(EQ, "/srv/host-only")], pid_with_namespace=[(EQ, pid)]) == []


def test_pid_with_namespace_of_several_and_of_none(container: Container) -> None:
    me = str(os.getpid())  # our own root is the host's
    hd = str(container.host_dir)
    rows = generate(directory=[(EQ, hd)], pid_with_namespace=[(EQ, me), (EQ, str(container.pid))])
    got = {(r["pid_with_namespace"], r["filename"]) for r in rows}
    assert got == {(os.getpid(), "host-only"), (container.pid, "inside-only")}
    # a pid that does not exist gives no rows (never the host's)
    assert generate(directory=[(EQ, hd)], pid_with_namespace=[(EQ, str(2**22 + 7))]) == []
    # a value that is not a plain integer does not narrow the query (equals_int): our own root's rows
    # come back marked 0, which SQLite's re-check of "pid_with_namespace = 'x'" then drops
    rows = generate(directory=[(EQ, hd)], pid_with_namespace=[(EQ, "x")])
    assert {(r["pid_with_namespace"], r["filename"]) for r in rows} == {(0, "host-only")}


def test_procs_opens_a_file_as_the_process_sees_it(container: Container) -> None:
    """procs.open_file, the resolver the walk uses, for one file (what a table of mapped libraries
    needs): inside the root whatever the links say, and only through the links the policy allows."""
    import errno

    from go_processes.procs import open_file

    def opened(path: str, **kw: object) -> os.stat_result:
        fd = open_file(container.pid, path, **kw)  # type: ignore[arg-type]
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    inside = os.stat(f"{container.root}{container.host_dir}/inside-only")
    app = os.stat(f"{container.root}/opt/app/bin/app")
    assert os.path.samestat(opened("/srv/inside-only"), inside)  # /srv -> the host's path, read inside
    assert os.path.samestat(opened("/escape/opt/app/bin/app"), app)  # ../../.. stops at the root
    assert os.path.samestat(opened("opt/app/bin/app"), app)  # relative: from its cwd, its root here
    assert os.path.samestat(opened("/usr/local/bin/app", owners={0}), app)  # root's link
    with pytest.raises(FileNotFoundError):
        opened("/srv/host-only")  # exists on the host only
    with pytest.raises(OSError) as e:
        opened("/usr/local/bin/app", owners={65534})  # a link nobody of these owns is not followed
    assert e.value.errno == errno.ELOOP
    with pytest.raises(OSError) as e:
        opened("/opt/app/bin")  # a directory is no file
    assert e.value.errno == errno.EINVAL
