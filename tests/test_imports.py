"""The package's import graph: data flows downward. The one cycle left is between the
message classes and the backends (``EmailMessage.send`` finds a backend, a backend
sends messages), which Django has too."""

from __future__ import annotations

import ast
from pathlib import Path

import mailwright

ROOT = Path(mailwright.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """Every module of the package imported anywhere in ``tree``: inside functions
    too (a lazy import is still a dependency), and for type checking too (so is a
    type)."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return found & modules


def import_graph() -> dict[str, set[str]]:
    files = {_module(path): path for path in ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(ast.parse(path.read_text()), package, modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_only_import_cycle_is_message_and_backends() -> None:
    graph = import_graph()
    assert "mailwright.queue.worker" in graph and "mailwright.bulk.policy" in graph
    across = [
        sorted(component)
        for component in cycles(graph)
        # a package and its own modules (devserver/__init__ and its server) are one room
        if len({_package(module) for module in component}) > 1
    ]
    assert len(across) == 1, across
    assert {_package(module) for module in across[0]} == {
        "mailwright.message",
        "mailwright.backends",
    }, across


def test_the_workers_and_their_backends_do_not_import_each_other() -> None:
    graph = import_graph()
    for worker, backend in (
        ("mailwright.queue.worker", "mailwright.backends.queue"),
        ("mailwright.celery.tasks", "mailwright.backends.celery"),
    ):
        assert backend not in graph[worker]
    # the cycle finder finds what is there
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]
