"""The build-info columns: what a table says about a Go binary's build, defined once.

``go_processes`` (per running process) and ``go_executables`` (per file on disk) describe the same
thing, and so will the tables of Go libraries a process maps: they share these definitions, the
same names and the same meanings.
"""

from __future__ import annotations

from ..buildinfo import BuildInfo, godebug
from ..common import Cache
from ._api import Column
from ._api import ColumnType as T

COLUMNS = (
    Column("version", T.TEXT,
           "Go version recorded in the executable (go1.22.1, go1.21.4 X:arenas); empty when not recorded"),
    Column("version_range", T.TEXT,
           "Go versions the runtime's pclntab format allows (e.g. go1.20+), when version is empty"),
    Column("version_source", T.TEXT,
           "Where version was read: buildinfo (the build-info block), symbol (runtime.buildVersion "
           "through the symbol table), data (its one string header in data, stripped files), or empty"),
    Column("module", T.TEXT, "Main module path (go.mod's module line); empty when not recorded"),
    Column("module_version", T.TEXT,
           "Main module version, e.g. v1.2.3; a recorded (devel) is replaced by the release that "
           "-ldflags -X or a version variable of the main package sets, when there is one"),
    Column("module_version_source", T.TEXT,
           "Where module_version was read: buildinfo, ldflags (a -X main.version=... build setting), "
           "symbol (a version variable found through the symbol table), or empty"),
    Column("main_package", T.TEXT, "Import path of the main package, e.g. example.com/tool/cmd/tool"),
    Column("vcs", T.TEXT, "Version control system the build was stamped from, e.g. git"),
    Column("vcs_revision", T.TEXT, "VCS revision (commit) the binary was built from"),
    Column("vcs_time", T.TEXT, "Time of the VCS revision, RFC 3339"),
    Column("vcs_modified", T.INTEGER,
           "1 when built from a modified working tree, 0 when clean, NULL unknown"),
    Column("goos", T.TEXT, "Target operating system (GOOS build setting)"),
    Column("goarch", T.TEXT,
           "Target architecture (GOARCH build setting, else the executable's machine type)"),
    Column("cgo_enabled", T.INTEGER, "1 when built with CGO_ENABLED=1, 0 with CGO_ENABLED=0, NULL unknown"),
    Column("compiler", T.TEXT, "Compiler: gc or gccgo"),
    Column("build_mode", T.TEXT, "-buildmode setting: exe, pie, c-shared ..."),
    Column("trimpath", T.INTEGER, "1 when built with -trimpath, 0 without, NULL unknown"),
    Column("detection", T.TEXT,
           "How the executable was recognised as Go: buildinfo, symbols, gccgo, pclntab or buildid"),
    Column("format", T.TEXT, "Executable format: elf, pe or macho"),
    Column("arch", T.TEXT, "Machine type of the executable's header, in GOARCH spelling"),
    Column("stripped", T.INTEGER, "1 when the executable has no symbol table, else 0"),
    Column("fips", T.TEXT,
           "How the program's cryptography is FIPS 140 validated: go-module:<version> (the Go "
           "Cryptographic Module snapshot a GOFIPS140 build selected, or latest), boringcrypto, or the "
           "crypto back end of a toolchain fork (systemcrypto, also for the Microsoft build of Go's "
           "microsoft_systemcrypto=1 setting; opensslcrypto, cngcrypto, darwincrypto, "
           "strictfipsruntime); empty when the build records none"),
    Column("godebug_default", T.TEXT,
           "The build's default GODEBUG settings (DefaultGODEBUG: go.mod go and godebug lines, "
           "//go:debug) that differ from the defaults of the program's Go version, name=value sorted, "
           "comma-separated; settings that version ignores are left out"),
)


def column(name: str) -> Column:
    """The shared column called ``name``."""
    for c in COLUMNS:
        if c.name == name:
            return c
    raise KeyError(name)


def columns_except(*names: str) -> tuple[Column, ...]:
    """The shared columns, in their order, without those a table places itself."""
    for name in names:
        column(name)  # a misspelt name fails at import, not by silently keeping the column
    return tuple(c for c in COLUMNS if c.name not in names)


# id(info) -> (info, its values). The detector hands out one BuildInfo per file identity, so every
# process of a binary meets the same object; holding it here keeps its id from being reused.
_cache: Cache[int, tuple[BuildInfo, dict[str, object]]] = Cache(4096)


def values(info: BuildInfo) -> dict[str, object]:
    """The values of :data:`COLUMNS` for ``info``, a pure function of it, memoised per BuildInfo
    object because a warm scan builds them for every Go process or file again (treat the result
    as read-only)."""
    cached = _cache.get(id(info))
    if cached is not None and cached[0] is info:
        return cached[1]
    main = info.main
    out: dict[str, object] = {
        "version": info.go_version,
        "version_range": info.go_version_range,
        "version_source": info.version_source,
        "module": main.path if main else "",
        "module_version": info.module_version,
        "module_version_source": info.module_version_source,
        "main_package": info.path,
        "vcs": info.vcs,
        "vcs_revision": info.vcs_revision,
        "vcs_time": info.vcs_time,
        "vcs_modified": info.vcs_modified,
        "goos": info.goos,
        "goarch": info.goarch or info.arch,
        "cgo_enabled": info.cgo_enabled,
        "compiler": info.compiler,
        "build_mode": info.build_mode,
        "trimpath": info.trimpath,
        "detection": info.detection,
        "format": info.format,
        "arch": info.arch,
        "stripped": info.stripped,
        "fips": godebug.fips(info),
        "godebug_default": godebug.render(godebug.effective(info, None)),
    }
    _cache.put(id(info), (info, out))
    return out
