"""The Relooper wrapper: fuzzing against a trivial lowering, and misuse that must raise (not abort).

Fuzzing in the style of Binaryen's fuzz_relooper: a random CFG whose blocks
record their id in a trace and read a decision from an input array; the
branch conditions test ``decision % n``. The same graph is lowered twice --
by the Relooper (through :class:`RelooperGraph`) and by a trivial
``loop { if label == i { ... } ... }`` dispatcher built independently -- and
both modules run in wasmtime on the same input; the traces must match.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from tcg2wasm.backend.bn import I32, NONE, Exprs, c_free, ffi, lib
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.backend.relooper import RelooperError, RelooperGraph

STEPS, DECISION, LABEL = 0, 1, 2  # i32 locals
MAX_STEPS = 200
TRACE_BASE = 4096
INPUT_LEN = 16


@dataclass
class Graph:
    # per block: list of (target, residues) -- taken when decision % modulus is in residues; None = default
    branches: list[list[tuple[int, tuple[int, ...] | None]]]
    modulus: list[int]


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    n = draw(st.integers(1, 10))
    branches: list[list[tuple[int, tuple[int, ...] | None]]] = []
    modulus: list[int] = []
    for _ in range(n):
        k = draw(st.integers(0, 4))
        mod = max(k, 1)
        modulus.append(mod)
        out: list[tuple[int, tuple[int, ...] | None]] = []
        for residue in range(k - 1):
            out.append((draw(st.integers(0, n - 1)), (residue,)))  # targets may repeat: folding is exercised
        if k:
            out.append((draw(st.integers(0, n - 1)), None))
        branches.append(out)
    return Graph(branches, modulus)


def _block_code(e: Exprs, block: int, graph: Graph) -> list[Any]:
    """Code of one block: bound the run, record the block, read the next decision."""
    step = e.get32(STEPS)
    stmts = [
        e.if_(e.bin(lib.BinaryenGeUInt32(), e.get32(STEPS), e.c32(MAX_STEPS)), lib.BinaryenReturn(e.m, e.c32(-1))),
        e.store(4, TRACE_BASE, e.bin(W.SHL32, step, e.c32(2)), e.c32(block), I32),
        e.set(STEPS, e.bin(lib.BinaryenAddInt32(), e.get32(STEPS), e.c32(1))),
        e.set(DECISION, e.load(4, False, 0, e.bin(W.SHL32, e.bin(W.AND32, e.get32(STEPS), e.c32(INPUT_LEN - 1)),
                                                   e.c32(2)), I32)),
    ]
    if not graph.branches[block]:
        stmts.append(lib.BinaryenReturn(e.m, e.get32(STEPS)))
    return stmts


def _condition(e: Exprs, residues: tuple[int, ...], modulus: int) -> Any:
    rem = e.bin(lib.BinaryenRemUInt32(), e.get32(DECISION), e.c32(modulus))
    return e.bin(lib.BinaryenEqInt32(), rem, e.c32(residues[0]))


def _relooped_body(e: Exprs, graph: Graph) -> Any:
    rg = RelooperGraph(e.m)
    ids = [rg.add_block(e.block(_block_code(e, i, graph))) for i in range(len(graph.branches))]
    for i, out in enumerate(graph.branches):
        for target, residues in out:
            cond = None if residues is None else _condition(e, residues, graph.modulus[i])
            rg.add_branch(ids[i], ids[target], cond)
    return e.block([rg.render(ids[0], LABEL), lib.BinaryenUnreachable(e.m)])


def _dispatch_body(e: Exprs, graph: Graph) -> Any:
    """The trivial lowering: loop { if label == i { code; label = choose(); continue } ... }."""
    cases = []
    for i, out in enumerate(graph.branches):
        stmts = _block_code(e, i, graph)
        if out:
            default = next(t for t, r in out if r is None)
            choice = e.c32(default)
            for target, residues in reversed([b for b in out if b[1] is not None]):
                choice = lib.BinaryenSelect(e.m, _condition(e, residues, graph.modulus[i]), e.c32(target), choice,
                                            I32)
            stmts += [e.set(LABEL, choice), e.br(b"dispatch")]
        is_me = e.bin(lib.BinaryenEqInt32(), e.get32(LABEL), e.c32(i))
        cases.append(e.if_(is_me, e.block(stmts)))
    loop = lib.BinaryenLoop(e.m, b"dispatch", e.block([*cases, lib.BinaryenUnreachable(e.m)]))
    return e.block([e.set(LABEL, e.c32(0)), loop])


def _module_bytes(graph: Graph, relooped: bool) -> bytes:
    m = lib.BinaryenModuleCreate()
    try:
        lib.BinaryenSetMemory(m, 1, 1, b"mem", ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, 0, False, False,
                              b"0")
        e = Exprs(m)
        body = _relooped_body(e, graph) if relooped else _dispatch_body(e, graph)
        locals_ = ffi.new("BinaryenType[]", [I32, I32, I32])
        lib.BinaryenAddFunction(m, b"run", NONE, I32, locals_, 3, body)
        lib.BinaryenAddFunctionExport(m, b"run", b"run")
        assert lib.BinaryenModuleValidate(m)
        result = lib.BinaryenModuleAllocateAndWrite(m, ffi.NULL)
        data = bytes(ffi.buffer(result.binary, result.binaryBytes))
        c_free(result.binary)
        return data
    finally:
        lib.BinaryenModuleDispose(m)


def _trace(wasm: bytes, inputs: list[int]) -> tuple[int, list[int]]:
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    exports = instance.exports(store)
    memory = exports["mem"]
    memory.write(store, b"".join(v.to_bytes(4, "little") for v in inputs), 0)
    steps = exports["run"](store)
    n = MAX_STEPS if steps < 0 else steps
    raw = memory.read(store, TRACE_BASE, TRACE_BASE + 4 * n)
    return steps, [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]


@settings(max_examples=int(os.environ.get("TCG2WASM_EXAMPLES", "60")), deadline=None)
@given(graph=graphs(), inputs=st.lists(st.integers(0, 2**31 - 1), min_size=INPUT_LEN, max_size=INPUT_LEN))
def test_relooper_matches_trivial_lowering(graph: Graph, inputs: list[int]) -> None:
    want = _trace(_module_bytes(graph, relooped=False), inputs)
    got = _trace(_module_bytes(graph, relooped=True), inputs)
    assert got == want
    assert want[1][0] == 0  # the run starts at the entry


# -- misuse raises RelooperError ----------------------------------------------------------------------
@pytest.fixture
def graph() -> Any:
    m = lib.BinaryenModuleCreate()
    yield RelooperGraph(m), Exprs(m)
    lib.BinaryenModuleDispose(m)


def _ret(e: Exprs) -> Any:
    return lib.BinaryenReturn(e.m, e.c32(0))


def test_second_default_branch_raises(graph: Any) -> None:
    rg, e = graph
    a, b, c = rg.add_block(e.block([])), rg.add_block(_ret(e)), rg.add_block(_ret(e))
    rg.add_branch(a, b)
    with pytest.raises(RelooperError, match="second default"):
        rg.add_branch(a, c)


def test_missing_target_raises(graph: Any) -> None:
    rg, e = graph
    a = rg.add_block(e.block([]))
    with pytest.raises(RelooperError, match="no block 5"):
        rg.add_branch(a, 5)
    with pytest.raises(RelooperError, match="entry"):
        rg.render(3, 0)


def test_block_without_branches_must_not_fall_through(graph: Any) -> None:
    rg, e = graph
    entry = rg.add_block(e.block([e.set(0, e.c32(1))]), "falls")
    with pytest.raises(RelooperError, match="falls: no outgoing branch"):
        rg.render(entry, 1)


def test_expression_used_twice_raises(graph: Any) -> None:
    rg, e = graph
    code = _ret(e)
    rg.add_block(code)
    with pytest.raises(RelooperError, match="already used"):
        rg.add_block(code)


def test_non_i32_condition_raises(graph: Any) -> None:
    rg, e = graph
    a, b, c = rg.add_block(e.block([])), rg.add_block(_ret(e)), rg.add_block(_ret(e))
    rg.add_branch(a, b, e.c64(1))
    rg.add_branch(a, c)
    with pytest.raises(RelooperError, match="not i32"):
        rg.render(a, 0)


def test_duplicate_branches_are_folded_and_render(graph: Any) -> None:
    rg, e = graph
    a, b = rg.add_block(e.block([])), rg.add_block(_ret(e))
    c = rg.add_block(_ret(e))
    rg.add_branch(a, b, e.bin(lib.BinaryenEqInt32(), e.get32(0), e.c32(1)))
    rg.add_branch(a, b, e.bin(lib.BinaryenEqInt32(), e.get32(0), e.c32(2)))
    rg.add_branch(a, c)
    body = rg.render(a, 1)
    assert body != ffi.NULL
    with pytest.raises(RelooperError, match="already rendered"):
        rg.render(a, 1)


def test_bad_label_helper_raises(graph: Any) -> None:
    rg, e = graph
    entry = rg.add_block(_ret(e))
    with pytest.raises(RelooperError, match="label helper"):
        rg.render(entry, -1)
