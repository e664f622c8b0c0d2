"""What the database says (entries, as much of OSV as matching needs) and how reading it fails."""

from __future__ import annotations

from dataclasses import dataclass

from ._version import Key, affected


class VulnDBError(Exception):
    """Base of every error this layer raises; ``reason`` is the short message shown to users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotInstalled(VulnDBError):
    """No database at the configured location."""


class Untrusted(VulnDBError):
    """A file or a directory above it may be written by someone other than root or us."""


class Malformed(VulnDBError):
    """A file is not what the database layout or the OSV schema says (or is over our bounds)."""


@dataclass(frozen=True, slots=True)
class Package:
    """One ``ecosystem_specific.imports`` item: a vulnerable package, its functions, platforms."""

    path: str
    symbols: frozenset[str]  # OSV spelling ("Type.Method"); empty: every function of the package
    goos: tuple[str, ...] = ()  # empty: every GOOS
    goarch: tuple[str, ...] = ()  # empty: every GOARCH

    def on(self, goos: str, goarch: str, file_format: str = "") -> bool:
        """Whether this package is vulnerable on the platform. Without a GOOS (programs built before
        Go 1.18 record none) the file format still rules some out: PE is windows, Mach-O darwin
        or ios, ELF neither; an unknown value matches every list."""
        if self.goarch and goarch and goarch not in self.goarch:
            return False
        if not self.goos:
            return True
        if goos:
            return goos in self.goos
        possible = _FORMAT_GOOS.get(file_format)
        if possible is not None:
            return any(g in possible for g in self.goos)
        if file_format == "elf":
            return any(g not in _NOT_ELF for g in self.goos)
        return True


_FORMAT_GOOS = {"pe": frozenset({"windows"}), "macho": frozenset({"darwin", "ios"})}
_NOT_ELF = frozenset({"windows", "darwin", "ios", "plan9", "js", "wasip1"})


# One SEMVER range: (kind, key) events, kind "introduced" or "fixed", key None for "0".
Range = tuple[tuple[str, Key | None], ...]


@dataclass(frozen=True, slots=True)
class Affected:
    """One ``affected`` item: a module, the versions affected, and which of its packages."""

    module: str
    ranges: tuple[Range, ...]  # SEMVER ranges; () means every version (as OSV and govulncheck say)
    fixed: tuple[tuple[Key, str], ...]  # every fixed event, sorted: (key, as written)
    packages: tuple[Package, ...]  # empty: every package of the module

    def affects(self, version: Key) -> bool:
        return not self.ranges or any(affected(r, version) for r in self.ranges)

    def fixed_for(self, version: Key) -> str:
        """The first fixed version above ``version`` (as the entry writes it), "" if none."""
        for k, text in self.fixed:
            if k > version:
                return text
        return ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One advisory (``ID/<id>.json``), reduced to what rows and matching use."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    published: str
    modified: str
    withdrawn: str
    affected: tuple[Affected, ...]
