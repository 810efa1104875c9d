"""Checks the product's shape: no import loop, no upward import, module and function sizes.

Run ``python scripts/layout.py`` from the repository root; it prints every finding and exits 1 if
there is one. Every import counts: module level, ``TYPE_CHECKING`` blocks and inside functions.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "adapters")
# Bottom to top: a package may import its own modules and any package listed before it.
LAYERS = (
    "bot.text",
    "bot.model",
    "bot.audio",
    "bot.links",
    "bot.providers",
    "bot.config",
    "bot.chat",
    "bot.jobs",
    "bot.storage",
    "bot.service",
    "bot.app",
    "adapters",
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
# The CLI parser is a table of arguments, not logic (the issue allows it).
FUNCTION_EXEMPT = {("adapters.cli.main", "_parser")}


def modules() -> dict[str, Path]:
    """Every product module by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(name: str, tree: ast.Module, known: dict[str, Path]) -> set[str]:
    """The product modules ``name`` imports (a package import counts as its ``__init__``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer(name: str) -> int:
    """The index of the layer a module belongs to (-1: none, such as ``bot`` itself)."""
    for index, prefix in enumerate(LAYERS):
        if name == prefix or name.startswith(prefix + "."):
            return index
    return -1


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def long_functions(name: str, tree: ast.Module) -> Iterator[str]:
    """Functions longer than the limit, as ``module:function (lines)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and (name, node.name) not in FUNCTION_EXEMPT:
                yield f"{name}:{node.name} ({length} lines)"


def findings() -> list[str]:
    """Every breach of the layout rules, one sentence each."""
    known = modules()
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in known.items()}
    graph = {name: imported(name, tree, known) for name, tree in trees.items()}
    out: list[str] = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer(target) > layer(name):
                out.append(f"upward import: {name} -> {target}")
    out += [f"import loop: {' -> '.join(c)}" for c in cycles(graph)]
    for name, path in sorted(known.items()):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            out.append(f"module over {MAX_MODULE_LINES} lines: {name} ({lines})")
        tree = trees[name]
        if not ast.get_docstring(tree):
            out.append(f"module without a docstring: {name}")
        out += [
            f"function over {MAX_FUNCTION_LINES} lines: {f}" for f in long_functions(name, tree)
        ]
    return out


def main() -> int:
    """Print the findings; 1 if there are any."""
    problems = findings()
    for line in problems:
        print(line)
    print(f"{len(problems)} finding(s) in {len(modules())} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
