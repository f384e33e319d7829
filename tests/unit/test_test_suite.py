"""The test suite's own rules (``tests/README.md``), checked on its source.

* No real sleeps: a test module never calls ``asyncio.sleep``/``time.sleep`` with a literal above zero, apart
  from the few listed in ``ALLOWED_SLEEPS`` with their reason. A wait is ``poll`` or a fake's ``wait_for``
  for the exact state; "nothing else happened" is ``barrier``; time in pure logic is a fake clock. A sleep
  before an assertion passes on a fast machine and proves nothing on a slow one.
* Fixtures live in ``tests/plugins/`` and are never imported by name: pytest hands them to the tests that
  name them, and an import would only hide which plugin a fixture comes from.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

# (test module, the function that sleeps) -> why a real sleep is the point there.
ALLOWED_SLEEPS: dict[tuple[str, str], str] = {
    (
        "tests/e2e/test_rules.py",
        "test_catastrophic_regex_is_bounded_and_the_bot_keeps_answering",
    ): "paces probe interactions over a 2 s window of load; nothing waits on it",
    (
        "tests/unit/images_api/test_io_loop.py",
        "produce",
    ): "a stream that never ends by itself (an hour): the test cancels it and checks that the cancel arrives",
    (
        "tests/unit/jobs/test_cluster.py",
        "stream",
    ): "simulated work: each stream holds its slot for a while, so that streams overlap and the cap is tested",
    (
        "tests/unit/jobs/test_progress.py",
        "test_loop_lag_measures_a_blocked_loop",
    ): "the loop-lag monitor measures real lateness: the test lets it sample, then blocks the loop for real",
    (
        "tests/unit/rules/test_rules.py",
        "ticker",
    ): "the sleep is the probe: a ticker that measures how long the event loop was blocked",
}


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr == "sleep" and isinstance(func.value, ast.Name) and func.value.id in ("asyncio", "time")
    return isinstance(func, ast.Name) and func.id == "sleep"


def _positive_literal(call: ast.Call) -> bool:
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg in ("delay", "secs")), None)
    return (
        isinstance(arg, ast.Constant)
        and isinstance(arg.value, int | float)
        and not isinstance(arg.value, bool)
        and arg.value > 0
    )


def literal_sleeps(source: str) -> list[tuple[str, int]]:
    """(enclosing function, line) of every sleep with a literal duration above zero in a module's source."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call) and _is_sleep(child) and _positive_literal(child):
                found.append((name, child.lineno))
            visit(child, name)

    visit(ast.parse(source), "<module>")
    return found


def test_the_sleep_finder_finds_literal_sleeps_only() -> None:
    source = """
import asyncio, time
from asyncio import sleep

async def test_a(delay: float) -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(delay)
    await asyncio.sleep(0.2)
    def inner() -> None:
        time.sleep(1)
    await sleep(delay=0.5)
"""
    assert literal_sleeps(source) == [("test_a", 8), ("inner", 10), ("test_a", 11)]


def test_no_test_module_sleeps_except_the_allowed_few() -> None:
    found: dict[tuple[str, str], list[int]] = {}
    for path in _test_modules():
        rel = path.relative_to(ROOT).as_posix()
        for function, line in literal_sleeps(path.read_text(encoding="utf-8")):
            found.setdefault((rel, function), []).append(line)
    unexpected = {
        f"{rel}:{lines} in {function}()"
        for (rel, function), lines in found.items()
        if (rel, function) not in ALLOWED_SLEEPS
    }
    assert not unexpected, "\n  ".join(["real sleeps in tests:", *sorted(unexpected)]) + (
        "\n"
        "Wait with poll() or the fake's wait_for() for the exact state, check 'nothing "
        "else happened' with barrier(), give pure logic a fake clock (tests/README.md); if the sleep is truly "
        "the point, add it to ALLOWED_SLEEPS with the reason"
    )
    stale = sorted(f"{rel} {function}()" for rel, function in ALLOWED_SLEEPS if (rel, function) not in found)
    assert stale == [], "ALLOWED_SLEEPS names sleeps that are gone: remove them from the list"


def _fixture_names() -> set[str]:
    names: set[str] = set()
    for path in (TESTS / "plugins").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list
            ):
                names.add(node.name)
    return names


def test_fixtures_are_named_as_parameters_never_imported() -> None:
    fixtures = _fixture_names()
    assert {"rig", "fake", "fd", "session", "store", "database", "dialect", "open_backend", "clock"} <= fixtures
    offenders = []
    for path in TESTS.rglob("*.py"):
        if path.name == "conftest.py" or "plugins" in path.relative_to(TESTS).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("tests"):
                continue
            bad = [a.name for a in node.names if a.name in fixtures or node.module == "tests.conftest"]
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(bad)}")
    assert offenders == [], "name the fixture as a test parameter instead (tests/plugins/ registers it)"
