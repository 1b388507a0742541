"""Differential tests of bit operations (bt/bts/btr/btc, bsf/bsr, tzcnt/lzcnt, popcnt) against Unicorn."""

from __future__ import annotations

import random

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, DATA_SIZE, EXAMPLES, compare, run_interp, run_unicorn, states

ENGINES = ["interp", "wasm"]
BIT_TESTS = ("bt", "bts", "btr", "btc")
#: rdi points this far into the data area, so negative bit offsets stay mapped too.
POINTER_BASE = DATA_ADDR + 0x800

#: (destination, bit-offset register, operand bits) of every size, with memory destinations
REGISTER_OFFSET_OPERANDS = [("ax", "bx", 16), ("r9w", "ax", 16), ("word ptr [rdi]", "bx", 16), ("ecx", "ebx", 32),
                            ("r11d", "eax", 32), ("dword ptr [rdi+5]", "ebx", 32), ("rsi", "rbx", 64),
                            ("rax", "rax", 64), ("qword ptr [rdi-16]", "rbx", 64)]
IMMEDIATE_OFFSET_OPERANDS = ["dx", "word ptr [rdi]", "edx", "dword ptr [rdi+1]", "rdx", "qword ptr [rdi]"]
#: (destination, source) pairs of every size for bsf/bsr/tzcnt/lzcnt/popcnt
SCAN_OPERANDS = [("ax", "bx"), ("bx", "word ptr [rdi]"), ("ecx", "edx"), ("r9d", "r9d"), ("eax", "dword ptr [rdi+3]"),
                 ("rsi", "r8"), ("rax", "qword ptr [rdi]")]
SEQUENCES = ["bt rax, rbx\nadc rcx, 0", "lock bts qword ptr [rdi], rbx", "lock btr dword ptr [rdi], 7",
             "bsf rcx, rbx\ncmovz rcx, rdx", "popcnt eax, ebx\nsetz cl\nlzcnt edx, eax"]


@st.composite
def bit_offset_states(draw: st.DrawFn, bits: int = 64) -> dict[str, int]:
    """States whose rbx/rax hold a signed ``bits``-bit bit offset reaching around the data area (or, less
    often, far outside it: a fault), with garbage above ``bits`` (which the instruction must ignore).
    Offsets stay small enough for canonical addresses: Unicorn does not #GP on a non-canonical address
    but wraps it modulo 2**52."""
    regs = draw(states(pointers={"rdi": POINTER_BASE}))
    span = 8 * (DATA_SIZE // 2)
    limit = min(2**40, 2 ** (bits - 1) - 1)
    for name in ("rbx", "rax"):
        offset = draw(st.one_of(st.integers(-span, span), st.integers(-span, span), st.integers(-limit, limit)))
        regs[name] = (regs[name] >> bits << bits) | (offset & ((1 << bits) - 1))
    return regs


@st.composite
def sparse_values(draw: st.DrawFn) -> dict[str, int]:
    """States with many zero and one-bit sources, where the scans and counts have their edge cases."""
    regs = draw(states(pointers={"rdi": DATA_ADDR}))
    for name in ("rbx", "rdx", "r8", "r9"):
        regs[name] = draw(st.one_of(st.just(regs[name]), st.just(0), st.integers(0, 63).map(lambda n: 1 << n),
                                    st.integers(0, 15).map(lambda n: (1 << 32 | 1 << 16) << n)))
    return regs


def random_bytes(size: int) -> st.SearchStrategy[bytes]:
    """``size`` pseudo-random bytes drawn from a seed (cheap for hypothesis to generate and shrink)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: random.Random(seed).randbytes(size))


@st.composite
def sparse_data(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from([b"", b"\0" * 8, b"\0\0\0\x80", b"\x01"]))
    return head + draw(random_bytes(0x200))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", BIT_TESTS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(case=st.sampled_from(REGISTER_OFFSET_OPERANDS).flatmap(
    lambda operands: st.tuples(st.just(operands), bit_offset_states(operands[2]))), data=random_bytes(DATA_SIZE))
def test_bit_test_register_offset(op: str, engine: str, case: tuple[tuple[str, str, int], dict[str, int]],
                                  data: bytes) -> None:
    (dst, offset_reg, _), regs = case
    compare(assemble(f"{op} {dst}, {offset_reg}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", BIT_TESTS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=random_bytes(0x200),
       dst=st.sampled_from(IMMEDIATE_OFFSET_OPERANDS), offset=st.integers(0, 255))
def test_bit_test_immediate_offset(op: str, engine: str, regs: dict[str, int], data: bytes, dst: str,
                                   offset: int) -> None:
    compare(assemble(f"{op} {dst}, {offset}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", ["bsf", "bsr", "tzcnt", "lzcnt", "popcnt"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=sparse_values(), data=sparse_data(), operands=st.sampled_from(SCAN_OPERANDS))
def test_bit_scan_and_count(op: str, engine: str, regs: dict[str, int], data: bytes,
                            operands: tuple[str, str]) -> None:
    compare(assemble(f"{op} {operands[0]}, {operands[1]}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("src", SEQUENCES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=bit_offset_states(), data=random_bytes(DATA_SIZE))
def test_bit_sequences(src: str, engine: str, regs: dict[str, int], data: bytes) -> None:
    compare(assemble(src), regs, data, engine=engine)


@pytest.mark.parametrize("src", ["bt rax, rbx", "btc word ptr [rdi], 3", "bsf rax, rbx", "bsr cx, word ptr [rdi]",
                                 "tzcnt rax, r8", "lzcnt ecx, edx", "popcnt r9d, r9d"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=sparse_values(), data=sparse_data())
def test_undefined_flags_match_unicorn(src: str, regs: dict[str, int], data: bytes) -> None:
    """Flags the SDM leaves undefined get Unicorn's values: compare all of rflags."""
    code = assemble(src)
    assert run_interp(code, regs, data).regs == run_unicorn(code, regs, data).regs
