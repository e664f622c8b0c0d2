"""go_libraries, and the library rows of go_modules and go_vulnerabilities: Go inside programs that
are not Go. Every library here is real (built in the test with Go 1.19 and the current Go, or
published in a PyPI wheel) and loaded by a real process the way such libraries are loaded: ctypes
in Python, dlopen in C, cffi in the wheel's own package, plugin.Open in Go. What each file is comes
from the Go toolchain (`go version -m`), never from the reader under test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gobuild import Build, Program, build, go_version_m
from skips import SANDBOX, skip
from vulndb_util import snapshot_db  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/maps is Linux")

from go_processes import vulndb  # noqa: E402
from go_processes.procs import _linux  # noqa: E402
from go_processes.tables import Constraint, Operator, QueryContext  # noqa: E402
from go_processes.tables.go_libraries import TABLE as LIBRARIES  # noqa: E402
from go_processes.tables.go_modules import TABLE as MODULES  # noqa: E402
from go_processes.tables.go_processes import TABLE as PROCESSES  # noqa: E402
from go_processes.tables.go_vulnerabilities import TABLE as VULNS  # noqa: E402

LIB = """package main

import "C"

import (
\t"crypto/sha256"

\t"example.com/{dep}"
)

//export GoHash
func GoHash(n C.int) C.int {{
\ts := sha256.Sum256([]byte({dep}.Name() + string(rune(n))))
\treturn C.int(s[0])
}}

func main() {{}}
"""


def _dep(name: str) -> tuple[tuple[str, str], ...]:
    return ((f"{name}/go.mod", f"module example.com/{name}\n\ngo 1.18\n"),
            (f"{name}/{name}.go", f'package {name}\n\nfunc Name() string {{ return "{name}" }}\n'))


def _requires(dep: str) -> str:
    return f"\nrequire example.com/{dep} v1.0.0\n\nreplace example.com/{dep} => ./{dep}\n"


def _lib_program(module: str, dep: str) -> Program:
    return Program(module=module, files=(("lib.go", LIB.format(dep=dep)),),
                   go_mod_extra=_requires(dep),
                   extra_files=_dep(dep))


def _shared(module: str, dep: str, toolchain: str, mode: str = "c-shared") -> Path:
    return build(Build(program=_lib_program(module, dep), toolchain=toolchain, flags=(f"-buildmode={mode}",),
                       env=(("CGO_ENABLED", "1"),), name="libgo.so"))


PLUGIN = """package main

import "example.com/plugdep"

var Name = plugdep.Name()
"""

PLUGIN_HOST = """package main

import (
\t"fmt"
\t"os"
\t"plugin"
)

func main() {
\tif _, err := plugin.Open(os.Args[1]); err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(1)
\t}
\tfmt.Println("ready")
\tos.Stdin.Read(make([]byte, 1))
}
"""

C_LOADER = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
"""

PY_LOADER = """
import ctypes, sys
for path in sys.argv[1:]:
    assert ctypes.CDLL(path).GoHash(7) >= 0
print("ready", flush=True)
sys.stdin.read()
"""

# The wheel's own API: a Session's first request loads its Go library through cffi's dlopen.
TLS_CLIENT = """
import http.server, sys, threading
import tls_client
from tls_client import _core

class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
response = tls_client.Session(client_identifier="chrome_120").get(f"http://127.0.0.1:{server.server_port}/")
assert response.status_code == 200, response.status_code
print(_core._find_library(), flush=True)
print("ready", flush=True)
sys.stdin.read()
"""

# A shared object that is not Go but carries what Go binaries carry: the build-info magic, a
# build ID note's text, a version string and runtime symbol names.
FAKE_GO = r"""
__attribute__((used)) const char fake_buildinfo[64] = "\xff Go buildinf:\x08\x02garbage-not-a-pointer";
__attribute__((used)) const char fake_buildid[] = "\xff Go build ID: \"abc/def/ghi/jkl\"\n \xff";
__attribute__((used)) const char fake_version[] = "go1.21.4";
__attribute__((used)) const char fake_symbols[] = "runtime.buildVersion\0runtime.main\0main.main";
int runtime_main(void) { return 0; }
"""


