"""The suite checks itself for the ways a test goes quiet (issue 12): a skip that CI would not
notice, an assert that cannot fail, a check swallowed by an except or a suppress.

The first tests run pytest on the real suite and on small throw-away test files in a subprocess,
with and without CI=true; the rest read the source of tests/, bench/ and fuzz/ (ast, not regular
expressions) for the patterns that hid coverage before."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import skips

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.joinpath("tests").glob("*.py"), *ROOT.joinpath("bench").glob("*.py"),
                  *ROOT.joinpath("fuzz").glob("*.py")])


def _pytest(args: list[str], ci: bool, env: dict[str, str] | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "CI"}
    e.update(env or {})
    if ci:
        e["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=e, capture_output=True, text=True, timeout=600)


def _throwaway(tmp_path: Path, text: str, ci: bool) -> subprocess.CompletedProcess:
    """pytest on a small test file (and a passing neighbour) outside the repository, with
    tests/conftest.py loaded as a plugin (its hooks and sys.path), as the suite's files get it."""
    (tmp_path / "test_throwaway.py").write_text(text)
    (tmp_path / "test_neighbour.py").write_text("def test_neighbour():\n    pass\n")
    env = {"PYTHONPATH": str(ROOT / "tests")}
    return _pytest(["-p", "conftest", "test_throwaway.py", "test_neighbour.py"], ci, env, cwd=tmp_path)


# -- skips: named in a developer's run, failures in CI ----------------------------------------------

SKIPPING = """
import pytest, skips

def test_tool_missing():
    pytest.skip("frobnicator is not installed")

def test_as_root():
    skips.skip(skips.NEEDS_NON_ROOT, "root reads every file")

def test_runs():
    pass
"""
MODULE_SKIP = """
import pytest
pytest.importorskip("no_such_module_xyz", reason="xyz is not installed")

def test_x():
    pass
"""


