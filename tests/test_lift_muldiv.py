"""Differential tests of mul/imul (1, 2 and 3 operands) and div/idiv (including #DE) against Unicorn."""

from __future__ import annotations

import random

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import CODE_ADDR, DATA_ADDR, EXAMPLES, compare, run_interp, run_unicorn, states

ENGINES = ["interp", "wasm"]
#: One-operand sources of every size (mul/imul/div/idiv).
SOURCES = ["bl", "ch", "r9b", "byte ptr [rdi]", "bx", "r10w", "word ptr [rdi+2]", "ecx", "r11d",
           "dword ptr [rdi+4]", "rbx", "r12", "qword ptr [rdi]", "al", "ax", "eax", "rax", "dl", "dx", "edx", "rdx"]
TWO_OPERAND = [("ax", "bx"), ("cx", "word ptr [rdi]"), ("eax", "ebx"), ("r8d", "dword ptr [rdi+1]"), ("rax", "rbx"),
               ("r15", "qword ptr [rdi]"), ("rcx", "rcx")]
THREE_OPERAND = [("ax", "bx"), ("cx", "word ptr [rdi]"), ("eax", "ebx"), ("r8d", "dword ptr [rdi+1]"),
                 ("rax", "rbx"), ("r15", "qword ptr [rdi]"), ("rdx", "rdx")]
IMMEDIATES = [0, 1, -1, 2, 3, 100, -128, 127, 0x7FFF, -0x8000, 0x12345, 0x7FFFFFFF, -0x80000000]


def random_bytes(size: int) -> st.SearchStrategy[bytes]:
    return st.integers(0, 2**32 - 1).map(lambda seed: random.Random(seed).randbytes(size))


@st.composite
def division_states(draw: st.DrawFn) -> dict[str, int]:
    """States where the quotient often fits: rdx zero, all ones, the sign extension of rax, or small;
    divisors often 0, +-1 or small (and random values, which mostly give #DE)."""
    regs = draw(states(pointers={"rdi": DATA_ADDR}))
    rax = regs["rax"]
    regs["rdx"] = draw(st.sampled_from([regs["rdx"], 0, 2**64 - 1, -(rax >> 63) % 2**64,
                                        -(rax >> 31 & 1) % 2**64, regs["rdx"] & 0xFF, regs["rdx"] & 0xFFFF]))
    for name in ("rbx", "rcx", "r9", "r10", "r11", "r12"):
        regs[name] = draw(st.one_of(st.just(regs[name]), st.sampled_from([0, 1, 2**64 - 1, 0xFF00, 0xFFFF_FFFF]),
                                    st.integers(-0x10000, 0x10000).map(lambda v: v % 2**64)))
    return regs


@st.composite
def division_data(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from([b"", b"\0" * 8, b"\xff" * 8, b"\x01\0\0\0\0\0\0\0", b"\x07\x01\0\0\0\0\0\0"]))
    return head + draw(random_bytes(0x100))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", ["mul", "imul"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=random_bytes(0x200), src=st.sampled_from(SOURCES))
