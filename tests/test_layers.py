"""One direction, no rings (#25): the import graph, built from the source (imports inside
functions and imports for types included), against the layers CONTRIBUTING.md draws."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "hfharvest"
ORDER = ["data", "hub I/O", "sinks", "core", "api", "command line"]  # bottom to top
_ROW = re.compile(r"^\| `([\w/.]+)`(?: / `[\w.]+`)? \| ([\w /]+) \|", re.M)


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the package, and the modules of the package it imports, anywhere."""
    modules = {module_of(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                found = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def layers() -> dict[str, str]:
    """The layer CONTRIBUTING.md's table puts each module in."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    placed = {}
    for path, layer in _ROW.findall(text):
        name = "hfharvest." + path.removesuffix(".py").removesuffix("/").replace("/", ".")
        placed[name.removesuffix(".__init__")] = layer.strip()
    return placed


def layer_of(module: str, placed: dict[str, str]) -> str:
    while module not in placed:
        module = module.rpartition(".")[0]
        assert module, "a module CONTRIBUTING.md does not place"
    return placed[module]


def rings(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while (top := stack.pop()) != node:
                part.append(top)
            if part:
                found.append([node, *part])

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_ring() -> None:
    assert rings(imports()) == []


def test_every_module_is_placed_in_one_layer() -> None:
    placed = layers()
    for module in imports():
        assert layer_of(module, placed) in [*ORDER, "testing"], module


def test_no_module_imports_one_from_a_layer_above_it() -> None:
    placed = layers()
    for module, targets in imports().items():
        layer = layer_of(module, placed)
        for target in targets:
            other = layer_of(target, placed)
            if layer == "testing" or other == "testing":
                allowed = (
                    other in ("testing", "data")
                    if layer == "testing"
                    else (layer in ("command line", "testing"))
                )
                assert allowed, f"{module} ({layer}) imports {target} ({other})"
                continue
            assert ORDER.index(other) <= ORDER.index(layer), (
                f"{module} ({layer}) imports {target} ({other}), a layer above it"
            )
