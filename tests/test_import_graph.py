"""The dependency arrows of ``harness`` point one way: no import cycle.

Every import of a harness module counts, at module level or inside a
function (a lazy import is still a dependency), except imports under
``if TYPE_CHECKING:``. A package's ``__init__`` importing its own modules to
re-export them is not an arrow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "harness"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, package: bool) -> None:
        self.module, self.package, self.targets = module, package, set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _add(self, name: str) -> None:
        target = _resolve(name)
        if target is None or target == self.module:
            return
        if self.package and target.startswith(self.module + "."):
            return  # a package re-exporting its own modules
        self.targets.add(target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("harness"):
                self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            pkg = self.module if self.package else self.module.rpartition(".")[0]
            for _ in range(node.level - 1):
                pkg = pkg.rpartition(".")[0]
            base = f"{pkg}.{base}" if base else pkg
        if not base.startswith("harness"):
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in MODULES else base)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        edges[name] = visitor.targets
    return edges


def cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0

    def visit(v: str) -> Iterator[list[str]]:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                yield from visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                yield sorted(component)

    for v in sorted(edges):
        if v not in index:
            yield from visit(v)


def test_harness_has_no_import_cycle() -> None:
    edges = graph()
    found = [
        " -> ".join(c) + "  (" + "; ".join(
            f"{a} imports {', '.join(sorted(edges[a] & set(c)))}" for a in c) + ")"
        for c in cycles(edges)
    ]
    assert not found, "import cycles in harness/:\n" + "\n".join(found)


def test_the_walk_sees_lazy_imports() -> None:
    """A function-level import is an arrow too (the plugin imports the session lazily)."""
    assert "harness.session" in graph()["harness.plugin"]
