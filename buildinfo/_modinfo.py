"""The module-info text a Go binary embeds, parsed as runtime/debug.ParseBuildInfo does.

Go strings are bytes; we parse bytes and turn each field into text the way Go's JSON encoder
does (each byte of invalid UTF-8 becomes U+FFFD), so results compare equal to `go version -m -json`.
Malformed lines are errors, as in Go: `go version -m` rejects the same files.
"""

from __future__ import annotations

import re

from ._model import MalformedExecutable, Module

# cmd/go/internal/modload: infoStart / infoEnd frame the text in the binary.
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")

MAX_LINES = 1 << 16

_BAD = {c: "\ufffd" for c in range(0xDC80, 0xDD00)}


def go_string(b: bytes) -> str:
    """Bytes to text, one U+FFFD per byte of invalid UTF-8 (Go's encoding/json rule)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", "surrogateescape").translate(_BAD)


def strip_framing(mod: bytes) -> bytes:
    """Drop the 16-byte sentinels at each end, as debug/buildinfo does; b"" when absent."""
    if len(mod) >= 33 and mod[-17] == 0x0A:
        return mod[16:-16]
    return b""


def _rune_len(s: bytes, i: int) -> int:
    """Length of the valid UTF-8 sequence at s[i] (a byte >= 0x80), or 0 when invalid."""
    c = s[i]
    n = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
    if n == 0 or i + n > len(s):
        return 0
    try:
        s[i : i + n].decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return n


_SIMPLE = {
    ord("a"): b"\a", ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r",
    ord("t"): b"\t", ord("v"): b"\v", ord("\\"): b"\\",
}
_HEX = b"0123456789abcdefABCDEF"


def unquote_prefix(s: bytes) -> tuple[bytes, int]:
    """strconv.QuotedPrefix + Unquote for a "..." or `...` literal at the start of ``s``:
    (value, bytes consumed). Raises ValueError on a syntax error."""
    if len(s) < 2:
        raise ValueError("short quoted string")
    quote = s[0]
    end = s.find(bytes([quote]), 1)
    if end < 0:
        raise ValueError("unterminated quoted string")
    if quote == 0x60:  # `raw`: no escapes; carriage returns are dropped
        return s[1:end].replace(b"\r", b""), end + 1
    if quote != 0x22:
        raise ValueError("not a quoted string")
    out = bytearray()
    i = 1
    n = len(s)
    while i < n and s[i] != 0x22:
        c = s[i]
        if c == 0x0A:
            raise ValueError("newline in quoted string")
        if c >= 0x80:
            k = _rune_len(s, i)
            if k:
                out += s[i : i + k]
                i += k
            else:  # utf8.DecodeRune: RuneError, size 1, re-encoded
                out += b"\xef\xbf\xbd"
                i += 1
            continue
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("trailing backslash")
        e = s[i + 1]
        i += 2
        if e in _SIMPLE:
            out += _SIMPLE[e]
        elif e == 0x22:
            out.append(0x22)
        elif e in (0x78, 0x75, 0x55):  # \x \u \U
            w = 2 if e == 0x78 else 4 if e == 0x75 else 8
            digits = s[i : i + w]
            if len(digits) < w or any(d not in _HEX for d in digits):
                raise ValueError("bad hex escape")
            v = int(digits, 16)
            i += w
            if e == 0x78:
                out.append(v)  # a single byte, possibly not UTF-8
            elif v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                raise ValueError("invalid rune in escape")
            else:
                out += chr(v).encode("utf-8")
        elif 0x30 <= e <= 0x37:  # \ooo
            digits = s[i - 1 : i + 2]
            if len(digits) < 3 or any(not 0x30 <= d <= 0x37 for d in digits):
                raise ValueError("bad octal escape")
            v = int(digits, 8)
            if v > 255:
                raise ValueError("octal escape out of range")
            out.append(v)
            i += 2
        else:
            raise ValueError("unknown escape")
    if i >= n:
        raise ValueError("unterminated quoted string")
    return bytes(out), i + 1


def _unquote(s: bytes) -> bytes:
    value, used = unquote_prefix(s)
    if used != len(s):
        raise ValueError("text after closing quote")
    return value


_QUOTE_VALUE = ' \t\r\n"`'
_QUOTE_KEY = "=" + _QUOTE_VALUE
_QUOTE_BYTES = {True: re.compile(f"[{_QUOTE_KEY}]".encode()), False: re.compile(f"[{_QUOTE_VALUE}]".encode())}
_QUOTE_TEXT = {True: re.compile(f"[{_QUOTE_KEY}]"), False: re.compile(f"[{_QUOTE_VALUE}]")}


def needs_quote(s: bytes | str, key: bool) -> bool:
    """runtime/debug quoteKey / quoteValue: whether a build setting's key or value is written
    quoted (in the build-info block we parse, and in the `go version -m` lines we print)."""
    if key and not s:
        return True
    pattern = _QUOTE_BYTES[key] if isinstance(s, bytes) else _QUOTE_TEXT[key]
    return pattern.search(s) is not None  # type: ignore[arg-type]


def _module(elem: list[bytes], line: int) -> Module:
    if len(elem) not in (2, 3):
        raise MalformedExecutable(f"module info line {line}: expected 2 or 3 columns, got {len(elem)}")
    return Module(go_string(elem[0]), go_string(elem[1]), go_string(elem[2]) if len(elem) == 3 else "")


ParsedInfo = tuple[str, "Module | None", tuple[Module, ...], tuple[tuple[str, str], ...]]


# A build line that needs no unquoting: an unquoted key (no '=', space, tab, CR or quote), '=', and a
# value that neither starts with a quote nor holds a character quoteValue would quote ('=' allowed).
_PLAIN_SETTING = re.compile('([^= \t\r"`]+)=([^ \t\r"`]*)')


def parse(data: bytes) -> ParsedInfo:
    """(main package path, main module, deps, settings) from unframed module info."""
    fast = _parse_plain(data)
    return fast if fast is not None else _parse_strict(data)


def _parse_plain(data: bytes) -> ParsedInfo | None:
    """The common case, in one pass over text: valid UTF-8 (so each field decodes as go_string
    would: the separators are ASCII) and well-formed path/mod/dep/=> lines; build lines that need
    unquoting go through the strict rule. None for anything else, and the strict parser then
    decides (its results and its errors are the reference)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        return None
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    last: str | int | None = None
    plain = _PLAIN_SETTING.fullmatch
    # No space, CR or quote anywhere (the usual case): a build line needs only a tab check.
    unquoted = " " not in text and "\r" not in text and '"' not in text and "`" not in text
    lines.pop()  # the text after the last newline is ignored
    for num, line in enumerate(lines, 1):
        kind, tab, rest = line.partition("\t")
        if not tab:
            continue
        if kind == "build":
            if unquoted and "\t" not in rest:
                key, eq, value = rest.partition("=")
                if key and eq:
                    settings.append((key, value))
                    continue
            m = plain(rest)
            # Anything else (quoted, or malformed): the strict rule on this line's own bytes. Every
            # line above was well formed, so an error here is the one the strict parser would raise.
            settings.append((m[1], m[2]) if m is not None else _setting(rest.encode(), num))
        elif kind == "dep" or kind == "mod":
            elem = rest.split("\t")
            n = len(elem)
            if n == 2:
                mod = Module(elem[0], elem[1], "")
            elif n == 3:
                mod = Module(elem[0], elem[1], elem[2])
            else:
                return None
            if kind == "dep":
                deps.append(mod)
                last = len(deps) - 1
            else:
                main = mod
                last = "main"
        elif kind == "path":
            path = rest
        elif kind == "=>":
            elem = rest.split("\t")
            if len(elem) != 3:
                return None
            found, main = _replace(main, deps, last, Module(elem[0], elem[1], elem[2]))
            if not found:
                return None
            last = None
    return path, main, tuple(deps), tuple(settings)


