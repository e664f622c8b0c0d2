"""A named catalogue of the executables the test suites share, and session fixtures that make them.

Every Go fixture is a :class:`gobuild.Build` (cached on disk by gobuild, so each distinct binary is
built once per machine) plus what we know about it *from how it was built*: target OS/arch, the
executable format and byte order that implies, and whether it was linked without a symbol table.
Tests compare the reader with those facts and with the Go toolchain's `go version -m`; nothing here
is taken from our reader's output.

Use from a test module (assigning registers the fixture there; an import would trip ruff's F811)::

    import fixtures
    go_exe = fixtures.go_exe

    def test_x(go_exe):
        path = go_exe("stripped")          # builds (or skips with a reason) and returns a Path

Non-Go samples (a C program, a script, a Java class file, an empty file, system ELF files) are here
too, because "not Go" must be as well tested as "Go".
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from go_processes.buildinfo import BuildInfo, Module
from gobuild import CACHE, CGO_HELLO, GCCGO, GO_NEW, GO_OLD, HELLO, Build, Program, build, go_env

# --- programs ---------------------------------------------------------------------------------

FLAGS_MAIN = """package main

import "fmt"

var v = "unset"

func main() { fmt.Println(v) }
"""

# Runs for an hour with the argument "sleep", so process tests can look at it too.
MODS_MAIN = """package main

import (
\t"fmt"
\t"os"
\t"time"

\t"example.com/greet"
\t"example.com/lib"
\t"example.com/util"
)

func main() {
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\ttime.Sleep(time.Hour)
\t}
\tfmt.Println(greet.Hello(), lib.Name(), util.Name())
}
"""

VENDOR_MAIN = """package main

import (
\t"fmt"

\t"example.com/vend"
)

func main() { fmt.Println(vend.Name()) }
"""

PROXY_DIR = CACHE / "goproxy"

# Modules served by the on-disk GOPROXY: (path, version) -> {file name: content}.
PROXY_MODULES: dict[tuple[str, str], dict[str, str]] = {
    ("example.com/lib", "v1.0.0"): {
        "go.mod": "module example.com/lib\n\ngo 1.18\n",
        "lib.go": 'package lib\n\nfunc Name() string { return "lib v1.0.0" }\n',
    },
    ("example.com/util", "v1.0.0"): {
        "go.mod": "module example.com/util\n\ngo 1.18\n",
        "util.go": 'package util\n\nfunc Name() string { return "util v1.0.0" }\n',
    },
    ("example.com/util", "v1.1.0"): {
        "go.mod": "module example.com/util\n\ngo 1.18\n",
        "util.go": 'package util\n\nfunc Name() string { return "util v1.1.0" }\n',
    },
}


def h1_sum(files: dict[str, str], prefix: str = "") -> str:
    """golang.org/x/mod/sumdb/dirhash.Hash1, computed here so go.sum (and the expected `Sum` of a
    dependency) does not come from the toolchain under test."""
    summary = "".join(
        f"{hashlib.sha256(files[name].encode()).hexdigest()}  {prefix}{name}\n" for name in sorted(files)
    )
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def module_sums(path: str, version: str) -> tuple[str, str]:
    """(zip hash, go.mod hash) of a proxy module, as go.sum spells them."""
    files = PROXY_MODULES[(path, version)]
    return h1_sum(files, f"{path}@{version}/"), h1_sum({"go.mod": files["go.mod"]})



# Stand-ins for a module with an advisory, named as the pack's example (golang.org/x/net, fixed in
# v0.17.0) and as modules a test names in the query's fixed(...) rows: released, pre-release,
# pseudo-version after the fix, and older versions, so the query meets every spelling Go records.
_VULN_VERSIONS = {
    "golang.org/x/net": ("v0.16.0", "v0.17.0", "v0.17.0-rc.1"),
    "example.com/vn/old": ("v0.16.0",),
    "example.com/vn/ok": ("v0.17.0",),
    "example.com/vn/pre": ("v0.17.0-rc.1",),
    "example.com/vn/down": ("v0.16.0", "v0.17.0"),
    "example.com/vn/pseudo": ("v0.17.1-0.20231010000000-abcdef012345",),
}
for _path, _versions in _VULN_VERSIONS.items():
    for _version in _versions:
        _pkg = _path.rsplit("/", 1)[1]
        PROXY_MODULES[(_path, _version)] = {
            "go.mod": f"module {_path}\n\ngo 1.18\n",
            f"{_pkg}.go": f'package {_pkg}\n\nfunc Name() string {{ return "{_path} {_version}" }}\n',
        }
MODS_DEPS = (("example.com/lib", "v1.0.0"), ("example.com/util", "v1.0.0"), ("example.com/util", "v1.1.0"))


def _go_sum(modules: tuple[tuple[str, str], ...] = MODS_DEPS) -> str:
    lines = []
    for path, version in sorted(modules):
        zip_sum, mod_sum = module_sums(path, version)
        lines.append(f"{path} {version} {zip_sum}\n{path} {version}/go.mod {mod_sum}\n")
    return "".join(lines)


def ensure_proxy() -> Path:
    """Write the file:// GOPROXY (list, .info, .mod, .zip per version); deterministic, so idempotent."""
    for (path, version), files in PROXY_MODULES.items():
        d = PROXY_DIR / path / "@v"
        d.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name in sorted(files):
                z.writestr(zipfile.ZipInfo(f"{path}@{version}/{name}", (2020, 1, 1, 0, 0, 0)), files[name])
        _write_if_changed(d / f"{version}.zip", buf.getvalue())
        _write_if_changed(d / f"{version}.mod", files["go.mod"].encode())
        info = f'{{"Version":"{version}","Time":"2020-01-01T00:00:00Z"}}'
        _write_if_changed(d / f"{version}.info", info.encode())
    for path in {p for p, _ in PROXY_MODULES}:
        versions = sorted(v for p, v in PROXY_MODULES if p == path)
        _write_if_changed(PROXY_DIR / path / "@v" / "list", "".join(v + "\n" for v in versions).encode())
    return PROXY_DIR


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


