"""The layers of docs/architecture.md ("Layers"), checked from the imports.

Every module's imports are read with `ast`: at module level and inside functions alike
(a function-level import is still a dependency, only a later one). Imports under
`if TYPE_CHECKING:` count for the layers (a type is a dependency too) but not for cycles:
they never run, and annotations naming each other's types are no cycle at import time.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import empathic

PACKAGE = Path(empathic.__file__).parent

# Which layers each layer may import (its own always). The layer of `empathic.x.y` is `x`;
# `empathic` itself (its version), `empathic.loop` and `empathic.cli` are layers of their own.
_SHELL = frozenset({"core", "understand", "flows", "channels", "store", "loop", "engine"})
LAYERS: dict[str, frozenset[str]] = {
    "empathic": frozenset(),
    "core": frozenset(),  # pure: rules over plain data
    "understand": frozenset({"core"}),  # pure: what a reply means
    "flows": frozenset({"core", "understand"}),  # pure: the flow format and its interpreter
    "loop": frozenset(),
    "channels": frozenset({"core", "loop"}),  # the carriers; what they remember comes as a collaborator
    "store": frozenset({"core"}),  # tables and repositories
    "smsc": frozenset({"core"}),  # a stand-alone SMSC for tests and benchmarks (and its SMPP codec, below)
    "engine": _SHELL,  # everything below; the servers and the command line above it
    "api": _SHELL | {"empathic"},
    "web": _SHELL,
    "cli": _SHELL | {"empathic", "api", "web", "smsc"},
}

# Imports across layers allowed to one module or package, each with its reason.
BESIDES: dict[tuple[str, str], str] = {
    ("empathic.smsc", "empathic.channels.smpp.pdu"): "the SMSC speaks the protocol with our codec",
    ("empathic.smsc", "empathic.channels.smpp.coding"): "the SMSC speaks the protocol with our codec",
    ("empathic.smsc", "empathic.channels.smpp.status"): "the SMSC speaks the protocol with our codec",
    ("empathic.smsc", "empathic.channels.smpp.receipts"): "the SMSC speaks the protocol with our codec",
    # The one application serves both the API and the hosted pages: its factory mounts the
    # web routes and puts the web's security headers on every answer. No router does.
    ("empathic.api.app", "empathic.web"): "the application factory mounts the web pages",
    # A run's state is the interpreter's record; its repository keeps it as versioned JSON
    # through the record's own to_json/from_json (the one way between the two).
    ("empathic.store.flows", "empathic.flows.state"): "the flow runs' repository stores the interpreter's run state",
}


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the Empathic module (or package) it imports
    line: int
    type_only: bool = False  # under `if TYPE_CHECKING:`


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its `__init__`)."""
    found: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(source: str, tree: ast.Module, *, is_package: bool, known: Iterable[str]) -> list[Import]:
    """Empathic modules `source` imports: `from a import b` is module `a.b` if there is one."""
    known = set(known)
    here = source if is_package else source.rpartition(".")[0]
    found: list[Import] = []

    def visit(nodes: Iterable[ast.AST], type_only: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, True)
                visit(node.orelse, type_only)
                continue
            if isinstance(node, ast.Import):
                found.extend(Import(source, a.name, node.lineno, type_only) for a in node.names if within(a.name, "empathic"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if within(base, "empathic"):
                    found.extend(
                        Import(source, f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, node.lineno, type_only)
                        for a in node.names
                    )
            visit(ast.iter_child_nodes(node), type_only)

    visit(tree.body, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def read_imports(package: Path = PACKAGE) -> list[Import]:
    found = modules(package)
    return [
        imp
        for name, path in found.items()
        for imp in imports_of(name, ast.parse(path.read_text(encoding="utf-8")), is_package=path.name == "__init__.py",
                              known=found)
    ]


def forbidden(imports: Iterable[Import]) -> list[str]:
    """Each import that crosses the layers the wrong way, as `source -> target (line n)`."""
    wrong: list[str] = []
    for imp in imports:
        source, target = layer_of(imp.source), layer_of(imp.target)
        if source == target or target in LAYERS[source]:
            continue
        if any(within(imp.source, who) and within(imp.target, what) for who, what in BESIDES):
            continue
        allowed = ", ".join(sorted(LAYERS[source] | {source}))
        wrong.append(f"{imp.source} -> {imp.target} (line {imp.line}): {source} may import only {allowed}")
    return wrong


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """One cycle through each knot of modules importing each other at run time, in import
    order, its first module repeated at the end."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_only and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    found: list[list[str]] = []
    for knot in _strongly_connected(graph):
        start = min(knot)
        found.append([start, *_path(graph, knot, start), start])
    return sorted(found)


def _strongly_connected(graph: dict[str, set[str]]) -> Iterator[set[str]]:
    """Tarjan's components of more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    knot: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        knot.add(member)
                        if member == node:
                            break
                    if len(knot) > 1:
                        yield knot


def _path(graph: dict[str, set[str]], knot: set[str], start: str) -> list[str]:
    """The modules after `start` on a shortest way from it back to itself within `knot`."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & knot):
            if nxt == start:
                path: list[str] = []
                while node != start:
                    path.append(node)
                    node = came_from[node]
                return path[::-1]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is in a knot but no way leads back to it")


def test_every_layer_has_rules() -> None:
    assert {layer_of(name) for name in modules()} <= set(LAYERS)


def test_layers_are_kept() -> None:
    wrong = forbidden(read_imports())
    assert not wrong, "imports against the layers (docs/architecture.md, Layers):\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    found = cycles(read_imports())
    assert not found, "modules importing each other:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_checker_reports_what_it_should() -> None:
    """A forbidden import and a cycle in a made-up graph are both reported; what is allowed,
    a type-only knot and an exception with its reason are not."""
    graph = [
        Import("empathic.flows.interpreter", "empathic.store.db", 3),
        Import("empathic.flows.interpreter", "empathic.core.sms", 4),
        Import("empathic.engine.outbox", "empathic.engine.lifecycle", 5),
        Import("empathic.engine.lifecycle", "empathic.engine.fallback", 6),
        Import("empathic.engine.fallback", "empathic.engine.outbox", 7),
        Import("empathic.engine.runs", "empathic.engine.calls", 8),
        Import("empathic.engine.calls", "empathic.engine.runs", 9, type_only=True),
        Import("empathic.web.preferences", "empathic.api.messages", 10, type_only=True),
        Import("empathic.api.app", "empathic.web.security", 11),
    ]
    assert forbidden(graph) == [
        "empathic.flows.interpreter -> empathic.store.db (line 3): flows may import only core, flows, understand",
        "empathic.web.preferences -> empathic.api.messages (line 10): web may import only channels, core, engine, "
        "flows, loop, store, understand, web",
    ]
    assert cycles(graph) == [
        ["empathic.engine.fallback", "empathic.engine.outbox", "empathic.engine.lifecycle", "empathic.engine.fallback"]
    ]


def test_imports_are_read_everywhere() -> None:
    """Module level, inside functions, under TYPE_CHECKING, relative, and `from a import b`
    naming a module or a name."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import empathic.core.sms\n"
        "from empathic.store import db, Database\n"
        "from . import model\n"
        "if TYPE_CHECKING:\n"
        "    from empathic.engine.runtime import Runtime\n"
        "def f():\n"
        "    from ..understand import keywords\n"
    )
    known = {"empathic.core.sms", "empathic.store", "empathic.store.db", "empathic.flows.model", "empathic.understand.keywords"}
    got = imports_of("empathic.flows.loader", tree, is_package=False, known=known)
    assert [(i.target, i.line, i.type_only) for i in got] == [
        ("empathic.core.sms", 2, False),
        ("empathic.store.db", 3, False),
        ("empathic.store", 3, False),
        ("empathic.flows.model", 4, False),
        ("empathic.engine.runtime", 6, True),
        ("empathic.understand.keywords", 8, False),
    ]
