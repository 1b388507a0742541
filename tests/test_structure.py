"""The shape of the code base: no import cycles, a thin Machine, short functions, every op covered by every stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tcg2wasm.backend.emit import EMITTERS
from tcg2wasm.ir.core import GLOBALS, Op, Temp
from tcg2wasm.ir.ops import OPS
from tcg2wasm.ir.prepare import FAIL, prepare_tb
from tcg2wasm.opt.fold import FOLDERS, NOT_FOLDED

PACKAGE = Path(__file__).resolve().parent.parent / "tcg2wasm"
MAX_FUNCTION_LINES = 60
MAX_MACHINE_LINES = 250


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.Module, modules: dict[str, ast.Module]) -> set[str]:
    """tcg2wasm modules ``tree`` imports, at any depth (deferred imports too), except under TYPE_CHECKING."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tcg2wasm"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            out.update(name for name in names if name in modules)
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name.startswith("tcg2wasm"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in out if name in modules}


def _with_packages(name: str, importer: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a.b/__init__`` first (the top package excepted).

    The importer's own packages are left out: they are already being initialized when it runs.
    """
    parts = name.split(".")
    own = set(_with_packages_of(importer))
    return [p for p in (".".join(parts[:i]) for i in range(2, len(parts) + 1)) if p not in own or p == name]


def _with_packages_of(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for target in _imports(tree, modules):
            graph[name].update(t for t in _with_packages(target, name) if t in modules and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_machine_is_a_thin_facade() -> None:
    assert len((PACKAGE / "machine.py").read_text().splitlines()) < MAX_MACHINE_LINES


def test_no_function_is_too_long() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def _sample_op(name: str) -> Op:
    """An op of ``name`` with temps for its temp arguments and zeros for its constants."""
    d = OPS[name]
    temps = [Temp(len(GLOBALS) + i) for i in range(d.n_out + d.n_in)]
    return Op(name, [*temps, *([0] * d.n_const)])


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_has_an_emitter_an_interpreter_step_and_a_folding_rule(name: str) -> None:
    from tcg2wasm.ir.core import TranslationBlock

    assert name in EMITTERS
    steps = prepare_tb(TranslationBlock(0x1000, 1, [], [_sample_op(name)], 8, 1)).code
    kinds, first = steps[0], steps[1]
    assert not (kinds[0] == FAIL and first[0] is AssertionError), f"{name}: no interpreter step"
    assert (OPS[name].fold is not None) + (name in FOLDERS) + (name in NOT_FOLDED) >= 1
    assert not (name in NOT_FOLDED and (name in FOLDERS or OPS[name].fold is not None))
