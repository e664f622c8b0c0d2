"""What a Go executable says about itself, and the ways reading it can fail."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote


class BuildInfoError(Exception):
    """Base of every error the reader raises: callers catch this one type and never a stray one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnreadableFile(BuildInfoError):
    """The file could not be opened or is not a regular file (FIFO, device, directory, symlink)."""


class UnsupportedFormat(BuildInfoError):
    """Not an ELF, PE or Mach-O executable (a script, a Java class file, an empty file)."""


class MalformedExecutable(BuildInfoError):
    """An executable whose headers or tables are inconsistent, truncated or over our bounds."""


class NotGoExecutable(BuildInfoError):
    """A well-formed executable that carries no evidence of being a Go program."""


# How a file was recognised as Go, strongest evidence first.
DETECTION_BUILDINFO = "buildinfo"  # the \xff Go buildinf: block
DETECTION_SYMBOLS = "symbols"  # runtime.buildVersion / runtime.main / main.main symbols
DETECTION_GCCGO = "gccgo"  # gccgo's $descriptor symbols
DETECTION_PCLNTAB = "pclntab"  # a valid pclntab header (gives a version range only)
DETECTION_BUILDID = "buildid"  # the Go build ID note / marker

# Where BuildInfo.go_version came from.
SOURCE_BUILDINFO = "buildinfo"  # the build-info block
SOURCE_SYMBOL = "symbol"  # a symbol (runtime.buildVersion, main.version ...) naming a Go string
SOURCE_DATA = "data"  # the one runtime.buildVersion string header found in data without symbols
SOURCE_LDFLAGS = "ldflags"  # a -X assignment in the -ldflags build setting (module versions only)


@dataclass(frozen=True, slots=True)
class Module:
    """One `mod`/`dep` line of the module info; `replace` is the `=>` line that follows it."""

    path: str
    version: str = ""
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """The reader's answer for one executable (one slice of a universal Mach-O)."""

    format: str  # "elf" | "pe" | "macho"
    arch: str  # GOARCH spelling of the header's machine: amd64, 386, arm64, arm, ppc64, s390x ...
    byte_order: str  # "little" | "big"
    stripped: bool  # no symbol table
    detection: str  # one of the DETECTION_* values
    go_version: str = ""  # as recorded ("go1.21.4 X:arenas"); "" when unknown, never guessed
    go_version_range: str = ""  # from pclntab magic when go_version is unknown, e.g. "go1.20+"
    path: str = ""  # main package path
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()  # ordered `build` lines, values unquoted
    slices: tuple[BuildInfo, ...] = field(default=())  # every slice of a universal file, else ()
    version_source: str = ""  # SOURCE_BUILDINFO | SOURCE_SYMBOL | SOURCE_DATA, "" when no version
    # The main module's release: main.version unless that is "(devel)", which keeps the recorded
    # value in main.version and puts what -ldflags -X or a symbol says here.
    module_version: str = ""
    module_version_source: str = ""  # SOURCE_BUILDINFO | SOURCE_LDFLAGS | SOURCE_SYMBOL | ""
    pclntab_format: str = ""  # "1.2" | "1.16" | "1.18" | "1.20" when the pclntab was read

    def setting(self, key: str) -> str | None:
        for k, v in self.settings:
            if k == key:
                return v
        return None

    @property
    def goos(self) -> str:
        return self.setting("GOOS") or ""

    @property
    def goarch(self) -> str:
        return self.setting("GOARCH") or ""

    @property
    def compiler(self) -> str:
        return self.setting("-compiler") or ("gccgo" if self.detection == DETECTION_GCCGO else "")

    @property
    def build_mode(self) -> str:
        return self.setting("-buildmode") or ""

    @property
    def cgo_enabled(self) -> bool | None:
        return _flag(self.setting("CGO_ENABLED"))

    @property
    def trimpath(self) -> bool | None:
        return _flag(self.setting("-trimpath"))

    @property
    def vcs(self) -> str:
        return self.setting("vcs") or ""

    @property
    def vcs_revision(self) -> str:
        return self.setting("vcs.revision") or ""

    @property
    def vcs_time(self) -> str:
        return self.setting("vcs.time") or ""

    @property
    def vcs_modified(self) -> bool | None:
        return _flag(self.setting("vcs.modified"))


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    return None


@dataclass(frozen=True, slots=True)
class FuncTable:
    """What a Go executable's pclntab (the runtime's function table) says: every Go program keeps
    it, stripped or not, because stack traces need it."""

    format: str  # "1.2" | "1.16" | "1.18" | "1.20": the pclntab layout
    version_range: str  # Go versions that write this layout, e.g. "go1.20+"
    text_start: int  # address of the first function (runtime.text)
    text_end: int  # end of the last function
    # Sorted, unique full names ("net/http.(*Server).Serve", "main.main"), including functions
    # that exist only inlined into others.
    functions: tuple[str, ...]

    def packages(self) -> frozenset[str]:
        """Import paths of the functions' packages (compiler-generated names belong to none)."""
        return frozenset(split[0] for split in map(split_function, self.functions) if split)


# The linker's own symbols: "type:.eq.T" and "go:buildid" since Go 1.20, "type..eq.T" and
# "go.shape.int" before.
_LINKER = ("go:", "type:", "type.", "go.")
_CLOSURE = re.compile(r"(?:func|gowrap|deferwrap)\d+|\d+")


def split_function(name: str) -> tuple[str, str] | None:
    """A function name as (import path, symbol as the vulnerability database writes it):
    ``net/http.(*Server).Serve`` -> (``net/http``, ``Server.Serve``). The package is found as
    debug/gosym's Sym.PackageName finds it, with the linker's escaping undone
    (``gopkg.in/yaml%2ev3``); closures count as the function they are in, generic instantiations
    as the generic function. None for the linker's own symbols. The one reading of a function
    name, for both the pclntab's packages and vulnerability matching."""
    if name.startswith(_LINKER):
        return None
    # A package path holds no bracket, while type arguments hold slashes and dots.
    bracket = name.find("[")
    head = name if bracket < 0 else name[:bracket]
    slash = head.rfind("/")
    dot = head.find(".", slash + 1)
    if dot <= 0:
        return None
    pkg, rest = name[:dot], _outside_brackets(name[dot + 1 :])
    if not rest:
        return None
    parts: list[str] = []
    for part in rest.split("."):
        if parts and _CLOSURE.fullmatch(part):
            break
        parts.append(part)
    if parts[0].startswith("(") and parts[0].endswith(")"):
        parts[0] = parts[0].strip("(*)")
    if "%" in pkg:
        pkg = unquote(pkg)
    return pkg, ".".join(parts)


def _outside_brackets(s: str) -> str:
    """``s`` without its bracketed type arguments, however deeply they nest (one pass)."""
    if "[" not in s:
        return s
    out = []
    depth = 0
    for c in s:
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(c)
    return "".join(out)
