"""Differential tests of the flag instructions, enter/leave, ud2 and int against Unicorn."""

from __future__ import annotations

import pytest
from asm import assemble
from hypothesis import given, settings
from lift_harness import CODE_ADDR, EXAMPLES, STACK_ADDR, STACK_TOP, compare, run_interp, run_machine, states

from tcg2wasm.abi import GLOBAL_INDEX
from tcg2wasm.frontend.x86_64.translate import translate_block
from tcg2wasm.ir import N_GLOBALS, Excp, Exit, validate_tb
from tcg2wasm.ir.interp import run_tb

ENGINES = ["interp", "wasm"]
#: rflags bits popf may set in these tests: the seven modelled flags, bit 1 and IF (see docs/frontend-notes-b.md).
POPF_MASK = 0xCD5
POPF_FIXED = 0x202
#: rbp points into the stack area, below rsp, so that enter's frame copies and leave's pop read mapped memory.
FRAME_BASE = STACK_ADDR + 0x800

SNIPPETS = [
    "clc", "stc", "cmc", "cld", "std",
    "lahf", "sahf", "lahf\nmov bl, ah\nsahf",
    "pushfq", "pushfw",
    f"and rax, {POPF_MASK:#x}\nor rax, {POPF_FIXED:#x}\npush rax\npopfq",
    f"and eax, {POPF_MASK:#x}\nor eax, {POPF_FIXED:#x}\npush ax\npopfw",
    f"pushfq\nxor qword ptr [rsp], rbx\nand qword ptr [rsp], {POPF_MASK:#x}\nor qword ptr [rsp], {POPF_FIXED:#x}\n"
    "popfq\npushfq\npop rdx",
    "std\npushfq\ncld\npopfq",
    "stc\ncmc\nlahf",
    "enter 0, 0", "enter 16, 0", "enter 0x1238, 0", "enter 32, 1", "enter 24, 2", "enter 8, 5",
    "leave", "leavew", "enter 40, 3\nleave",
    "mov rbp, rsp\nsub rsp, 64\nleave",
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("src", SNIPPETS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rbp": FRAME_BASE}))
def test_flag_and_frame_instruction(src: str, engine: str, regs: dict[str, int]) -> None:
    compare(assemble(src), regs, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states())
def test_ud2_faults_at_its_pc(engine: str, regs: dict[str, int]) -> None:
    """#UD with the registers of before ud2 (the add before it has committed)."""
    compare(assemble("add rax, rbx\nud2\nadd rax, rbx"), regs, engine=engine)


def _single_tb(src: str):
    code = assemble(src)
    tb = translate_block(lambda addr, n: code[addr - CODE_ADDR:][:n], CODE_ADDR)
    validate_tb(tb)
    return code, tb


@pytest.mark.parametrize("src", ["int3", "int 0x80", "add rax, 1\nint3", "add rax, 1\nint 3"])
def test_int_exits_at_the_instruction(src: str) -> None:
    """int3/int n leave with Exit.INT at their own pc, after the instructions before them."""
    code, tb = _single_tb(src)
    assert tb.fallback_insns == 0
    int_pc = tb.insns[-1].pc
    values = [0] * N_GLOBALS
    result = run_tb(tb, values, None)  # no memory access expected
    assert (result.exit, result.pc) == (Exit.INT, int_pc)
    assert values[GLOBAL_INDEX["rax"]] == (1 if src.startswith("add") else 0)


def test_int_stops_the_machine() -> None:
    out = run_machine(assemble("add rax, 1\nint3\nadd rax, 1"), {"rax": 5, "rsp": STACK_TOP})
    assert out.stop == "interrupt"
    assert out.regs["rax"] == 6


@pytest.mark.parametrize("src", ["ud2", "add rax, 1\nud2"])
def test_ud2_is_a_trap(src: str) -> None:
    _, tb = _single_tb(src)
    traps = [op for op in tb.ops if op.name == "trapcond_i64"]
    assert [op.consts[1] for op in traps] == [Excp.INVALID_OPCODE]
    out = run_interp(assemble(src), {"rax": 1, "rsp": STACK_TOP})
    assert (out.stop, out.stop_pc) == ("INVALID_OPCODE", tb.insns[-1].pc)


@pytest.mark.parametrize("src", [s for s in SNIPPETS if "\n" not in s])
def test_lifted_not_fallback(src: str) -> None:
    """Each single-instruction snippet is lifted (a fallback would make the differential test vacuous)."""
    _, tb = _single_tb(src)
    assert tb.fallback_insns == 0
    assert tb.n_insns == 1


def test_enter_16bit_operand_size_is_lifted() -> None:
    """Lifted since issue 11 (it writes only BP, as the CPU; tests/test_lift_address_size.py checks every level)."""
    _, tb = _single_tb("data16 enter 8, 0")
    assert tb.fallback_insns == 0 and tb.n_insns == 1
