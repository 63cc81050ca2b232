"""The package's shape: no import cycle between tfgate's modules, none over about 600 lines, each with a docstring."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PKG = REPO / "tfgate"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """tfgate modules NAME imports, at any depth of the file (lazy imports inside functions count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # `from pkg import mod` imports the module pkg.mod where there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t != "tfgate":  # the package root only holds __version__
                out.add(t)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
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


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_evaluation_imports_no_approvals_render_or_enforce() -> None:
    graph = _graph()
    for mod in ("tfgate.policy.evaluate", "tfgate.policy.manifest", "tfgate.policy.catalog"):
        bad = {m for m in graph[mod] if m.startswith(("tfgate.approvals", "tfgate.render", "tfgate.enforce"))}
        assert not bad, f"{mod} imports {bad}"


def test_modules_are_small_and_say_what_they_are_for() -> None:
    for name, path in _modules().items():
        text = path.read_text()
        assert text.count("\n") <= MAX_LINES, f"{name} has {text.count(chr(10))} lines (split it by concern)"
        if name != "tfgate.__main__":
            assert ast.get_docstring(ast.parse(text)), f"{name} has no module docstring"
