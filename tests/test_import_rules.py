"""The package's import graph, read from the source (every ``import``, at module level, inside
functions and under ``TYPE_CHECKING``): no cycles, and the product does not import the tools
beside it (the paper exchange, the chaos harness)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genesis"
TOOLS = ("genesis.paper", "genesis.chaos")
# the command line starts the tools (``genesis paper-exchange``, ``genesis run --paper-clock``)
TOOL_LAUNCHERS = {"genesis.cli", "genesis.cli_support", "genesis.__main__"}


def module_files() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a.b import c`` counts ``a.b.c`` when
    that is a module, else ``a.b``)."""
    modules = module_files()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(owner(a.name) for a in node.names if a.name.startswith("genesis"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                if base.startswith("genesis"):
                    found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else owner(base)
                                 for a in node.names)
        graph[module] = {m for m in found if m is not None and m != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "genesis.domain.events" in graph["genesis.domain.codec"]  # module level
    assert "genesis.engine.daemon" in graph["genesis.cli"]  # inside a function
    assert "genesis.config" in graph["genesis.engine.supervisor"]  # under TYPE_CHECKING


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_product_does_not_import_the_tools_beside_it() -> None:
    graph = import_graph()
    offending = sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                       if target.startswith(TOOLS) and not module.startswith(TOOLS)
                       and module not in TOOL_LAUNCHERS)
    assert offending == []