HELLO_PROG = Program()
CGO_PROG = Program(files=(("main.go", CGO_HELLO),))
FLAGS_PROG = Program(module="example.com/flags", files=(("main.go", FLAGS_MAIN),))
# A local-path replacement (greet => ./greet), a plain proxy dependency with an h1: sum (lib) and a
# version replacement whose `=>` line carries its own sum (util v1.0.0 => util v1.1.0).
MODS_PROG = Program(
    module="example.com/mods",
    files=(("main.go", MODS_MAIN),),
    go_mod_extra=(
        "\nrequire (\n\texample.com/greet v1.0.0\n\texample.com/lib v1.0.0\n\texample.com/util v1.0.0\n)\n"
        "\nreplace example.com/greet => ./greet\n"
        "\nreplace example.com/util v1.0.0 => example.com/util v1.1.0\n"
    ),
    extra_files=(
        ("greet/go.mod", "module example.com/greet\n\ngo 1.18\n"),
        ("greet/greet.go", 'package greet\n\nfunc Hello() string { return "hello" }\n'),
        ("go.sum", _go_sum()),
    ),
)

def _vuln_main(imports: tuple[str, ...]) -> str:
    body = "".join(f"\t{p.rsplit('/', 1)[1]}.Name(),\n" for p in imports)
    return ("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"time\"\n\n"
            + "".join(f'\t"{p}"\n' for p in imports)
            + ")\n\nfunc main() {\n\tif len(os.Args) > 1 && os.Args[1] == \"sleep\" {\n"
            "\t\ttime.Sleep(time.Hour)\n\t}\n\tfmt.Println(\n" + body + "\t)\n}\n")


_VULNDEPS_IMPORTS = ("golang.org/x/net", "example.com/vn/old", "example.com/vn/ok", "example.com/vn/pre",
                     "example.com/vn/down", "example.com/vn/local", "example.com/vn/pseudo")
