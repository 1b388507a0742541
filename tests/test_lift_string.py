"""Differential tests of the string instructions (movs/stos/lods/cmps/scas, with rep/repe/repne) against Unicorn."""

from __future__ import annotations

import random

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import CODE_ADDR, DATA_ADDR, EXAMPLES, compare, states

from tcg2wasm.frontend.x86_64.translate import translate_block
from tcg2wasm.ir import validate_tb

ENGINES = ["interp", "wasm"]
WIDTHS = ("b", "w", "d", "q")
#: Pointers start in the middle of the data area so that both directions (DF) stay mapped.
POINTER_BASE = DATA_ADDR + 0x400
#: Small counts keep runs short and inside the data area (see docs/frontend-notes-b.md on page-crossing stores).
MAX_COUNT = 24

SNIPPETS = [
    *(f"{prefix}movs{w}" for prefix in ("", "rep ") for w in WIDTHS),
    *(f"{prefix}stos{w}" for prefix in ("", "rep ") for w in WIDTHS),
    *(f"{prefix}lods{w}" for prefix in ("", "rep ") for w in WIDTHS),
    *(f"{prefix}cmps{w}" for prefix in ("", "repe ", "repne ") for w in WIDTHS),
    *(f"{prefix}scas{w}" for prefix in ("", "repe ", "repne ") for w in WIDTHS),
    # in a sequence: after a rep (the TB ends there), with DF changed inside the block
    "mov rax, rcx\nrep stosb\nadd rax, 1",
    "std\nrep movsq\ncld\nlodsb",
    "repne movsb",  # f2 on movs acts as rep
    "cld\nrepne scasb\nmov rdx, rdi",
    # precise faults: the iteration that touches an unmapped byte faults with rcx/rsi/rdi of its start
    "mov edi, 0x21ff0\nrep stosb", "mov edi, 0x20008\nrep stosb", "mov esi, 0x21ff4\nrep lodsw",
    "mov edi, 0x21ff8\nrepe scasb",
]


@st.composite
def data_areas(draw: st.DrawFn) -> bytes:
    """Data with long runs of zeros (so repe runs on) and some random bytes (so repne stops)."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.0, 0.02, 0.2, 1.0]))
    return bytes(rng.randrange(256) if rng.random() < density else 0 for _ in range(0x800))


@st.composite
def string_states(draw: st.DrawFn) -> dict[str, int]:
    regs = draw(states(pointers={"rdi": POINTER_BASE, "rsi": POINTER_BASE}))
    regs["rcx"] = draw(st.integers(0, MAX_COUNT))
    return regs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("src", SNIPPETS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=string_states(), data=data_areas())
def test_string_instruction(src: str, engine: str, regs: dict[str, int], data: bytes) -> None:
    compare(assemble(src), regs, data, engine=engine)


def _tb(src: str):
    code = assemble(src)
    tb = translate_block(lambda addr, n: code[addr - CODE_ADDR:][:n], CODE_ADDR)
    validate_tb(tb)
    return tb


@pytest.mark.parametrize("src", ["rep movsb", "repe cmpsq", "repne scasd", "rep stosw", "rep lodsb"])
def test_rep_block_loops_on_itself(src: str) -> None:
    """A rep instruction is its own TB's only instruction and loops back to its own pc."""
    tb = _tb(src)
    assert tb.n_insns == 1
    assert sorted(tb.successors()) == sorted({CODE_ADDR, CODE_ADDR + tb.size})


def test_plain_string_op_does_not_end_block() -> None:
    tb = _tb("movsb\nstosq\nlodsw\nnop")
    assert tb.n_insns == 4


@pytest.mark.parametrize("src", ["addr32 movsb", "addr32 rep stosq"])
def test_32bit_addressing_is_lifted(src: str) -> None:
    """The 0x67 forms (esi/edi/ecx) are lifted (tests/test_lift_address_size.py compares them with Unicorn)."""
    tb = _tb(src)
    assert tb.fallback_insns == 0
    assert tb.n_insns == 1
