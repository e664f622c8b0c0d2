"""`go-processes inspect [--json] [--functions] [-v] FILE|DIR ...`: what `go version -m` says,
from our reader, and what the pclntab adds.

Text output follows `go version -m` line for line (`FILE: VERSION`, then the tab-indented
path/mod/dep/=>/build lines, values quoted as Go quotes them), so the two can be diffed. When a
binary records no version (Go <= 1.12 without symbols, gccgo, damaged files) VERSION names the
evidence instead, e.g. `go1.20+ (pclntab)` or `unknown (gccgo)`. `--functions` adds one
`func NAME` line per function of the pclntab (inline-only ones included).

`--json` adds what `go version -m` does not say: where the version came from (`version_source`),
the main module's resolved release (`module_version`, `module_version_source`; the recorded
`(devel)` stays in `module.version`), the pclntab's layout and function count, and with
`--functions` the names.

Like `go version`: named files are always reported and any that is not a readable Go executable
makes the exit status 1; files found by walking a directory are reported only when they are Go
executables (or with -v), must have an execute bit, and never change the exit status. The walk
never follows symlinks and is bounded in depth and file count. A named path is resolved once
(the operator chose it); the file itself is still opened with O_NOFOLLOW.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import Any

from .buildinfo import (
    BuildInfo,
    BuildInfoError,
    FuncTable,
    Module,
    NotGoExecutable,
    needs_quote,
    read_build_info,
    read_functions,
)

MAX_DEPTH = 64
MAX_FILES = 1 << 20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="go-processes inspect",
                                     description="Report the Go version and modules of executables, "
                                                 "like `go version -m`.")
    parser.add_argument("--json", action="store_true", help="one JSON object per file and line")
    parser.add_argument("--functions", action="store_true",
                        help="list the function names of the pclntab (inline-only ones included)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also report files in directories that are not Go executables")
    parser.add_argument("paths", nargs="+", metavar="FILE|DIR")
    args = parser.parse_args(argv)
    ok = True
    for arg in args.paths:
        try:
            real = os.path.realpath(arg)
            st = os.stat(real)
        except OSError as e:
            _report_error(arg, f"{e.strerror or e}", args.json)
            ok = False
            continue
        if stat.S_ISDIR(st.st_mode):
            for path in _walk(real, arg):
                _inspect(path, named=False, args=args)
        else:
            ok = _inspect(arg, named=True, args=args, open_as=real) and ok
    return 0 if ok else 1


def _walk(root: str, shown: str) -> Iterator[str]:
    """Executable regular files under ``root``, in lexical order, without following symlinks."""
    stack = [(root, shown, 0)]
    count = 0
    while stack:
        real, display, depth = stack.pop()
        try:
            with os.scandir(real) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            print(f"{display}: {e.strerror or e}", file=sys.stderr)
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 < MAX_DEPTH:
                        subdirs.append((entry.path, os.path.join(display, entry.name), depth + 1))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                if not entry.stat(follow_symlinks=False).st_mode & 0o111:
                    continue
            except OSError:
                continue
            count += 1
            if count > MAX_FILES:
                print(f"{shown}: stopped after {MAX_FILES} files", file=sys.stderr)
                return
            yield os.path.join(display, entry.name)
        stack.extend(reversed(subdirs))


def _inspect(path: str, named: bool, args: argparse.Namespace, open_as: str | None = None) -> bool:
    try:
        bi = read_build_info(open_as or path)
    except BuildInfoError as e:
        if named or args.verbose:
            what = "not a Go executable" if isinstance(e, NotGoExecutable) else e.reason
            _report_error(path, what, args.json, e.reason)
        return False
    table: FuncTable | BuildInfoError | None = None
    if args.json or args.functions:
        try:
            table = read_functions(open_as or path)
        except BuildInfoError as e:
            table = e  # gccgo, or a damaged table: the build info still stands
    if args.json:
        print(json.dumps(to_json(path, bi, table, args.functions), ensure_ascii=False))
    else:
        out = text(path, bi)
        if args.functions and isinstance(table, FuncTable):
            out += "".join(f"\tfunc\t{name}\n" for name in table.functions)
        print(out, end="")
    return True


def _report_error(path: str, what: str, as_json: bool, reason: str | None = None) -> None:
    if as_json:
        print(json.dumps(_empty(path, reason or what), ensure_ascii=False))
    else:
        print(f"{path}: {what}", file=sys.stderr)


def go_quote(s: str) -> str:
    """strconv.Quote for text (printable runes kept, the rest escaped), for `go version -m` output."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def format_text(path: str, main: Module | None, deps: tuple[Module, ...],
                settings: tuple[tuple[str, str], ...]) -> str:
    """runtime/debug.BuildInfo.String() without the `go` line: what `go version -m` indents."""
    buf: list[str] = []
    if path:
        buf.append(f"path\t{path}\n")

    def mod(word: str, m: Module) -> None:
        buf.append(f"{word}\t{m.path}\t{m.version}")
        if m.replace is None:
            buf.append(f"\t{m.sum}")
        else:  # as Go writes it: the `=>` line, then an empty line
            buf.append("\n")
            mod("=>", m.replace)
        buf.append("\n")

    if main is not None and (main.path or main.version or main.sum or main.replace):
        mod("mod", main)
    for d in deps:
        mod("dep", d)
    for k, v in settings:
        key = go_quote(k) if needs_quote(k, key=True) else k
        value = go_quote(v) if needs_quote(v, key=False) else v
        buf.append(f"build\t{key}={value}\n")
    return "".join(buf)


