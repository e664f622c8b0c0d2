"""Which advisories affect one program, and how precisely we know it (as ``govulncheck -mode=binary``).

Modules come from the build info (a replaced module is matched under its replacement's path and
version; a directory replacement or ``(devel)`` has no version and matches nothing), plus
``stdlib`` at the program's Go version; ``toolchain`` advisories concern the go command and are
never matched. Then each affected package is kept only for the program's GOOS/GOARCH, and the
program's function list (from the pclntab, so stripped programs have one too) says whether a
vulnerable package or function is linked in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..buildinfo import split_function
from ._db import Database
from ._model import Entry, Package
from ._version import Key, go_semver, key, module_key

STDLIB = "stdlib"
TOOLCHAIN = "toolchain"

LEVEL_SYMBOL = "symbol"  # a vulnerable function is linked in (or every function of a linked package is)
LEVEL_PACKAGE = "package"  # a vulnerable package is linked in, none of its vulnerable functions
LEVEL_MODULE = "module"  # the module version is affected; no vulnerable code seen, or no function data

# Package -> the symbols of it that are linked in, OSV spelling ("Type.Method", "Func").
Symbols = Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ModuleVersion:
    """One module of a program as matched: path and version after replacement."""

    path: str
    version: str


@dataclass(frozen=True, slots=True)
class Program:
    """What matching needs to know of one executable."""

    go_version: str = ""  # as recorded: go1.21.4, go1.22rc1, go1.21.4 X:arenas; "" unknown
    modules: tuple[ModuleVersion, ...] = ()  # main module and dependencies (not stdlib)
    goos: str = ""
    goarch: str = ""
    format: str = ""  # elf, pe, macho: rules platforms out when goos is unknown
    symbols: Symbols | None = None  # None: no function data, findings stay at module level


@dataclass(frozen=True, slots=True)
class Finding:
    """One advisory that affects one program."""

    entry: Entry
    module: str
    version: str  # as found (v1.2.3, go1.21.4)
    fixed_version: str  # first fixed release above it, spelt as the version is; "" none
    level: str
    packages: tuple[str, ...]  # vulnerable packages linked in
    symbols: tuple[str, ...]  # vulnerable functions linked in, "pkg/path.Type.Method"; "pkg.*" whole package


def modules_of(main: object, deps: Iterable[object]) -> tuple[ModuleVersion, ...]:
    """The ``buildinfo.Module`` list of a program as matched (replacements applied)."""
    out = []
    for m in (main, *deps):
        if m is None:
            continue
        rep = getattr(m, "replace", None)
        src = rep if rep is not None else m
        path, version = getattr(src, "path", ""), getattr(src, "version", "")
        if path and module_key(version) is not None:  # not "(devel)", not a directory replacement
            out.append(ModuleVersion(path, version))
    return tuple(out)


def package_symbols(functions: Iterable[str], main_package: str = "") -> dict[str, frozenset[str]]:
    """Package -> symbols for a program's function names; ``main`` is its main package's path."""
    found: dict[str, set[str]] = {}
    for name in functions:
        split = split_function(name)
        if split is None:
            continue
        pkg, sym = split
        if pkg == "main" and main_package:
            pkg = main_package
        found.setdefault(pkg, set()).add(sym)
    return {p: frozenset(s) for p, s in found.items()}


def _display(module: str, written: str) -> str:
    """A fixed version as users spell it: ``go1.21.12`` for stdlib, ``v0.17.0`` for modules."""
    if not written:
        return ""
    if module == STDLIB:
        return _go_name(written)
    return "v" + written


def _go_name(semver: str) -> str:
    core, _, pre = semver.partition("-")
    major, minor, patch = [*core.split("."), "0", "0"][:3]
    name = f"go{major}.{minor}"
    if pre:  # 1.22.0-rc.1 -> go1.22rc1
        return name + pre.replace(".", "")
    return f"{name}.{patch}"


def match(db: Database, program: Program) -> list[Finding]:
    """Every advisory of ``db`` that affects ``program`` (withdrawn ones too: the row says so)."""
    targets: list[tuple[str, str, str]] = []  # (module, version as found, semver to compare)
    if program.go_version:
        sv = go_semver(program.go_version)
        if sv:
            targets.append((STDLIB, program.go_version.split(" ", 1)[0], sv))
    for m in program.modules:
        if m.path not in (STDLIB, TOOLCHAIN):
            targets.append((m.path, m.version, m.version))
    out = []
    for module, found, version in targets:
        vkey = key(version) if module == STDLIB else module_key(version)
        if vkey is None:
            continue
        for entry in db.for_module(module):
            finding = _finding(entry, module, found, vkey, program)
            if finding is not None:
                out.append(finding)
    return out


def _finding(entry: Entry, module: str, found: str, vkey: Key, program: Program) -> Finding | None:
    level = ""
    packages: list[str] = []
    symbols: list[str] = []
    fixed = ""
    for aff in entry.affected:
        if aff.module != module or not aff.affects(vkey):
            continue
        pkgs = [p for p in aff.packages if p.on(program.goos, program.goarch, program.format)]
        if aff.packages and not pkgs:
            continue  # vulnerable on other platforms only
        fixed = fixed or aff.fixed_for(vkey)
        here = _level(module, pkgs, program.symbols, packages, symbols)
        level = _best(level, here)
    if not level:
        return None
    return Finding(entry, module, found, _display(module, fixed), level,
                   tuple(dict.fromkeys(packages)), tuple(dict.fromkeys(symbols)))


_RANK = {"": 0, LEVEL_MODULE: 1, LEVEL_PACKAGE: 2, LEVEL_SYMBOL: 3}


def _best(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def _level(module: str, pkgs: Sequence[Package], linked: Symbols | None,
           packages: list[str], symbols: list[str]) -> str:
    if linked is None:
        return LEVEL_MODULE
    if not pkgs:
        # No package named: every package of the module is vulnerable.
        present = sorted(p for p in linked
                         if module != STDLIB and (p == module or p.startswith(module + "/")))
        packages.extend(present)
        symbols.extend(f"{p}.*" for p in present)
        return LEVEL_SYMBOL if present else LEVEL_MODULE
    level = LEVEL_MODULE
    for p in pkgs:
        path = p.path
        have = linked.get(path)
        if have is None:
            continue
        packages.append(path)
        wanted = p.symbols
        if not wanted:
            symbols.append(f"{path}.*")
            level = LEVEL_SYMBOL
            continue
        hit = sorted(wanted & have)
        if hit:
            symbols.extend(f"{path}.{s}" for s in hit)
            level = LEVEL_SYMBOL
        elif level != LEVEL_SYMBOL:
            level = LEVEL_PACKAGE
    return level