# What the pack's vulnerable-dependency query must tell apart (fixed release v0.17.0 throughout):
# golang.org/x/net v0.16.0 replaced by v0.17.0 (fixed), old v0.16.0 (vulnerable), ok v0.17.0 (fixed),
# pre v0.17.0-rc.1 (vulnerable: a pre-release precedes its release), down v0.17.0 replaced by v0.16.0
# (vulnerable), local replaced by a directory (no version: listed), pseudo v0.17.1-0.2023... (a
# pseudo-version after v0.17.0: fixed).
VULNDEPS_PROG = Program(
    module="example.com/vulndeps",
    files=(("main.go", _vuln_main(_VULNDEPS_IMPORTS)),),
    go_mod_extra=(
        "\nrequire (\n\tgolang.org/x/net v0.16.0\n\texample.com/vn/old v0.16.0\n\texample.com/vn/ok v0.17.0\n"
        "\texample.com/vn/pre v0.17.0-rc.1\n\texample.com/vn/down v0.17.0\n\texample.com/vn/local v1.0.0\n"
        "\texample.com/vn/pseudo v0.17.1-0.20231010000000-abcdef012345\n)\n"
        "\nreplace golang.org/x/net v0.16.0 => golang.org/x/net v0.17.0\n"
        "\nreplace example.com/vn/down v0.17.0 => example.com/vn/down v0.16.0\n"
        "\nreplace example.com/vn/local => ./local\n"
    ),
    extra_files=(
        ("local/go.mod", "module example.com/vn/local\n\ngo 1.18\n"),
        ("local/local.go", 'package local\n\nfunc Name() string { return "local" }\n'),
        ("go.sum", _go_sum(tuple((p, v) for p, vs in _VULN_VERSIONS.items() for v in vs))),
    ),
)
# golang.org/x/net v0.17.0-rc.1, required directly: a pre-release of the fixed version.
VULNRC_PROG = Program(
    module="example.com/vulnrc",
    files=(("main.go", _vuln_main(("golang.org/x/net",))),),
    go_mod_extra="\nrequire golang.org/x/net v0.17.0-rc.1\n",
    extra_files=(("go.sum", _go_sum((("golang.org/x/net", "v0.17.0-rc.1"),))),),
)
VENDOR_PROG = Program(
    module="example.com/vendored",
    files=(("main.go", VENDOR_MAIN),),
    go_mod_extra="\nrequire example.com/vend v1.2.3\n",
    extra_files=(
        ("vendor/modules.txt", "# example.com/vend v1.2.3\n## explicit; go 1.18\nexample.com/vend\n"),
        ("vendor/example.com/vend/vend.go", 'package vend\n\nfunc Name() string { return "vend" }\n'),
    ),
)

# --- the catalogue ----------------------------------------------------------------------------

BIG_ENDIAN_ARCHES = frozenset({"s390x", "ppc64", "mips", "mips64"})


@dataclass(frozen=True)
class GoFixture:
    """A Go executable and the facts its build fixes (independent of any reader)."""

    name: str
    build: Build | None  # None: assembled from other fixtures (the fat Mach-O)
    goos: str = "linux"
    goarch: str = "amd64"
    stripped: bool | None = False  # linked without a symbol table? None: not fixed by the build
    oracle: bool = True  # does `go version -m` read it (False for gccgo)
    why: str = ""

    @property
    def format(self) -> str:
        return {"windows": "pe", "darwin": "macho", "ios": "macho"}.get(self.goos, "elf")

    @property
    def byte_order(self) -> str:
        return "big" if self.goarch in BIG_ENDIAN_ARCHES else "little"


