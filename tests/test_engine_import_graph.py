"""The engine's modules import each other without a cycle, ``TYPE_CHECKING`` imports
included: the slice executor and reconciliation take ports, never the runner."""

from __future__ import annotations

import ast
from pathlib import Path

import genesis

ROOT = Path(genesis.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every genesis module and the genesis modules it imports (anywhere in the file)."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genesis"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("genesis"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_engine_module_is_part_of_an_import_cycle() -> None:
    graph = import_graph()
    in_cycles = sorted(m for m in graph if m.startswith("genesis.engine") and m in reachable(graph, m))
    assert in_cycles == []


def test_the_slice_executor_and_reconciliation_never_import_the_runner() -> None:
    graph = import_graph()
    for module in ("genesis.engine.slice_executor", "genesis.engine.recovery", "genesis.engine.measurement"):
        assert "genesis.engine.runner" not in reachable(graph, module), module