def test_multiply_one_operand(op: str, engine: str, regs: dict[str, int], data: bytes, src: str) -> None:
    compare(assemble(f"{op} {src}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=random_bytes(0x200), operands=st.sampled_from(TWO_OPERAND))
def test_imul_two_operands(engine: str, regs: dict[str, int], data: bytes, operands: tuple[str, str]) -> None:
    compare(assemble(f"imul {operands[0]}, {operands[1]}"), regs, data, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=states(pointers={"rdi": DATA_ADDR}), data=random_bytes(0x200), operands=st.sampled_from(THREE_OPERAND),
       imm=st.one_of(st.sampled_from(IMMEDIATES), st.integers(-128, 127)))
def test_imul_three_operands(engine: str, regs: dict[str, int], data: bytes, operands: tuple[str, str],
                             imm: int) -> None:
    if operands[0].startswith(("ax", "cx")):
        imm = (imm + 0x8000) % 0x10000 - 0x8000  # a 16-bit immediate
    compare(assemble(f"imul {operands[0]}, {operands[1]}, {imm}"), regs, data, engine=engine)


def avoid_unicorn_sigfpe(regs: dict[str, int]) -> dict[str, int]:
    """Unicorn 2.1 (QEMU 5 helpers) divides INT32_MIN / -1 and INT64_MIN / -1 in host C for 16- and 32-bit
    idiv and dies with SIGFPE: nudge dx:ax = 0x8000:0 and edx:eax = 0x80000000:0 (those dividends are
    covered against Python in test_divide_error_is_precise)."""
    for bits in (16, 32):
        mask = (1 << bits) - 1
        if regs["rdx"] & mask == 1 << (bits - 1) and regs["rax"] & mask == 0:
            regs = dict(regs, rax=regs["rax"] | 1)
    return regs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("op", ["div", "idiv"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=division_states(), data=division_data(), src=st.sampled_from(SOURCES))
def test_divide(op: str, engine: str, regs: dict[str, int], data: bytes, src: str) -> None:
    compare(assemble(f"{op} {src}"), avoid_unicorn_sigfpe(regs), data, engine=engine)


@pytest.mark.parametrize(("src", "rax", "rdx", "rbx", "unicorn_survives"), [
    ("div rbx", 5, 0, 0, True),  # zero divisor
    ("div rbx", 0, 7, 7, True),  # quotient = 2**64
    ("idiv rbx", 0, 2**63, 2**64 - 1, True),  # -2**127 / -1
    ("idiv rbx", 2**63, 2**64 - 1, 2**64 - 1, True),  # INT64_MIN / -1
    ("idiv ebx", 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF, True),  # INT32_MIN / -1
    ("idiv ebx", 0, 0x8000_0000, 0xFFFF_FFFF, False),  # INT64_MIN (edx:eax) / -1: the 64-bit division overflows
    ("idiv bx", 0, 0x8000, 0xFFFF, False),  # INT32_MIN (dx:ax) / -1
    ("idiv bl", 0x8000, 0, 0xFF, True),
    ("div bl", 0x1234, 0, 0x12, True),
])
def test_divide_error_is_precise(src: str, rax: int, rdx: int, rbx: int, unicorn_survives: bool) -> None:
    """#DE stops at the dividing instruction with no register written (and agrees with Unicorn, where
    Unicorn does not itself die of SIGFPE: see avoid_unicorn_sigfpe)."""
    code = assemble(f"mov rsi, 1\n{src}\nmov rsi, 2")
    regs = {"rax": rax, "rdx": rdx, "rbx": rbx, "rflags": 0x202}
    out = run_interp(code, regs)
    assert out.stop == "DIVIDE"
    assert (out.regs["rax"], out.regs["rdx"], out.regs["rsi"], out.stop_pc) == (rax, rdx, 1, CODE_ADDR + 7)
    if unicorn_survives:
        compare(code, regs)


@pytest.mark.parametrize(("rax", "rdx", "rbx"), [
    (2**64 - 7, 2**64 - 1, 2),  # -7 / 2 = -3 rem -1
    (2**63, 2**64 - 1, 1),  # INT64_MIN / 1: the most negative quotient
    (2**63, 2**64 - 1, 2**64 - 1),  # INT64_MIN / -1: one past the largest quotient
    (2**64 - 1, 2**62 - 1, 2**63 - 1),  # a large positive dividend, quotient 2**63 - 1 ... or just past it
    (0, 2**62, 2**63 - 1),
    (0, 2**63, 2**63),  # -2**127 / -2**63 = 2**64
    (1, 2**63, 2**63),  # (-2**127 + 1) / -2**63: just below 2**64
    (0, 2**64 - 2**62, 2**63 - 1),  # -2**126 / (2**63 - 1): just below -2**63
])
def test_wide_signed_division_edges(rax: int, rdx: int, rbx: int) -> None:
    """128/64-bit idiv at the limits of the quotient range, against Python's arithmetic and Unicorn."""
    regs = {"rax": rax, "rdx": rdx, "rbx": rbx, "rflags": 0x202}
    code = assemble("idiv rbx")
    compare(code, regs)
    dividend = ((rdx << 64) | rax) - ((rdx >> 63) << 128)
    divisor = rbx - ((rbx >> 63) << 64)
    q = abs(dividend) // abs(divisor) * (1 if (dividend < 0) == (divisor < 0) else -1)
    out = run_interp(code, regs)
    if -2**63 <= q < 2**63:
        assert (out.stop, out.regs["rax"], out.regs["rdx"]) == ("end", q % 2**64, (dividend - q * divisor) % 2**64)
    else:
        assert out.stop == "DIVIDE"


@pytest.mark.parametrize("src", ["mul bl", "mul cx", "mul qword ptr [rdi]", "imul r9d", "imul rax, rbx",
                                 "imul cx, word ptr [rdi], -3", "div rbx", "idiv ecx"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(regs=division_states(), data=division_data())
def test_undefined_flags_match_unicorn(src: str, regs: dict[str, int], data: bytes) -> None:
    """SF/ZF/AF/PF of mul/imul and all flags of div/idiv are undefined; we give Unicorn's values."""
    code = assemble(src)
    regs = avoid_unicorn_sigfpe(regs)
    assert run_interp(code, regs, data).regs == run_unicorn(code, regs, data).regs
