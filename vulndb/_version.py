"""Versions as the Go vulnerability database compares them: SEMVER without the leading ``v``.

Go release names map onto semver (``go1.22rc1`` -> ``1.22.0-rc.1``, ``go1.21`` -> ``1.21.0``);
experiments (``go1.21.4 X:arenas``) and ``+incompatible`` do not change the version compared.
Anything that is not a version (``(devel)``, ``devel go1.23-abc``) maps to None: nothing is
invented for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..buildinfo import go_release

# A comparison key: (major, minor, patch, prerelease) where prerelease sorts below a release.
Key = tuple[int, int, int, tuple[tuple[int, int, str], ...]]

_SEMVER = re.compile(
    r"v?(0|[1-9]\d{0,17})\.(0|[1-9]\d{0,17})\.(0|[1-9]\d{0,17})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_GO = re.compile(r"go(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:(alpha|beta|rc)(\d{1,9}))?")
_RELEASE = (1, 0, "")  # sorts after every prerelease identifier list


def key(version: str) -> Key | None:
    """The comparison key of a semver string (``v`` prefix optional), or None if it is not one."""
    m = _SEMVER.fullmatch(version)
    if m is None:
        return None
    # A prerelease sorts before the release; numeric identifiers before alphanumeric ones.
    pre = (_RELEASE,) if m.group(4) is None else tuple(_ident(p) for p in m.group(4).split("."))
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def _ident(part: str) -> tuple[int, int, str]:
    # (0, n, "") numeric, (0, big, s) alphanumeric: compares as semver 2.0.0 section 11 wants,
    # and always below _RELEASE, whose first field is 1.
    if part.isdigit():
        return (0, int(part), "")
    return (0, 1 << 62, part)


def go_semver(go_version: str) -> str:
    """``go1.22rc1`` -> ``1.22.0-rc.1``; ``go1.21.4 X:arenas`` and ``go1.27.3-X:boringcrypto`` ->
    ``1.21.4``, ``1.27.3``; "" if not a release."""
    m = _GO.fullmatch(go_release(go_version).split(" ", 1)[0])
    if m is None:
        return ""
    major, minor, patch, pre, num = m.groups()
    out = f"{int(major)}.{int(minor or 0)}.{int(patch or 0)}"
    if pre:
        out += f"-{pre}.{int(num)}"
    return out


def module_key(version: str) -> Key | None:
    """The key of a module version as the build info records it (``v1.2.3+incompatible``)."""
    return key(version.removesuffix("+incompatible"))


def affected(events: Sequence[tuple[str, Key | None]], version: Key) -> bool:
    """Whether ``version`` lies in one OSV SEMVER range, given as (kind, key) events where kind is
    ``introduced`` or ``fixed`` and key None means "0" (the beginning of time); as govulncheck's
    containsSemver: events sorted by version, then walked.
    """
    if not events:
        return True
    ordered = sorted(events, key=lambda e: (e[1] is not None, e[1] or (0, 0, 0, ())))
    hit = False
    for kind, at in ordered:
        if not hit and kind == "introduced":
            hit = at is None or version >= at
        elif hit and kind == "fixed" and at is not None:
            hit = version < at
    return hit