def _replace(main: Module | None, deps: list[Module], last: str | int | None,
             rep: Module) -> tuple[bool, Module | None]:
    """Give the module an ``=>`` line follows (``last``: "main" or an index into ``deps``, which is
    updated in place) its replacement ``rep``: (whether there was one, the main module now). The
    one rule of both parsers."""
    if last == "main" and main is not None:
        return True, Module(main.path, main.version, main.sum, rep)
    if isinstance(last, int):
        d = deps[last]
        deps[last] = Module(d.path, d.version, d.sum, rep)
        return True, main
    return False, main


def _parse_strict(data: bytes) -> ParsedInfo:
    """runtime/debug.ParseBuildInfo, line by line over bytes: quoted settings, invalid UTF-8 and
    the error for the first malformed line."""
    path = b""
    main: Module | None = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    # Which module an `=>` line replaces: "main", an index into deps, or None.
    last: str | int | None = None
    lines = data.split(b"\n")
    if len(lines) > MAX_LINES:
        raise MalformedExecutable("module info has too many lines")
    # ParseBuildInfo stops at the last newline: a final unterminated line is ignored.
    for num, line in enumerate(lines[:-1], 1):
        if line.startswith(b"path\t"):
            path = line[5:]
        elif line.startswith(b"mod\t"):
            main = _module(line[4:].split(b"\t"), num)
            last = "main"
        elif line.startswith(b"dep\t"):
            deps.append(_module(line[4:].split(b"\t"), num))
            last = len(deps) - 1
        elif line.startswith(b"=>\t"):
            elem = line[3:].split(b"\t")
            if len(elem) != 3:
                raise MalformedExecutable(f"module info line {num}: expected 3 columns for replacement")
            rep = Module(go_string(elem[0]), go_string(elem[1]), go_string(elem[2]))
            found, main = _replace(main, deps, last, rep)
            if not found:
                raise MalformedExecutable(f"module info line {num}: replacement with no module above it")
            last = None
        elif line.startswith(b"build\t"):
            settings.append(_setting(line[6:], num))
    return go_string(path), main, tuple(deps), tuple(settings)


def _setting(kv: bytes, num: int) -> tuple[str, str]:
    def bad(why: str) -> MalformedExecutable:
        return MalformedExecutable(f"module info line {num}: {why}")

    if not kv:
        raise bad("build line missing '='")
    if kv[0] == 0x3D:
        raise bad("build line with missing key")
    if kv[0] in (0x22, 0x60):
        try:
            key, used = unquote_prefix(kv)
        except ValueError:
            raise bad("invalid quoted key in build line") from None
        if used == len(kv) or kv[used] != 0x3D:
            raise bad("build line missing '=' after quoted key")
        raw = kv[used + 1 :]
    else:
        key, sep, raw = kv.partition(b"=")
        if not sep:
            raise bad("build line missing '=' after key")
        if needs_quote(key, key=True):
            raise bad("unquoted key must be quoted")
    value = raw
    if raw and raw[0] in (0x22, 0x60):
        try:
            value = _unquote(raw)
        except ValueError:
            raise bad("invalid quoted value in build line") from None
    elif needs_quote(raw, key=False):
        raise bad("unquoted value must be quoted")
    return go_string(key), go_string(value)
