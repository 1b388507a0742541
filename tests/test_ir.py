"""The IR: op table consistency, builder, validator, printer and interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcg2wasm.ir import GLOBALS, OPS, Cond, Excp, Exit, IRBuilder, IRError, MemOp, Op, format_tb, validate_tb
from tcg2wasm.ir.core import N_GLOBALS, Temp
from tcg2wasm.ir.interp import GuestFault, run_tb
from tcg2wasm.ir.ops import MASK64, eval_cond, to_signed

u64 = st.integers(0, MASK64)


def test_every_op_is_specified_in_docs() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "ir.md").read_text()
    missing = [name for name in OPS if f"`{name}" not in text]
    assert not missing


def test_pure_ops_have_one_output() -> None:
    for d in OPS.values():
        if d.fold is not None:
            assert d.n_out == 1, d.name


@given(u64, u64)
def test_conditions_match_their_definitions(a: int, b: int) -> None:
    sa, sb = to_signed(a), to_signed(b)
    assert eval_cond(Cond.LT, a, b) == (sa < sb)
    assert eval_cond(Cond.GTU, a, b) == (a > b)
    assert eval_cond(Cond.TSTNE, a, b) == bool(a & b)
    for c in Cond:
        from tcg2wasm.ir.ops import INVERTED_COND
        assert eval_cond(INVERTED_COND[c], a, b) != eval_cond(c, a, b)


def _tb_for(build) -> object:
    b = IRBuilder()
    b.insn_start(0x1000)
    build(b)
    b.goto_tb(0x2000)
    return b.finish(0x1000, 1, [])


@settings(max_examples=300)
@given(u64, u64)
def test_two_output_ops(a: int, c: int) -> None:
    values = [0] * N_GLOBALS
    values[0], values[1] = a, c

    def build(b: IRBuilder) -> None:
        lo, hi = b.mulu2(GLOBALS["rax"], GLOBALS["rcx"])
        b.set_global("rdx", lo)
        b.set_global("rbx", hi)
        slo, shi = b.muls2(GLOBALS["rax"], GLOBALS["rcx"])
        b.set_global("rsi", slo)
        b.set_global("rdi", shi)

    run_tb(_tb_for(build), values, None)
    assert (values[3] << 64 | values[2]) == a * c
    assert ((values[7] << 64 | values[6]) - ((1 << 128) if values[7] >> 63 else 0)) == to_signed(a) * to_signed(c)


@given(u64, u64, st.integers(1, MASK64))
def test_divu2(nl: int, nh: int, d: int) -> None:
    n = nh << 64 | nl
    if n // d >= 1 << 64:
        return
    values = [0] * N_GLOBALS
    values[0], values[1], values[2] = nl, nh, d

    def build(b: IRBuilder) -> None:
        q, r = b.divu2(GLOBALS["rax"], GLOBALS["rcx"], GLOBALS["rdx"])
        b.set_global("rbx", q)
        b.set_global("rsi", r)

    run_tb(_tb_for(build), values, None)
    assert (values[3], values[6]) == divmod(n, d)


def test_deferred_writeback_keeps_state_precise_on_fault() -> None:
    class Faulting:
        def load(self, addr: int, size: int) -> int:
            raise GuestFault(Excp.READ_UNMAPPED, addr)

        def store(self, addr: int, size: int, value: int) -> None:
            raise GuestFault(Excp.WRITE_UNMAPPED, addr)

    def build(b: IRBuilder) -> None:
        b.set_global("rax", b.const(99))  # written before the load within the same instruction
        b.load(GLOBALS["rbx"], MemOp.UQ)

    values = [0] * N_GLOBALS
    values[3] = 0x5000
    result = run_tb(_tb_for(build), values, Faulting())
    assert result.exit == Exit.FAULT and result.fault_kind == Excp.READ_UNMAPPED
    assert result.fault_addr == 0x5000 and result.pc == 0x1000
    assert values[0] == 0


def test_builder_simplifies_trivial_cases() -> None:
    b = IRBuilder()
    rax = GLOBALS["rax"]
    assert b.addi(rax, 0) is rax
    assert b.andi(rax, MASK64) is rax
    assert b.const(5) is b.const(5)
    assert b.extract(rax, 0, 64) is rax


def test_set_global_from_a_global_copies_it() -> None:
    """xchg-like swaps must read both old values."""
    b = IRBuilder()
    b.insn_start(0)
    a, c = b.get_global("rax"), b.get_global("rbx")
    b.set_global("rax", c)
    b.set_global("rbx", a)
    b.goto_tb(1)
    values = [0] * N_GLOBALS
    values[0], values[3] = 1, 2
    run_tb(b.finish(0, 1, []), values, None)
    assert values[0] == 2 and values[3] == 1


@pytest.mark.parametrize("op, message", [
    (Op("nosuch_op", []), "unknown op"),
    (Op("add_i64", [GLOBALS["rax"], GLOBALS["rax"]]), "expected 3 args"),
    (Op("add_i64", [GLOBALS["rax"], GLOBALS["rax"], Temp(10_000)]), "bad temp"),
    (Op("movi_i64", [GLOBALS["rax"], -1]), "bad constant"),
    (Op("setcond_i64", [GLOBALS["rax"], GLOBALS["rax"], GLOBALS["rax"], 99]), "setcond_i64"),
    (Op("extract_i64", [GLOBALS["rax"], GLOBALS["rax"], 60, 8]), "bad field"),
    (Op("qemu_ld_i64", [GLOBALS["rax"], GLOBALS["rax"], 7]), "bad memop"),
])
def test_validator_rejects_malformed_ops(op: Op, message: str) -> None:
    b = IRBuilder()
    b.ops.append(op)
    b.goto_tb(0)
    with pytest.raises(IRError, match=message):
        validate_tb(b.finish(0, 0, []))


def test_validator_requires_a_terminator_and_defined_labels() -> None:
    b = IRBuilder()
    b.insn_start(0)
    with pytest.raises(IRError, match="terminator"):
        validate_tb(b.finish(0, 0, []))
    b = IRBuilder()
    label = b.new_label()
    b.br(label)
    with pytest.raises(IRError, match="not defined"):
        validate_tb(b.finish(0, 0, []))


def test_printer_is_qemu_like_and_deterministic() -> None:
    def build(b: IRBuilder) -> None:
        b.set_global("rax", b.add(GLOBALS["rax"], GLOBALS["rbx"]))

    tb = _tb_for(build)
    text = format_tb(tb)
    assert " ---- 0000000000001000" in text
    assert " add_i64 tmp0,rax,rbx" in text
    assert text.endswith(" goto_tb $0x2000")
    assert text == format_tb(_tb_for(build))


def test_trapcond_reports_its_exception() -> None:
    def build(b: IRBuilder) -> None:
        b.trapcond(Cond.EQ, GLOBALS["rcx"], b.const(0), Excp.DIVIDE)

    result = run_tb(_tb_for(build), [0] * N_GLOBALS, None)
    assert result.exit == Exit.FAULT and result.fault_kind == Excp.DIVIDE


def test_validator_rejects_backward_branches() -> None:
    b = IRBuilder()
    label = b.new_label()
    b.set_label(label)
    b.br(label)
    with pytest.raises(IRError, match="backward"):
        validate_tb(b.finish(0, 0, []))