def test_a_developer_run_names_every_skip(tmp_path: Path) -> None:
    r = _throwaway(tmp_path, SKIPPING, ci=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SKIPPED" in r.stdout and "frobnicator is not installed" in r.stdout  # -ra lists it
    assert "needs a non-root user: root reads every file" in r.stdout
    assert "2 passed, 2 skipped" in r.stdout  # the closing line counts them


def test_a_ci_run_fails_a_skip_and_names_it(tmp_path: Path) -> None:
    r = _throwaway(tmp_path, SKIPPING, ci=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED" in r.stdout and "frobnicator is not installed" in r.stdout
    assert "1 failed, 2 passed, 1 skipped" in r.stdout  # the allowed skip stays a skip


def test_a_ci_run_fails_a_module_level_skip(tmp_path: Path) -> None:
    dev = _throwaway(tmp_path, MODULE_SKIP, ci=False)
    ci = _throwaway(tmp_path, MODULE_SKIP, ci=True)
    assert dev.returncode == 0 and "xyz is not installed" in dev.stdout, dev.stdout
    assert ci.returncode != 0 and "xyz is not installed" in ci.stdout, ci.stdout


def test_a_real_prerequisite_removed(tmp_path: Path) -> None:
    """gccgo hidden from PATH (the other toolchains are found by absolute path): the suite's own
    gccgo test skips naming it, and fails naming it under CI=true."""
    gccgo_dir = tmp_path / "bin"
    gccgo_dir.mkdir()
    env = {"PATH": str(gccgo_dir)}
    target = ["tests/test_buildinfo_oracle.py::test_gccgo"]
    dev, ci = _pytest(target, ci=False, env=env), _pytest(target, ci=True, env=env)
    assert dev.returncode == 0 and "toolchain 'gccgo' is not installed" in dev.stdout, dev.stdout + dev.stderr
    assert ci.returncode == 1 and "toolchain 'gccgo' is not installed" in ci.stdout, ci.stdout + ci.stderr


def test_allowed_skips_are_few_and_explained() -> None:
    assert 1 <= len(skips.ALLOWED_IN_CI) <= 5
    for prefix, why in skips.ALLOWED_IN_CI.items():
        assert prefix and len(why) > 40, prefix
    assert skips.allowed_in_ci(f"{skips.NEEDS_ROOT}: x") and not skips.allowed_in_ci("gcc is not installed")
    with pytest.raises(ValueError):
        skips.skip("gcc is missing", "not an environment fact")


# -- source patterns that hid coverage ---------------------------------------------------------------


def _trees() -> list[tuple[Path, ast.AST]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in SOURCES]


def _where(path: Path, node: ast.AST) -> str:
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{name}:{getattr(node, 'lineno', 0)}"


def _is_suppress(item: ast.withitem) -> bool:
    call = item.context_expr
    if not isinstance(call, ast.Call):
        return False
    f = call.func
    return (isinstance(f, ast.Name) and f.id == "suppress") or (
        isinstance(f, ast.Attribute) and f.attr == "suppress")


def test_no_assert_inside_suppress() -> None:
    """An assert under contextlib.suppress(X) is skipped whenever X is raised before it."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if (isinstance(node, ast.With) and any(_is_suppress(i) for i in node.items)
                    and any(isinstance(n, ast.Assert) for stmt in node.body for n in ast.walk(stmt))):
                found.append(_where(path, node))
    assert found == []


def _catches_everything_or_skips(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    names = [t] if t is None or not isinstance(t, ast.Tuple) else list(t.elts)
    for n in names:
        if n is None:
            return True
        text = ast.unparse(n)
        if text in ("BaseException", "Exception") or text.endswith(("skip.Exception", "Skipped")):
            return True
    return False


def test_no_silent_continue_or_pass_on_skips_and_everything() -> None:
    """`except (BaseException | Exception | skip): continue` (or pass) drops whatever it was
    building without a word; a handler must record or report what it caught."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if (isinstance(node, ast.ExceptHandler) and _catches_everything_or_skips(node)
                    and all(isinstance(s, ast.Continue | ast.Pass) for s in node.body)):
                found.append(_where(path, node))
    assert found == []


def test_no_assert_that_cannot_fail() -> None:
    """assert (cond, "msg") is a non-empty tuple; assert <constant> or ...; assert "text"."""
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assert):
                continue
            test = node.test
            always = ((isinstance(test, ast.Tuple) and test.elts)
                      or (isinstance(test, ast.Constant) and test.value))
            if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
                always = always or any(isinstance(v, ast.Constant) and v.value for v in test.values)
            if always:
                found.append(_where(path, node))
    assert found == []


DURATION_NAMES = {"elapsed", "took", "per_call", "duration", "latency", "best"}


def _is_duration(expr: ast.expr) -> bool:
    """`time.x() - start`, or a variable named like a measured duration."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub):
        return any(isinstance(n, ast.Attribute) and n.attr in ("perf_counter", "monotonic", "time")
                   for n in ast.walk(expr))
    return isinstance(expr, ast.Name) and expr.id in DURATION_NAMES


def test_no_wall_clock_upper_bound_in_tests() -> None:
    """Speed goals live in bench/; a test may bound a measured duration from below (it waited at
    least --timeout) but not from above. Watchdogs compare the clock with a deadline instead."""
    found = []
    for path in ROOT.joinpath("tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
                    and _is_duration(node.test.left)
                    and any(isinstance(op, ast.Lt | ast.LtE) for op in node.test.ops)):
                found.append(f"{_where(path, node)}: {ast.unparse(node.test)}")
    assert found == []


def test_the_pattern_checks_can_fail(tmp_path: Path) -> None:
    """Each check above finds its pattern in a sample that has it."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import contextlib, time\n"
        "def f(xs):\n"
        "    for x in xs:\n"
        "        try:\n"
        "            g(x)\n"
        "        except BaseException:\n"
        "            continue\n"
        "    with contextlib.suppress(ValueError):\n"
        "        assert g(1)\n"
        "    assert (g(2), 'message')\n"
        "    assert True or g(3)\n"
    )
    global SOURCES
    saved = SOURCES
    SOURCES = [sample]
    try:
        for check in (test_no_assert_inside_suppress, test_no_silent_continue_or_pass_on_skips_and_everything,
                      test_no_assert_that_cannot_fail):
            with pytest.raises(AssertionError):
                check()
    finally:
        SOURCES = saved
