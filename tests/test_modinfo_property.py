"""Property test: the module-info fast path (_parse_plain) and the strict parser (_parse_strict,
runtime/debug.ParseBuildInfo's rules) agree wherever the fast path answers: same result, or the
same kind of error. Inputs are module-info-like texts built from the pieces that steer the two
(tabs, quotes, '=', spaces, CR, invalid UTF-8), and real module info from a Go build whose answer
the Go toolchain gives. Derandomized and database-less, so every CI run tries the same cases."""

from __future__ import annotations

from typing import Any

from fixtures import build_fixture, ensure_proxy
from go_processes.buildinfo import MalformedExecutable
from go_processes.buildinfo._modinfo import _parse_plain, _parse_strict, parse, strip_framing
from gobuild import go_version_m
from hypothesis import given, settings
from hypothesis import strategies as st

ATOMS = [b"a", b"golang.org/x/net", b"v0.17.0", b"(devel)", b"h1:Zx3/bH5Q6tUaw9C3rYCqA/JkQ8A=",
         b"=", b"==", b" ", b"\t", b'"', b"`", b"\\", b"\r", b"\xff", b"\xc3\xa9", b"\xed\xa0\x80",
         b"CGO_ENABLED=1", b"-ldflags=-s -w", b'"quoted key"', b'"v\\n"', b"`raw`", b'"\\xff"', b"x=y"]
KINDS = [b"path", b"mod", b"dep", b"=>", b"build", b"other", b"", b"pathx", b"mod "]

field = st.lists(st.sampled_from(ATOMS), max_size=4).map(b"".join)
line = st.tuples(st.sampled_from(KINDS), st.lists(field, max_size=4)).map(
    lambda kf: kf[0] + b"\t" + b"\t".join(kf[1]) if kf[1] else kf[0])
text = st.tuples(st.lists(line, max_size=12), st.sampled_from([b"", b"tail", b"build\tx"])).map(
    lambda lt: b"".join(ln + b"\n" for ln in lt[0]) + lt[1])


def outcome(parser: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", parser(data)
    except MalformedExecutable:
        return "malformed", None


@settings(max_examples=1000, derandomize=True, database=None, deadline=None)
@given(text)
def test_fast_and_strict_parsers_agree_where_the_fast_one_answers(data: bytes) -> None:
    fast = outcome(_parse_plain, data)
    if fast == ("ok", None):
        return  # the fast path declined: the strict parser alone decides
    assert fast == outcome(_parse_strict, data)


def test_fast_path_answers_real_module_info() -> None:
    """Not vacuous: on a real build's module info the fast path answers, and both parsers give what
    the Go toolchain reads from the same file."""
    ensure_proxy()
    exe = build_fixture("mods")
    data = exe.read_bytes()
    start = data.find(bytes.fromhex("3077af0c9274080241e1c107e6d618e6"))
    assert start >= 0
    end = data.find(bytes.fromhex("f932433186182072008242104116d8f2"), start)
    info = strip_framing(data[start : end + 16])
    fast = _parse_plain(info)
    assert fast is not None and fast == _parse_strict(info) == parse(info)
    oracle = go_version_m(exe)
    assert oracle is not None
    path, main, deps, settings_ = fast
    assert path == oracle["Path"] and main is not None and main.path == oracle["Main"]["Path"]
    assert [(d.path, d.version, d.sum) for d in deps] == [
        (d["Path"], d["Version"], d.get("Sum", "")) for d in oracle["Deps"]]
    assert list(settings_) == [(s["Key"], s["Value"]) for s in oracle["Settings"]]
