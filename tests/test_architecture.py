"""The import graph of the project's own packages, read from the source with `ast`.

A cycle means two modules cannot be read (or changed) one without the other; the layering
(validation under roster under bot) is what keeps the checks pure and the bot thin.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("validation", "roster", "faq", "bot")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:` (never run, so never a cycle)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports anywhere (top level or inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            # the longest project module that the name is or lies inside
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    paths = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules, or [] when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_graph_sees_the_imports_it_must():
    """Guards the reader itself: a graph that saw nothing would be acyclic too."""
    graph = _graph()
    assert "roster.steps" in graph["roster.pipeline"]
    assert {"roster.users", "roster.demographics"} <= graph["roster.pipeline"]
    assert "roster.pipeline" in graph["roster.recovery"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_imports_itself_in_a_circle():
    assert _cycle(_graph()) == []


@pytest.mark.parametrize(
    ("module", "must_not_reach"),
    [
        # the shared steps and the protocol build on no file kind and not on the pipeline
        ("roster.steps", {"roster.users", "roster.demographics", "roster.pipeline"}),
        ("roster.filekind", {"roster.users", "roster.demographics", "roster.pipeline"}),
        # a file kind builds on the shared steps, never on another kind or the pipeline
        ("roster.users", {"roster.demographics", "roster.pipeline"}),
        ("roster.demographics", {"roster.users", "roster.pipeline"}),
    ],
)
def test_file_kinds_and_shared_steps_stay_apart(module, must_not_reach):
    graph = _graph()
    reached, todo = set(), [module]
    while todo:
        for nxt in graph[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert not reached & must_not_reach


def test_layers_point_one_way():
    """validation under roster under bot: a lower layer never imports a higher one."""
    for name, imported in _graph().items():
        layer = name.split(".")[0]
        if layer == "validation":
            assert not {m for m in imported if m.split(".")[0] in ("roster", "bot")}, name
        if layer == "roster":
            assert not {m for m in imported if m.split(".")[0] == "bot"}, name
