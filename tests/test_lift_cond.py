"""Differential tests of setcc and cmovcc (all 16 conditions, every operand size) against Unicorn."""

from __future__ import annotations

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, EXAMPLES, compare, run_interp, states

ENGINES = ["interp", "wasm"]
CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]
SET_DESTINATIONS = ["al", "ah", "bh", "r9b", "sil", "byte ptr [rdi]", "byte ptr [rdi+7]"]
CMOV_OPERANDS = [("ax", "bx"), ("r9w", "word ptr [rdi]"), ("eax", "ebx"), ("ecx", "dword ptr [rdi+2]"),
                 ("edx", "edx"), ("rax", "rbx"), ("r15", "qword ptr [rdi+8]")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cc", CONDITIONS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), dst=st.sampled_from(SET_DESTINATIONS))
def test_setcc(cc: str, engine: str, regs: dict[str, int], dst: str) -> None:
    compare(assemble(f"set{cc} {dst}"), regs, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cc", CONDITIONS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=st.binary(min_size=16, max_size=16),
       operands=st.sampled_from(CMOV_OPERANDS))
def test_cmovcc(cc: str, engine: str, regs: dict[str, int], data: bytes, operands: tuple[str, str]) -> None:
    compare(assemble(f"cmov{cc} {operands[0]}, {operands[1]}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("src", ["cmp rax, rbx\nsetl cl\nsetb ch\ncmovg rdx, rsi", "test eax, eax\ncmovs eax, ebx"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states())
def test_condition_sequences(src: str, engine: str, regs: dict[str, int]) -> None:
    compare(assemble(src), regs, engine=engine)


def test_false_cmov32_zero_extends_and_loads() -> None:
    """A false cmovcc still zero-extends a 32-bit destination; its memory source is loaded (and faults)."""
    regs = {"rax": 0xFFFF_FFFF_1234_5678, "rbx": 7, "rflags": 0x202}  # ZF clear: cmovz is false
    out = run_interp(assemble("cmovz eax, ebx"), regs)
    assert out.regs["rax"] == 0x1234_5678
    regs["rdi"] = 0x7000_0000  # unmapped
    out = run_interp(assemble("cmovz eax, dword ptr [rdi]"), regs)
    assert out.stop == "READ_UNMAPPED"
    assert out.regs["rax"] == regs["rax"]