def version_label(bi: BuildInfo) -> str:
    if bi.go_version:
        return bi.go_version
    return f"{bi.go_version_range or 'unknown'} ({bi.detection})"


def text(path: str, bi: BuildInfo) -> str:
    """`go version -m` output for one file."""
    out = f"{path}: {version_label(bi)}\n"
    mod = format_text(bi.path, bi.main, bi.deps, bi.settings)
    if mod:
        out += "\t" + mod[:-1].replace("\n", "\n\t") + "\n"
    return out


def _module(m: Module | None, with_replace: bool) -> dict[str, Any] | None:
    if m is None:
        return None
    d: dict[str, Any] = {"path": m.path, "version": m.version, "sum": m.sum}
    if with_replace:
        d["replace"] = _module(m.replace, False)
    return d


def to_json(path: str, bi: BuildInfo, table: FuncTable | BuildInfoError | None = None,
            functions: bool = False) -> dict[str, Any]:
    """One file's JSON object; ``table`` adds the pclntab fields (null when it could not be read)."""
    ft = table if isinstance(table, FuncTable) else None
    out = {
        "path": path,
        "is_go": True,
        "version": bi.go_version,
        "version_range": bi.go_version_range,
        "version_source": bi.version_source,
        "module": _module(bi.main, False),
        "module_version": bi.module_version,
        "module_version_source": bi.module_version_source,
        "deps": [_module(d, True) for d in bi.deps],
        "settings": [list(kv) for kv in bi.settings],
        "format": bi.format,
        "arch": bi.arch,
        "byte_order": bi.byte_order,
        "stripped": bi.stripped,
        "detection": bi.detection,
        "pclntab_format": ft.format if ft else None,
        "text_range": [ft.text_start, ft.text_end] if ft else None,
        "function_count": len(ft.functions) if ft else None,
        "pclntab_error": table.reason if isinstance(table, BuildInfoError) else None,
        "error": None,
    }
    if functions:
        out["functions"] = list(ft.functions) if ft else []
    return out


def _empty(path: str, error: str) -> dict[str, Any]:
    return {"path": path, "is_go": False, "version": "", "version_range": "", "version_source": "",
            "module": None, "module_version": "", "module_version_source": "", "deps": [],
            "settings": [], "format": None, "arch": None, "byte_order": None, "stripped": None,
            "detection": None, "pclntab_format": None, "text_range": None, "function_count": None,
            "pclntab_error": None, "error": error}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