def _env(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(kv.items())


def _cross(goos: str, goarch: str) -> Build:
    return Build(env=_env(GOOS=goos, GOARCH=goarch))


_PROXY_ENV = _env(GOPROXY=f"file://{PROXY_DIR}", GOFLAGS="-mod=mod")
_STATIC_LDFLAGS = "-ldflags=-linkmode external -extldflags -static"

GO_FIXTURES: dict[str, GoFixture] = {f.name: f for f in [
    GoFixture("default", Build(), why="current Go, no flags"),
    GoFixture("stripped", Build(flags=("-ldflags=-s -w",)), stripped=True, why="-ldflags=-s -w"),
    GoFixture("pie", Build(flags=("-buildmode=pie",)), why="-buildmode=pie"),
    GoFixture("cgo", Build(program=CGO_PROG, env=_env(CGO_ENABLED="1")), why="CGO_ENABLED=1, dynamic"),
    GoFixture("static", Build(program=CGO_PROG, env=_env(CGO_ENABLED="1"), flags=(_STATIC_LDFLAGS,)),
              why="cgo, external linker, -static"),
    GoFixture("trimpath", Build(flags=("-trimpath",)), why="-trimpath"),
    GoFixture("flags", Build(program=FLAGS_PROG, flags=('-ldflags=-X "main.v=a b"', "-tags=netgo,foo")),
              why="quoted -ldflags value and -tags"),
    GoFixture("mods", Build(program=MODS_PROG, env=_env(GOPROXY=f"file://{PROXY_DIR}", GOFLAGS="-mod=mod")),
              why="local replace, proxy dep with h1: sum, version replace"),
    GoFixture("vulndeps", Build(program=VULNDEPS_PROG, env=_PROXY_ENV),
              why="advisory modules: replaced by the fixed release, pre-release, pseudo-version, local dir"),
    GoFixture("vulnrc", Build(program=VULNRC_PROG, env=_PROXY_ENV),
              why="golang.org/x/net v0.17.0-rc.1, a pre-release of the fixed version"),
    GoFixture("vendor", Build(program=VENDOR_PROG, flags=("-mod=vendor",)), why="vendored dependency"),
    GoFixture("windows_386", _cross("windows", "386"), goos="windows", goarch="386", why="PE32"),
    GoFixture("windows_amd64", _cross("windows", "amd64"), goos="windows", goarch="amd64", why="PE32+"),
    GoFixture("darwin_amd64", _cross("darwin", "amd64"), goos="darwin", goarch="amd64", why="Mach-O x86-64"),
    GoFixture("darwin_arm64", _cross("darwin", "arm64"), goos="darwin", goarch="arm64", why="Mach-O arm64"),
    GoFixture("linux_arm64", _cross("linux", "arm64"), goarch="arm64", why="ELF aarch64"),
    GoFixture("linux_s390x", _cross("linux", "s390x"), goarch="s390x", why="ELF big endian"),
    GoFixture("linux_ppc64", _cross("linux", "ppc64"), goarch="ppc64", why="ELF big endian"),
    GoFixture("old", Build(toolchain="old"), why="Debian Go 1.19"),
    GoFixture("gccgo", Build(toolchain="gccgo"), oracle=False, why="gccgo: no build-info block"),
    GoFixture("fat", None, goos="darwin", goarch="", stripped=None,
              why="universal Mach-O: darwin_arm64 then darwin_amd64 slices"),
    GoFixture("vcs", None, why="built in a git checkout with an untracked file: vcs.* settings"),
]}

# The slices of the fat fixture, in file order (arm64 first, so "first slice" and "host slice"
# differ on an amd64 host).
FAT_SLICES = ("darwin_arm64", "darwin_amd64")

# Fixtures built with toolchains the Go oracle reads, i.e. everything but gccgo.
ORACLE_FIXTURES = tuple(n for n, f in GO_FIXTURES.items() if f.oracle)


def _skip_reason(f: GoFixture) -> str | None:
    tool = {"new": GO_NEW, "old": GO_OLD, "gccgo": GCCGO and GO_OLD}
    tc = f.build.toolchain if f.build else "new"
    if not tool[tc]:
        return f"{f.name}: toolchain {tc!r} is not installed (run .ci/run to install the toolchains)"
    return None


def build_fixture(name: str) -> Path:
    """Build (or reuse the cached) fixture ``name``; skips the calling test when it cannot be made."""
    f = GO_FIXTURES[name]
    reason = _skip_reason(f)
    if reason:
        pytest.skip(reason)
    if name == "fat":
        return make_fat([build_fixture(s) for s in FAT_SLICES], CACHE / "fat" / "prog-universal")
    if name == "vcs":
        return _build_vcs()
    assert f.build is not None
    if name in ("mods", "vulndeps", "vulnrc"):
        ensure_proxy()
    try:
        return build(f.build)
    except RuntimeError as e:
        if name == "static" and ("cannot find -l" in str(e) or "static" in str(e)):
            pytest.skip(f"static: the external linker cannot link statically here: {str(e)[-300:]}")
        raise


# --- the fat Mach-O ---------------------------------------------------------------------------

FAT_MAGIC = 0xCAFEBABE


def make_fat(slices: list[Path], out: Path, align_log2: int = 14) -> Path:
    """Assemble a universal Mach-O as lipo does: a big-endian fat header, one fat_arch (cputype,
    cpusubtype, offset, size, align) per slice, each slice at a 2**align_log2 boundary."""
    datas = [s.read_bytes() for s in slices]
    header = struct.pack(">II", FAT_MAGIC, len(datas))
    offset = 1 << align_log2
    arches = b""
    for data in datas:
        magic = struct.unpack_from("<I", data)[0]
        if magic not in (0xFEEDFACE, 0xFEEDFACF):
            raise ValueError("make_fat: not a little-endian thin Mach-O")
        cputype, cpusubtype = struct.unpack_from("<ii", data, 4)
        arches += struct.pack(">iiIII", cputype, cpusubtype, offset, len(data), align_log2)
        offset += len(data)
        offset = (offset + (1 << align_log2) - 1) & ~((1 << align_log2) - 1)
    blob = bytearray(header + arches)
    for data, (_, _, off, _, _) in zip(datas, struct.iter_unpack(">iiIII", arches), strict=True):
        blob += b"\0" * (off - len(blob))
        blob += data
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out, bytes(blob))
    return out


