"""The layout rules of the code (docs/development/architecture.md), checked on the source itself.

* Imports run one way: no cycles among the modules of ``bot/`` and ``cogs/``. Imports under
  ``if TYPE_CHECKING:`` (annotations only, never run) are not edges; ``bot/`` may not make them to
  ``discord`` or ``cogs/`` either.
* ``bot/`` imports neither ``discord`` nor ``cogs`` except in the composition root.
* ``bot/storage/`` does not import ``bot/quota/`` (the quota domain builds on storage).
* No module is much over 450 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "cogs")
COMPOSITION_ROOT = {"bot.__main__"}
MAX_LINES = 460


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str], *, typing_edges: bool = False) -> set[str]:
    """The project modules (and ``discord``) that module ``name`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def add(target: str) -> None:
        if target == "discord" or target.startswith("discord."):
            out.add("discord")
            return
        while target and target not in known:  # from bot.quota import X -> bot.quota
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    type_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only and not typing_edges:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base)
    return out


def _graph(*, typing_edges: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known, typing_edges=typing_edges) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_graph_is_read_correctly() -> None:
    graph = _graph()
    assert "cogs._common" in graph["cogs.imagine"]
    assert "discord" in graph["cogs.imagine"]
    assert "bot.quota" in graph["bot.jobs.service"]


def test_no_import_cycles() -> None:
    assert _cycle(_graph()) is None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_services_import_no_discord_and_no_cogs() -> None:
    bad = {
        name: sorted(t for t in targets if t == "discord" or t.startswith("cogs"))
        for name, targets in _graph(typing_edges=True).items()
        if name.startswith("bot") and name not in COMPOSITION_ROOT
    }
    assert {name: targets for name, targets in bad.items() if targets} == {}


def test_storage_does_not_import_the_quota_domain() -> None:
    """The quota domain builds on storage (``Database`` and its repositories), never the other way."""
    bad = {
        name: sorted(t for t in targets if t == "bot.quota" or t.startswith("bot.quota."))
        for name, targets in _graph(typing_edges=True).items()
        if name == "bot.storage" or name.startswith("bot.storage.")
    }
    assert {name: targets for name, targets in bad.items() if targets} == {}


def test_cogs_never_import_the_composition_root() -> None:
    bad = {name: sorted(t for t in targets if t in COMPOSITION_ROOT) for name, targets in _graph().items()}
    assert {name: targets for name, targets in bad.items() if name.startswith("cogs") and targets} == {}


def test_no_module_is_too_long() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_comments_name_no_path_outside_the_repository() -> None:
    offenders = []
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        if path.name == "test_layout.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "/work/" in text or "../shared" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_bot_holds_at_most_a_dozen_entries() -> None:
    """``bot/`` is grouped by what a reader looks for: a new module joins a package, not the top level."""
    entries = sorted(p.name for p in (ROOT / "bot").iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries
