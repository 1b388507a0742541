"""Differential tests of xadd, cmpxchg, cmpxchg8b/16b and bswap against Unicorn.

cmpxchg with 32-bit operands follows the SDM where Unicorn 2.1 does not (see
sem_atomic): the random states keep the upper halves of rax and of the
destination register zero, where both agree, and test_cmpxchg32_upper_halves
pins the architectural behaviour.
"""

from __future__ import annotations

import random

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, EXAMPLES, compare, run_interp, run_unicorn, states

ENGINES = ["interp", "wasm"]
XADD_OPERANDS = ["al, bl", "ah, al", "bx, cx", "ecx, edx", "rax, rbx", "rax, rax", "eax, eax", "r9b, r10b",
                 "byte ptr [rdi], dl", "word ptr [rdi+1], si", "dword ptr [rdi], ecx", "qword ptr [rdi+8], rbx"]
CMPXCHG_OPERANDS = ["bl, cl", "bh, dl", "al, bl", "bx, cx", "ax, dx", "ecx, edx", "eax, ecx", "rbx, rcx", "rax, rdx",
                    "r9, r10", "byte ptr [rdi], dl", "word ptr [rdi+1], si", "dword ptr [rdi], ecx",
                    "qword ptr [rdi+8], rbx"]


def random_bytes(size: int) -> st.SearchStrategy[bytes]:
    return st.integers(0, 2**32 - 1).map(lambda seed: random.Random(seed).randbytes(size))


@st.composite
def compare_exchange_case(draw: st.DrawFn) -> tuple[dict[str, int], bytes, str]:
    """A cmpxchg operand pair with a state where the comparison is equal about half of the time."""
    operands = draw(st.sampled_from(CMPXCHG_OPERANDS))
    regs = draw(states(pointers={"rdi": DATA_ADDR}))
    data = bytearray(draw(random_bytes(0x200)))
    if draw(st.booleans()):  # make the accumulator equal the destination
        dest = operands.split(",")[0]
        if "ptr" in dest:
            offset = regs["rdi"] - DATA_ADDR + (1 if "+1" in dest else 8 if "+8" in dest else 0)
            regs["rax"] = int.from_bytes(data[offset:offset + 8], "little")
        else:
            regs["rax"] = regs[{"bl": "rbx", "bh": "rbx", "bx": "rbx", "ecx": "rcx", "rbx": "rbx", "r9": "r9",
                                "al": "rax", "ax": "rax", "eax": "rax", "rax": "rax"}[dest]]
            if dest == "bh":
                regs["rax"] = regs["rbx"] >> 8
    if operands.startswith(("eax", "ecx", "dword")):  # 32-bit: keep the upper halves zero
        for name in ("rax", "rcx"):
            regs[name] &= 0xFFFF_FFFF
    return regs, bytes(data), operands


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=random_bytes(0x200), operands=st.sampled_from(XADD_OPERANDS),
       lock=st.booleans())
def test_xadd(engine: str, regs: dict[str, int], data: bytes, operands: str, lock: bool) -> None:
    prefix = "lock " if lock and "ptr" in operands else ""
    compare(assemble(f"{prefix}xadd {operands}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(case=compare_exchange_case(), lock=st.booleans())
def test_cmpxchg(engine: str, case: tuple[dict[str, int], bytes, str], lock: bool) -> None:
    regs, data, operands = case
    prefix = "lock " if lock and "ptr" in operands else ""
    compare(assemble(f"{prefix}cmpxchg {operands}"), regs, data, engine=engine)


@st.composite
def pair_case(draw: st.DrawFn, bits: int) -> tuple[dict[str, int], bytes]:
    """cmpxchg8b/16b states (16-byte aligned rdi) where edx:eax / rdx:rax often equals memory."""
    regs = draw(states())
    regs["rdi"] = DATA_ADDR + 16 * draw(st.integers(0, 16))
    data = draw(random_bytes(0x200))
    if draw(st.booleans()):
        offset = regs["rdi"] - DATA_ADDR
        mask = (1 << bits) - 1
        regs["rax"] = regs["rax"] & ~mask | int.from_bytes(data[offset:offset + bits // 8], "little")
        regs["rdx"] = regs["rdx"] & ~mask | int.from_bytes(data[offset + bits // 8:offset + bits // 4], "little")
    return regs, data


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(case=pair_case(32), lock=st.booleans())
def test_cmpxchg8b(engine: str, case: tuple[dict[str, int], bytes], lock: bool) -> None:
    regs, data = case
    compare(assemble(f"{'lock ' if lock else ''}cmpxchg8b qword ptr [rdi]"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(case=pair_case(64), lock=st.booleans())
def test_cmpxchg16b(engine: str, case: tuple[dict[str, int], bytes], lock: bool) -> None:
    regs, data = case
    compare(assemble(f"{'lock ' if lock else ''}cmpxchg16b xmmword ptr [rdi]"), regs, data, engine=engine)


def test_cmpxchg16b_misaligned_is_gp() -> None:
    out = run_interp(assemble("cmpxchg16b xmmword ptr [rdi]"), {"rdi": DATA_ADDR + 8, "rflags": 0x202})
    assert out.stop == "GP"
    assert run_unicorn(assemble("cmpxchg16b xmmword ptr [rdi]"), {"rdi": DATA_ADDR + 8}).stop == "INT13"


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(), reg=st.sampled_from(["eax", "ebx", "r9d", "rax", "rcx", "r15"]))
def test_bswap(engine: str, regs: dict[str, int], reg: str) -> None:
    compare(assemble(f"bswap {reg}"), regs, engine=engine)


@pytest.mark.parametrize(("rax", "want_rax", "want_rcx"), [
    (0xAAAA_AAAA_0000_0005, 0xAAAA_AAAA_0000_0005, 0x0000_0000_0000_0009),  # equal: rax untouched
    (0xAAAA_AAAA_0000_0004, 0x0000_0000_0000_0005, 0xCCCC_CCCC_0000_0005),  # unequal: rcx untouched
])
def test_cmpxchg32_upper_halves(rax: int, want_rax: int, want_rcx: int) -> None:
    """SDM behaviour: the destination is written only on equality, the accumulator only on inequality,
    so only the written register is zero-extended (Unicorn 2.1 zero-extends both, always)."""
    regs = {"rax": rax, "rcx": 0xCCCC_CCCC_0000_0005, "rdx": 0xDDDD_DDDD_0000_0009, "rflags": 0x202}
    out = run_interp(assemble("cmpxchg ecx, edx"), regs)
    assert (out.regs["rax"], out.regs["rcx"]) == (want_rax, want_rcx)
    unicorn = run_unicorn(assemble("cmpxchg ecx, edx"), regs)
    assert (unicorn.regs["rax"], unicorn.regs["rcx"]) == (want_rax & 0xFFFF_FFFF, want_rcx & 0xFFFF_FFFF)