# --- a build inside a git checkout (vcs.* settings) ---------------------------------------------

VCS_TIME = "2021-02-03T04:05:06Z"


def _build_vcs() -> Path:
    go = GO_NEW
    assert go is not None
    git = shutil.which("git")
    if not git:
        pytest.skip("vcs: git is not installed")
    key = hashlib.sha256(repr((go, HELLO, VCS_TIME, 1)).encode()).hexdigest()[:16]
    exe = CACHE / "vcs" / key / "prog"
    if exe.exists():
        return exe
    src = CACHE / "vcs" / (key + ".src")
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    (src / "go.mod").write_text("module example.com/vcs\n\ngo 1.18\n")
    (src / "main.go").write_text(HELLO)
    env = go_env(go, src)
    genv = {**env, "GIT_AUTHOR_DATE": VCS_TIME, "GIT_COMMITTER_DATE": VCS_TIME, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for cmd in (["init", "-q"], ["add", "go.mod", "main.go"], ["commit", "-q", "-m", "init"]):
        subprocess.run([git, *cmd], cwd=src, env=genv, check=True, capture_output=True, timeout=60)
    (src / "untracked.txt").write_text("makes the tree modified\n")
    tmp = exe.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([go, "build", "-buildvcs=true", "-o", str(tmp), "."], cwd=src, env=env,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"go build (vcs) failed:\n{r.stderr}")
    os.replace(tmp, exe)
    return exe


def git_head(name: str = "vcs") -> str:
    """The commit the vcs fixture was built from, asked of git (an oracle independent of Go)."""
    exe = build_fixture(name)
    src = exe.parent.with_name(exe.parent.name + ".src")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


# --- non-Go samples ---------------------------------------------------------------------------

C_HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'

# A minimal but well-formed Java class file (class A extends java.lang.Object, major version 52):
# the same CA FE BA BE magic as a universal Mach-O, followed by 00 00 00 34.
JAVA_CLASS = bytes.fromhex(
    "cafebabe00000034"  # magic, minor 0, major 52
    "0005"  # constant pool count
    "070002" "010001" "41"  # #1 Class #2, #2 Utf8 "A"
    "070004" "010010" + b"java/lang/Object".hex()  # #3 Class #4, #4 Utf8
    + "0021" "0001" "0003" "0000" "0000" "0000" "0000"  # flags, this, super, ifaces, fields, methods, attrs
)


def c_binary() -> Path:
    """A C program compiled by gcc (cached): a well-formed ELF with no Go in it."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        pytest.skip("gcc is not installed")
    out = CACHE / "c" / hashlib.sha256(C_HELLO.encode()).hexdigest()[:12] / "hello"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        (out.parent / "hello.c").write_text(C_HELLO)
        tmp = out.with_suffix(".tmp")
        subprocess.run([gcc, "-O1", "-o", str(tmp), str(out.parent / "hello.c")], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, out)
    return out


def system_elf_samples(limit: int = 40) -> list[Path]:
    """Regular ELF files from /usr/bin (symlinks resolved, since path input refuses symlinks)."""
    seen: dict[Path, None] = {}
    for d in ("/bin", "/usr/bin"):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            p = Path(os.path.realpath(os.path.join(d, n)))
            try:
                with open(p, "rb") as fh:
                    if fh.read(4) != b"\x7fELF":
                        continue
            except OSError:
                continue
            if p.is_file():
                seen.setdefault(p)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)


def toolchain_go_executables() -> list[Path]:
    """Go programs someone else built: the installed toolchains' own gofmt/go (real-world inputs)."""
    out = []
    for go in (GO_NEW, GO_OLD):
        if not go:
            continue
        root = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
        for rel in ("bin/gofmt", "bin/go"):
            p = Path(root) / rel
            if p.is_file():
                out.append(p.resolve())
    return out


def uvarint(b: bytes | bytearray, i: int) -> tuple[int, int]:
    """Go's encoding/binary.Uvarint at ``b[i:]``: (value, index after it)."""
    n = shift = 0
    while True:
        byte = b[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return n, i


# --- comparing with the Go oracle ------------------------------------------------------------


def _mod(m: dict[str, Any] | None) -> tuple | None:
    if not m:
        return None
    return (m["Path"], m.get("Version", ""), m.get("Sum", ""), _mod(m.get("Replace")))


def _ours(m: Module | None) -> tuple | None:
    if m is None:
        return None
    return (m.path, m.version, m.sum, _ours(m.replace))


ModuleRow = tuple[str, str, str, str, str, str, str]


def go_modules_rows(info: dict[str, Any]) -> set[ModuleRow]:
    """The go_modules rows `go version -m -json` implies for one executable: (module, version, sum,
    replace_module, replace_version, replace_sum, main), the oracle's fields renamed, nothing
    derived. The stdlib row carries GoVersion as printed; the fixtures built here set no
    GOEXPERIMENT, so it has no " X:..." suffix to drop (test_stdlib_version_spelling covers that)."""
    rows: set[ModuleRow] = set()
    main = info.get("Main") or {}
    if main.get("Path"):
        rows.add((main["Path"], main.get("Version", ""), main.get("Sum", ""), "", "", "", "1"))
    for d in info.get("Deps") or []:
        r = d.get("Replace") or {}
        rows.add((d["Path"], d.get("Version", ""), d.get("Sum", ""), r.get("Path", ""), r.get("Version", ""),
                  r.get("Sum", ""), "0"))
    rows.add(("stdlib", info["GoVersion"], "", "", "", "", "0"))
    return rows


def assert_equals_oracle(info: BuildInfo, o: dict[str, Any]) -> None:
    """Field by field, so a failure names the field that differs (this module is not assertion-
    rewritten by pytest, hence the messages)."""
    main = o.get("Main") or {}
    pairs = [
        ("go_version", info.go_version, o["GoVersion"]),
        ("path", info.path, o.get("Path", "")),
        ("main", _ours(info.main), _mod(main) if main.get("Path") else None),
        ("deps", [_ours(d) for d in info.deps], [_mod(d) for d in o.get("Deps") or []]),
        ("settings", list(info.settings), [(s["Key"], s.get("Value", "")) for s in o.get("Settings") or []]),
    ]
    for name, ours, theirs in pairs:
        assert ours == theirs, f"{name}: ours {ours!r} != go version -m {theirs!r}"


# --- pytest fixtures --------------------------------------------------------------------------


GoExe = Callable[[str], Path]


@pytest.fixture(scope="session")
def go_exe() -> GoExe:
    """``go_exe(name)``: the path of catalogue fixture ``name`` (built once per session)."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = build_fixture(name)
        return made[name]

    return get


@pytest.fixture(scope="session", params=list(GO_FIXTURES))
def go_fixture(request: pytest.FixtureRequest, go_exe: Callable[[str], Path]) -> tuple[GoFixture, Path]:
    """Every catalogue fixture in turn: (facts, path)."""
    return GO_FIXTURES[request.param], go_exe(request.param)


@pytest.fixture(scope="session")
def non_go_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small non-Go inputs with the error class each must give: name -> path."""
    d = tmp_path_factory.mktemp("non-go")
    (d / "script.sh").write_text("#!/bin/sh\necho hello\n")
    (d / "Hello.class").write_bytes(JAVA_CLASS)
    (d / "empty").write_bytes(b"")
    (d / "text.txt").write_text("just some text\n")
    return {p.name: p for p in sorted(d.iterdir())}


def fixture_files() -> tuple[list[Path], dict[str, str]]:
    """For bench/ and fuzz/ (no pytest run to report skips): every Go fixture that can be built
    here, and name -> reason for each that cannot (a missing toolchain). Callers print the second
    so a smaller set never passes unnoticed; a failed build raises."""
    built: list[Path] = []
    missing: dict[str, str] = {}
    for name in GO_FIXTURES:
        try:
            built.append(build_fixture(name))
        except pytest.skip.Exception as e:
            missing[name] = str(e.msg)
    return built, missing