class Loaded:
    """A process that loaded libraries and waits until its stdin closes."""

    def __init__(self, argv: list[str], **kw: Any) -> None:
        pipe = subprocess.PIPE
        self.popen = subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=pipe,
                                      text=True, **kw)
        self.lines: list[str] = []
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if line.strip() == "ready":
                return
            self.lines.append(line.strip())
        err = self.popen.stderr.read() if self.popen.stderr else ""
        raise RuntimeError(f"{argv[0]} did not load its libraries: {err}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()
        with contextlib.suppress(Exception):
            self.popen.wait(timeout=10)
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(Exception):
                f.close() if f else None


@pytest.fixture
def load() -> Iterator[Any]:
    started: list[Loaded] = []

    def start(argv: list[str], **kw: Any) -> Loaded:
        p = Loaded(argv, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def _gcc(tmp: Path, name: str, source: str, *flags: str) -> Path:
    src = tmp / (name + ".c")
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True, capture_output=True,
                   timeout=120)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed (.ci/deps installs it)")
    tmp = tmp_path_factory.mktemp("golibs")
    _gcc(tmp, "loader", C_LOADER)
    _gcc(tmp, "libplain.so", "int plain(void) { return 1; }\n", "-shared", "-fPIC")
    _gcc(tmp, "libfakego.so", FAKE_GO, "-shared", "-fPIC")
    return tmp


@pytest.fixture(scope="module")
def libs() -> dict[str, Path]:
    """Two different Go c-shared libraries per toolchain: module and dependency differ."""
    return {"new-a": _shared("example.com/golib-a", "depa", "new"),
            "new-b": _shared("example.com/golib-b", "depb", "new"),
            "old-a": _shared("example.com/golib-a", "depa", "old")}


def _ctx(pids: tuple[int, ...] = (), **equals: tuple[str, ...]) -> QueryContext:
    constraints = {}
    if pids:
        constraints["pid"] = tuple(Constraint(Operator.EQUALS, str(p)) for p in pids)
    for column, values in equals.items():
        constraints[column] = tuple(Constraint(Operator.EQUALS, v) for v in values)
    return QueryContext(constraints)


def _libraries(*pids: int) -> list[dict[str, Any]]:
    return [dict(r) for r in LIBRARIES.generate(_ctx(pids))]


def _modules(pid: int, library: int | None = None) -> list[dict[str, Any]]:
    extra = {"library": (str(library),)} if library is not None else {}
    return [dict(r) for r in MODULES.generate(_ctx((pid,), **extra))]


def _toolchain_modules(path: str | Path) -> set[tuple[str, str, str, str, str]]:
    """(module, version, sum, replacement path, replacement version) from `go version -m`, with
    stdlib at the Go version, as go_modules spells a library's rows."""
    info = go_version_m(path)
    assert info is not None, f"the Go toolchain does not read {path}"
    out = {("stdlib", info["GoVersion"], "", "", "")}
    main = info.get("Main") or {}
    if main.get("Path"):
        out.add((main["Path"], main.get("Version", ""), main.get("Sum", ""), "", ""))
    for d in info.get("Deps") or []:
        rep = d.get("Replace") or {}
        out.add((d["Path"], d.get("Version", ""), d.get("Sum", ""), rep.get("Path", ""),
                 rep.get("Version", "")))
    return out


def _as_modules(rows: list[dict[str, Any]]) -> set[tuple[str, str, str, str, str]]:
    return {(r["module"], r["version"], r["sum"], r["replace_module"], r["replace_version"]) for r in rows}


# --- loaded by Python (ctypes) and by C (dlopen) -----------------------------------------------


def test_python_ctypes_two_go_libraries_are_two_rows(load, libs):
    p = load([sys.executable, "-c", PY_LOADER, str(libs["new-a"]), str(libs["old-a"])])
    comm = Path(f"/proc/{p.pid}/comm").read_text().strip()
    rows = {r["path"]: r for r in _libraries(p.pid)}
    assert set(rows) == {str(libs["new-a"]), str(libs["old-a"])}
    for path, row in rows.items():
        info = go_version_m(path)
        assert info is not None
        assert (row["pid"], row["exe"]) == (p.pid, comm)
        assert row["version"] == info["GoVersion"]
        assert row["module"] == info["Main"]["Path"]
        assert row["on_disk"] == 1
        settings = {s["Key"]: s.get("Value", "") for s in info.get("Settings") or []}
        assert row["build_mode"] == settings.get("-buildmode", "")
    # Go 1.19 does not record -buildmode; the current toolchain does, and says c-shared.
    assert rows[str(libs["new-a"])]["build_mode"] == "c-shared"


def test_c_dlopen_loads_two_different_go_libraries(load, libs, work):
    p = load([str(work / "loader"), str(libs["new-a"]), str(libs["new-b"])])
    rows = _libraries(p.pid)
    assert sorted((r["path"], r["module"]) for r in rows) == sorted([
        (str(libs["new-a"]), "example.com/golib-a"), (str(libs["new-b"]), "example.com/golib-b")])
    assert {r["exe"] for r in rows} == {"loader"}


def test_library_rows_of_go_modules_equal_go_version_m(load, libs, work):
    p = load([str(work / "loader"), str(libs["new-a"]), str(libs["new-b"]), str(libs["old-a"])])
    rows = _modules(p.pid)
    assert rows, "no library rows"
    assert {r["library"] for r in rows} == {1}  # the loader itself is not Go
    for lib in ("new-a", "new-b", "old-a"):
        mine = [r for r in rows if r["path"] == str(libs[lib])]
        assert _as_modules(mine) == _toolchain_modules(libs[lib]), lib
    # library = 0 asks for executables only: this C program has none.
    assert _modules(p.pid, library=0) == []
    assert _as_modules(_modules(p.pid, library=1)) == _as_modules(rows)


def test_a_non_go_process_hosting_a_go_library_is_marked_in_the_listing(load, libs, work):
    p = load([str(work / "loader"), str(libs["new-a"])])
    out = subprocess.run([sys.executable, "-m", "go_processes", "--pid", str(p.pid)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    mine = [line.split() for line in out[1:]]
    info = go_version_m(libs["new-a"])
    assert info is not None
    assert mine == [[str(p.pid), "loader+", info["GoVersion"], str(libs["new-a"])]]
    table = subprocess.run([sys.executable, "-m", "go_processes", "--table", "go_libraries",
                            "--pid", str(p.pid)],
                           capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    header = table[0].split("\t")
    assert header[:3] == ["pid", "exe", "path"]
    paths = [dict(zip(header, line.split("\t"), strict=True))["path"] for line in table[1:]]
    assert paths == [str(libs["new-a"])]


# --- a Go program and its plugin ---------------------------------------------------------------


def test_a_plugin_is_a_row_and_the_program_itself_is_not(load):
    plugin_program = Program(module="example.com/plug", files=(("plug.go", PLUGIN),),
                             go_mod_extra=_requires("plugdep"),
                             extra_files=_dep("plugdep"))
    cgo = (("CGO_ENABLED", "1"),)
    plugin = build(Build(program=plugin_program, flags=("-buildmode=plugin",), env=cgo, name="plug.so"))
    host_program = Program(module="example.com/plughost", files=(("main.go", PLUGIN_HOST),))
    host = build(Build(program=host_program, env=cgo,
                       name="plughost"))
    p = load([str(host), str(plugin)])
    rows = _libraries(p.pid)
    assert [r["path"] for r in rows] == [str(plugin)]
    info = go_version_m(plugin)
    assert info is not None
    assert rows[0]["module"] == info["Main"]["Path"] == "example.com/plug"
    assert rows[0]["build_mode"] == "plugin"
    # go_processes has the host; go_modules has both, each with its own module list.
    assert [r["path"] for r in PROCESSES.generate(_ctx((p.pid,)))] == [str(host)]
    modules = _modules(p.pid)
    assert _as_modules([r for r in modules if r["library"] == 1]) == _toolchain_modules(plugin)
    assert {r["path"] for r in modules if r["library"] == 1} == {str(plugin)}
    assert _as_modules([r for r in modules if r["library"] == 0]) == _toolchain_modules(host)
    assert {r["path"] for r in modules if r["library"] == 0} == {str(host)}


# --- deleted, replaced, inside another root -----------------------------------------------------


def test_a_library_deleted_and_replaced_after_loading_is_read_as_mapped(load, libs, work, tmp_path):
    path = tmp_path / "libswap.so"
    shutil.copy(libs["new-a"], path)
    p = load([str(work / "loader"), str(path)])
    path.unlink()
    shutil.copy(libs["new-b"], path)  # another Go library now sits at the mapped path
    rows = _libraries(p.pid)
    assert [(r["path"], r["on_disk"], r["module"]) for r in rows] == [(str(path), 0, "example.com/golib-a")]
    assert _as_modules(_modules(p.pid)) == _toolchain_modules(libs["new-a"])


def _ldd(*files: Path) -> set[str]:
    out: set[str] = set()
    for f in files:
        listed = subprocess.run(["ldd", str(f)], capture_output=True, text=True, timeout=60).stdout
        for line in listed.splitlines():
            for word in line.split():
                if word.startswith("/"):
                    out.add(word)
    return out


CONTAINER = r"""
set -e
D="$1"; LOADER="$2"; LIB="$3"; HOSTDIR="$4"; shift 4
mount -t tmpfs tmpfs "$D"
mkdir -p "$D/bin" "$D$HOSTDIR"
cp "$LOADER" "$D/bin/loader"
for f in "$@"; do mkdir -p "$D$(dirname "$f")"; cp -L "$f" "$D$f"; done
cp "$LIB" "$D$HOSTDIR/libgo.so"
exec chroot "$D" /bin/loader "$HOSTDIR/libgo.so"
"""


@pytest.fixture
def contained(load, libs, work, tmp_path) -> tuple[Loaded, Path]:
    """A loader chrooted into a tmpfs that exists only in its own mount namespace, with golib-a at
    HOSTDIR/libgo.so inside; on the host the same path holds golib-b."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip(SANDBOX, "needs root with util-linux unshare for a mount namespace")
    os.chmod(tmp_path, 0o755)
    image = tmp_path / "image"
    image.mkdir()
    host_dir = tmp_path / "hostside"
    host_dir.mkdir()
    shutil.copy(libs["new-b"], host_dir / "libgo.so")
    deps = _ldd(work / "loader", libs["new-a"])
    try:
        p = load(["unshare", "-m", "--propagation", "private", "sh", "-c", CONTAINER, "sh", str(image),
                  str(work / "loader"), str(libs["new-a"]), str(host_dir), *sorted(deps)])
    except RuntimeError as e:
        if "Operation not permitted" in str(e) or "Permission denied" in str(e):
            skip(SANDBOX, f"no mount namespace: {e}")
        raise
    assert os.readlink(f"/proc/{p.pid}/root") != "/"
    return p, host_dir / "libgo.so"


def test_a_library_in_another_root_is_read_inside_that_root(contained, libs):
    p, path = contained
    rows = _libraries(p.pid)
    assert [(r["path"], r["on_disk"], r["module"]) for r in rows] == [(str(path), 1, "example.com/golib-a")]
    assert _as_modules(_modules(p.pid)) == _toolchain_modules(libs["new-a"])


def test_without_cap_sys_admin_the_library_is_opened_inside_the_process_root(contained):
    """map_files needs CAP_SYS_ADMIN; without it the mapped path is opened inside the process's
    root and kept only when it is the mapped inode, never the host's same-named file."""
    p, path = contained
    # Linux >= 5.9 also opens map_files for CAP_CHECKPOINT_RESTORE: drop both.
    caps = "-sys_admin,-checkpoint_restore"
    drop = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]
    probe = subprocess.run([*drop, sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])",
                            f"/proc/{p.pid}/map_files/" + _any_region(p.pid, path)], capture_output=True,
                           text=True,
                           timeout=60)
    assert probe.returncode != 0 and "Operation not permitted" in probe.stderr, "map_files still readable"
    out = subprocess.run([*drop, sys.executable, "-m", "go_processes", "--table", "go_libraries", "--json",
                          "--pid", str(p.pid)], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    rows = json.loads(out)
    assert [(r["path"], r["module"]) for r in rows] == [(str(path), "example.com/golib-a")]


def _any_region(pid: int, path: Path) -> str:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if line.endswith(str(path)):
            return line.split()[0]
    raise AssertionError(f"{path} not mapped by {pid}")


# --- negatives and bounds -----------------------------------------------------------------------


def test_non_go_objects_are_no_rows_even_with_go_looking_strings(load, work):
    assert go_version_m(work / "libfakego.so") is None  # the toolchain agrees it is not Go
    p = load([str(work / "loader"), str(work / "libplain.so"), str(work / "libfakego.so")])
    assert _libraries(p.pid) == []
    assert _modules(p.pid) == []


def _many(work: Path, n: int) -> list[str]:
    out = []
    for i in range(n):
        f = work / f"many/libnongo{i}.so"
        if not f.exists():
            f.parent.mkdir(exist_ok=True)
            shutil.copy(work / "libplain.so", f)  # one inode each: 500 distinct files
        out.append(str(f))
    return out


def test_500_non_go_libraries_no_rows_and_a_second_query_reads_no_file(load, work, monkeypatch):
    p = load([str(work / "loader"), *_many(work, 500)])
    maps = Path(f"/proc/{p.pid}/maps").read_text().splitlines()
    assert sum(1 for line in maps if "libnongo" in line) >= 500
    started = time.monotonic()
    assert _libraries(p.pid) == []
    first = time.monotonic() - started
    assert first < 60, f"{first:.1f} s for 500 libraries"  # a hang guard; the figure is in bench/

    # The second query finds every one of them in the cache by identity: not one file is read.
    from go_processes.buildinfo import _cache

    reads: list[int] = []
    real = _cache.read_build_info
    monkeypatch.setattr(_cache, "read_build_info", lambda fd: reads.append(fd) or real(fd))
    assert _libraries(p.pid) == []
    assert reads == []


def test_the_maps_byte_limit_bounds_the_read_and_logs_once(load, libs, work, monkeypatch, caplog):
    # Loaded first, the Go library maps highest, so its lines come after the 500 others'.
    p = load([str(work / "loader"), str(libs["new-a"]), *_many(work, 500)])
    assert [r["path"] for r in _libraries(p.pid)] == [str(libs["new-a"])]
    monkeypatch.setattr(_linux, "MAPS_MAX", 64 * 1024)
    assert len(Path(f"/proc/{p.pid}/maps").read_bytes()) > 64 * 1024
    with caplog.at_level(logging.WARNING):
        assert _libraries(p.pid) == []
        assert _libraries(p.pid) == []
    said = [r for r in caplog.records if f"pid {p.pid} maps more than" in r.getMessage()]
    assert len(said) == 1


def test_go_processes_and_executable_only_rows_never_read_maps(load, libs, work, monkeypatch):
    p = load([str(work / "loader"), str(libs["new-a"])])

    def refuse(pid: int) -> list:
        raise AssertionError(f"maps of {pid} read")

    monkeypatch.setattr(_linux, "mappings", refuse)
    assert list(PROCESSES.generate(QueryContext())) is not None
    assert _modules(p.pid, library=0) == []
    with pytest.raises(AssertionError, match="maps of"):
        _libraries(p.pid)


# --- vulnerabilities and a library published by others ---------------------------------------


def _strip(rows: list[dict[str, Any]]) -> list[tuple]:
    own = ("pid", "path", "library")
    return sorted(tuple(sorted((k, v) for k, v in r.items() if k not in own)) for r in rows)


@pytest.fixture
def database(snapshot_db, monkeypatch):  # noqa: F811 - the imported fixture
    monkeypatch.setenv(vulndb.ENV_LOCATION, str(snapshot_db))
    monkeypatch.setenv(vulndb.ENV_CONFIG, "/nonexistent/go-processes.conf")
    yield snapshot_db
    vulndb.set_location(None)


def test_library_findings_are_the_findings_of_the_library_file(load, libs, work, database):
    p = load([str(work / "loader"), str(libs["old-a"])])
    mine = [dict(r) for r in VULNS.generate(_ctx((p.pid,)))]
    assert mine and {(r["pid"], r["path"], r["library"]) for r in mine} == {(p.pid, str(libs["old-a"]), 1)}
    # Go 1.19.8's stdlib has advisories; the same file named by path gets the same findings.
    assert any(r["module"] == "stdlib" for r in mine)
    by_path = [dict(r) for r in VULNS.generate(_ctx(path=(str(libs["old-a"]),)))]
    assert _strip(mine) == _strip(by_path)
    assert [dict(r) for r in VULNS.generate(_ctx((p.pid,), library=("0",)))] == []


def test_a_go_library_from_a_pypi_wheel_loaded_by_its_package(load, database):
    """tls-client-python (PyPI, pinned in pyproject's test extra) ships bogdanfinn/tls-client built
    with -buildmode=c-shared and loads it with cffi's dlopen when a Session makes its first request."""
    pytest.importorskip("tls_client", reason="tls-client-python is in the test extra")
    p = load([sys.executable, "-c", TLS_CLIENT])
    path = p.lines[-1]
    info = go_version_m(path)
    assert info is not None and info["Main"]["Path"] == "github.com/bogdanfinn/tls-client"
    rows = _libraries(p.pid)
    assert [(r["path"], r["version"], r["module"], r["build_mode"]) for r in rows] == [
        (path, info["GoVersion"], info["Main"]["Path"], "c-shared")]
    assert _as_modules(_modules(p.pid)) == _toolchain_modules(path)
    vulns = [dict(r) for r in VULNS.generate(_ctx((p.pid,)))]
    assert _strip(vulns) == _strip([dict(r) for r in VULNS.generate(_ctx(path=(path,)))])
    assert {r["path"] for r in vulns} <= {path}


def test_a_pid_constraint_reads_only_those_processes_maps(load, libs, work, monkeypatch):
    one = load([str(work / "loader"), str(libs["new-a"])])
    two = load([str(work / "loader"), str(libs["new-b"])])
    read: list[int] = []
    real = _linux.mappings
    monkeypatch.setattr(_linux, "mappings", lambda pid: read.append(pid) or real(pid))
    rows = _libraries(one.pid)
    assert [(r["pid"], r["path"]) for r in rows] == [(one.pid, str(libs["new-a"]))]
    assert read == [one.pid]
    read.clear()
    rows = _libraries(one.pid, two.pid)  # an IN list arrives whole (OPTIMIZED)
    assert sorted((r["pid"], r["path"]) for r in rows) == sorted(
        [(one.pid, str(libs["new-a"])), (two.pid, str(libs["new-b"]))])
    assert sorted(read) == sorted([one.pid, two.pid])
    # path = narrows to that library's rows
    assert [r["pid"] for r in LIBRARIES.generate(_ctx(path=(str(libs["new-b"]),)))] == [two.pid]


def test_through_the_extension_socket(load, libs, work):
    """As osqueryd asks: the table is registered, and the library rows come through the socket."""
    from osqueryd import OsqueryD

    p = load([str(work / "loader"), str(libs["new-a"])])
    with OsqueryD() as osq:
        osq.wait_ready()
        client = osq.client(timeout=120)
        rows = client.generate("go_libraries", osq.context("go_libraries", pid=[p.pid]))
        modules = client.generate("go_modules", osq.context("go_modules", pid=[p.pid], library=[1]))
    assert [(r["pid"], r["exe"], r["path"], r["build_mode"]) for r in rows] == [
        (str(p.pid), "loader", str(libs["new-a"]), "c-shared")]
    assert _as_modules(modules) == _toolchain_modules(libs["new-a"])
    assert {(r["path"], r["library"]) for r in modules} == {(str(libs["new-a"]), "1")}


MAPS_A_DEVICE = """
import mmap, os, sys
fd = os.open("/dev/zero", os.O_RDONLY)
m = mmap.mmap(fd, 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_EXEC)
print("ready", flush=True)
sys.stdin.read()
"""


def test_an_executable_mapping_of_a_device_is_never_opened(load, monkeypatch):
    """A device mapped executable (here /dev/zero) is in maps like a file; opening a device can
    act (a tty, hardware) and reading one may not end, so only regular files are read."""
    p = load([sys.executable, "-c", MAPS_A_DEVICE])
    assert any(line.endswith(" /dev/zero") and " r-x" in line
               for line in Path(f"/proc/{p.pid}/maps").read_text().splitlines())
    from go_processes.buildinfo import _cache

    modes: list[int] = []
    real = _cache.read_build_info
    monkeypatch.setattr(_cache, "read_build_info", lambda fd: modes.append(os.fstat(fd).st_mode) or real(fd))
    _cache_clear()
    assert _libraries(p.pid) == []
    assert modes and all(stat.S_ISREG(m) for m in modes), [oct(m) for m in modes]


def _cache_clear() -> None:
    """Forget what the shared detector knows, so this query reads every file it accepts."""
    from go_processes.tables._shared import DETECTOR

    DETECTOR._cache.clear()


HTTP_LIB = """package main

import "C"

import "net/http"

//export Serve
func Serve() C.int {
\tif err := http.ListenAndServe("127.0.0.1:0", nil); err != nil {
\t\treturn 1
\t}
\treturn 0
}

func main() {}
"""


def test_library_findings_reach_symbol_level_from_the_library_function_table(load, work, database):
    """A Go 1.19 c-shared library that links net/http's server, loaded by C: its net/http
    advisories are at symbol level, as `go tool nm` on the library shows the functions linked."""
    from test_go_vulnerabilities import _nm_symbol_ids

    lib = build(Build(program=Program(module="example.com/httplib", files=(("lib.go", HTTP_LIB),)),
                      toolchain="old", flags=("-buildmode=c-shared",), env=(("CGO_ENABLED", "1"),),
                      name="libhttp.so"))
    p = load([str(work / "loader"), str(lib)])
    rows = {r["osv_id"]: dict(r) for r in VULNS.generate(_ctx((p.pid,)))}
    symbol = {i for i, r in rows.items() if r["level"] == "symbol"}
    http = {i for i, r in rows.items() if "net/http" in r["packages"].split(",")}
    assert http & symbol, "the library links net/http's vulnerable server code"
    assert _nm_symbol_ids(database, lib, set(rows)) <= symbol
    assert {(r["path"], r["library"]) for r in rows.values()} == {(str(lib), 1)}
