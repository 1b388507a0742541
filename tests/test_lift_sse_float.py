"""Differential tests of the SSE floating-point instructions against Unicorn (interp and wasm engines).

Each snippet loads MXCSR and xmm0..xmm7 from the data area, runs one instruction
of each form (ss, sd, ps, pd; register and memory sources), stores the xmm
registers and MXCSR back, so the harness's memory comparison covers them.

Where Unicorn (QEMU 5 softfloat) is known to differ from the CPU the inputs
avoid it: when both operands of a lane are NaNs, QEMU picks the NaN by x87 rules
(larger significand) while SSE returns the first operand, so such lanes are
given the same NaN (the two-NaN rule is checked in test_float_ops.py).
"""

from __future__ import annotations

import math
import struct

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, EXAMPLES, compare, run_machine, states

from tcg2wasm.ir.ops_float import f32_bits, f32_is_nan, f64_bits, f64_is_nan

ENGINES = ["interp", "wasm"]
MXCSR_DEFAULT = 0x1F80
XMM_AREA = 0  # xmm0..xmm7 inputs at DATA_ADDR + 16 * i
OUT_AREA = 0x100  # xmm0..xmm7 results
MXCSR_IN, MXCSR_OUT = 0x200, 0x204
SCRATCH = 0x240  # memory operands for GPR conversions

F64_EDGES = [0.0, -0.0, math.inf, -math.inf, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e308, -1e-310, 5e-324,
             2.0**31, -(2.0**31), 2.0**31 - 0.5, -(2.0**31) - 0.5, -(2.0**31) - 1.0, 2.0**63, -(2.0**63),
             2.0**63 - 1024.0, 2.0**64, 3.4028235677973366e38, 1.17549435e-38]
F64_NANS = [0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000, 0x7FF0_0000_0000_0001, 0xFFF4_5678_9ABC_DEF0,
            0x7FFF_FFFF_FFFF_FFFF]
F32_EDGES = [0.0, -0.0, math.inf, -math.inf, 1.0, -1.0, 0.5, 2.5, -2.5, 3.4028234663852886e38, 1e-45, 1.1754942e-38,
             2.0**31, -(2.0**31), 2.0**63, 16777217.0, -3.5]
F32_NANS = [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFFA0_1234, 0x7FFF_FFFF]


def lane_f64() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 2**64 - 1),
        st.sampled_from(F64_EDGES).map(f64_bits),
        st.sampled_from(F64_NANS),
        st.floats(allow_nan=False).map(f64_bits),
        st.floats(-1e4, 1e4).map(f64_bits),
        st.integers(-(2**65), 2**65).map(lambda n: f64_bits(float(n))),
        st.integers(-(2**33), 2**33).map(lambda n: f64_bits(n + 0.5)),
    )


def lane_f32() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 2**32 - 1),
        st.sampled_from(F32_EDGES).map(f32_bits),
        st.sampled_from(F32_NANS),
        st.floats(allow_nan=False, width=32).map(f32_bits),
        st.floats(-1e4, 1e4, width=32).map(f32_bits),
        st.integers(-(2**33), 2**33).map(lambda n: f32_bits(n + 0.5)),
    )


def lanes(fmt: str) -> st.SearchStrategy[list[int]]:
    lane, n = (lane_f64(), 2) if fmt == "f64" else (lane_f32(), 4)
    return st.lists(lane, min_size=n, max_size=n)


def pack(fmt: str, values: list[int]) -> bytes:
    width = 8 if fmt == "f64" else 4
    return b"".join(v.to_bytes(width, "little") for v in values)


def same_nan_where_both_nan(fmt: str, dst: list[int], src: list[int]) -> list[int]:
    """Unicorn picks between two NaNs by x87 rules: give such lanes one NaN (see the module docstring)."""
    is_nan = f64_is_nan if fmt == "f64" else f32_is_nan
    return [d if is_nan(d) and is_nan(s) else s for d, s in zip(dst, src, strict=True)]


@st.composite
def xmm_pairs(draw: st.DrawFn, fmts: tuple[str, ...]) -> bytes:
    """Data for pairs (xmm0, xmm1), (xmm2, xmm3)... of the given lane formats."""
    out = b""
    for fmt in fmts:
        dst, src = draw(lanes(fmt)), draw(lanes(fmt))
        out += pack(fmt, dst) + pack(fmt, same_nan_where_both_nan(fmt, dst, src))
    return out


def with_mxcsr(xmm_data: bytes, mxcsr: int, tail: bytes = b"") -> bytes:
    data = bytearray(0x300)
    data[XMM_AREA:XMM_AREA + len(xmm_data)] = xmm_data
    data[MXCSR_IN:MXCSR_IN + 4] = mxcsr.to_bytes(4, "little")
    data[SCRATCH:SCRATCH + len(tail)] = tail
    return bytes(data)


def snippet(body: str) -> bytes:
    """Load MXCSR and xmm0..7 from [rdi], run ``body``, store xmm0..7 and MXCSR."""
    loads = "\n".join(f"movdqu xmm{i}, [rdi+{XMM_AREA + 16 * i}]" for i in range(8))
    stores = "\n".join(f"movdqu [rdi+{OUT_AREA + 16 * i}], xmm{i}" for i in range(8))
    return assemble(f"ldmxcsr [rdi+{MXCSR_IN}]\n{loads}\n{body}\n{stores}\nstmxcsr [rdi+{MXCSR_OUT}]")


def regs_with_data_pointer(draw: st.DrawFn) -> dict[str, int]:
    regs = draw(states())
    regs["rdi"] = DATA_ADDR
    return regs


def mxcsr_values(rounding: bool) -> st.SearchStrategy[int]:
    """MXCSR with any sticky exception flags; RC random when ``rounding``."""
    rc = st.integers(0, 3) if rounding else st.just(0)
    return st.builds(lambda flags, r: MXCSR_DEFAULT | flags | r << 13, st.integers(0, 0x3F), rc)


def mem(pair: int, width: str) -> str:
    """The source of pair ``pair`` (xmm 2*pair+1) as a memory operand."""
    return f"{width} ptr [rdi+{XMM_AREA + 16 * (2 * pair + 1)}]"


def four_forms(base: str) -> str:
    """ss (memory source), sd, ps, pd (memory source) on pairs 0..3."""
    return "\n".join([f"{base}ss xmm0, {mem(0, 'dword')}", f"{base}sd xmm2, xmm3", f"{base}ps xmm4, xmm5",
                      f"{base}pd xmm6, {mem(3, 'xmmword')}"])


FOUR_FMTS = ("f32", "f64", "f32", "f64")


# -- arithmetic, min/max ------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("base", ["add", "sub", "mul", "div", "sqrt", "min", "max"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_arithmetic(engine: str, base: str, data: st.DataObject) -> None:
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(FOUR_FMTS))
    mxcsr = data.draw(mxcsr_values(rounding=False))
    compare(snippet(four_forms(base)), regs, with_mxcsr(xmm, mxcsr), engine=engine)


def test_arithmetic_snippet_is_lifted() -> None:
    """The snippets above run without the fallback (otherwise they would test Unicorn against itself)."""
    out = run_machine(snippet(four_forms("add")), {"rdi": DATA_ADDR}, with_mxcsr(b"", MXCSR_DEFAULT))
    assert out.stop == "end" and out.extra["stats"].fallback_insns == 0


@pytest.mark.parametrize("rc", [1, 2, 3])
def test_non_default_rounding_goes_to_the_fallback(rc: int) -> None:
    """Arithmetic assumes round-to-nearest: with another RC the TB hands the instruction to Unicorn."""
    one, three = struct.pack("<d", 1.0), struct.pack("<d", 3.0)
    data = with_mxcsr(one * 2 + three * 2 + one * 2 + three * 2, MXCSR_DEFAULT | rc << 13)
    code = snippet("divsd xmm0, xmm1\naddsd xmm2, xmm3")
    compare(code, {"rdi": DATA_ADDR}, data, engine="wasm", allow_fallback=True)  # the point of this test
    out = run_machine(code, {"rdi": DATA_ADDR}, data)
    quotient = int.from_bytes(out.memory[DATA_ADDR][OUT_AREA:OUT_AREA + 8], "little")
    nearest = f64_bits(1.0 / 3.0)  # 1/3 rounded to nearest is below 1/3: only rounding up changes it
    assert quotient == (nearest + 1 if rc == 2 else nearest) and out.extra["stats"].fallback_insns >= 1


# -- compares -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_cmp_predicates(engine: str, data: st.DataObject) -> None:
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(FOUR_FMTS))
    imm = data.draw(st.integers(0, 7))
    body = "\n".join([f"cmpss xmm0, {mem(0, 'dword')}, {imm}", f"cmpsd xmm2, xmm3, {imm}", f"cmpps xmm4, xmm5, {imm}",
                      f"cmppd xmm6, {mem(3, 'xmmword')}, {imm}"])
    compare(snippet(body), regs, with_mxcsr(xmm, MXCSR_DEFAULT), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_comis_ucomis(engine: str, data: st.DataObject) -> None:
    """Each compare's flags are pushed, so the stack comparison sees all four."""
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(("f64", "f64", "f32", "f32")))
    body = "\n".join(["comisd xmm0, xmm1", "pushfq", f"ucomisd xmm2, {mem(1, 'qword')}", "pushfq",
                      f"comiss xmm4, {mem(2, 'dword')}", "pushfq", "ucomiss xmm6, xmm7"])
    compare(snippet(body), regs, with_mxcsr(xmm, MXCSR_DEFAULT), engine=engine)


# -- conversions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_cvtsi2ss_cvtsi2sd(engine: str, data: st.DataObject) -> None:
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(("f64", "f32", "f64", "f32")))
    tail = data.draw(st.binary(min_size=16, max_size=16))
    body = "\n".join(["cvtsi2sd xmm0, rax", "cvtsi2sd xmm1, ebx", f"cvtsi2sd xmm2, qword ptr [rdi+{SCRATCH}]",
                      f"cvtsi2sd xmm3, dword ptr [rdi+{SCRATCH + 8}]", "cvtsi2ss xmm4, rcx", "cvtsi2ss xmm5, edx",
                      f"cvtsi2ss xmm6, qword ptr [rdi+{SCRATCH}]", f"cvtsi2ss xmm7, dword ptr [rdi+{SCRATCH + 8}]"])
    compare(snippet(body), regs, with_mxcsr(xmm, MXCSR_DEFAULT, tail), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_float_to_int_scalar(engine: str, data: st.DataObject) -> None:
    """cvt(t)sd2si and cvt(t)ss2si, 32 and 64 bits, under every rounding mode."""
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(("f64", "f64", "f32", "f32")))
    mxcsr = data.draw(mxcsr_values(rounding=True))
    body = "\n".join(["cvttsd2si rax, xmm0", "cvttsd2si ebx, xmm1", "cvtsd2si rcx, xmm2",
                      f"cvtsd2si edx, {mem(1, 'qword')}", "cvttss2si r8, xmm4", "cvttss2si r9d, xmm5",
                      "cvtss2si r10, xmm6", f"cvtss2si r11d, {mem(3, 'dword')}"])
    compare(snippet(body), regs, with_mxcsr(xmm, mxcsr), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_float_to_int_packed(engine: str, data: st.DataObject) -> None:
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(("f32", "f32", "f64", "f64")))
    mxcsr = data.draw(mxcsr_values(rounding=True))
    body = "\n".join(["cvttps2dq xmm0, xmm1", f"cvtps2dq xmm2, {mem(1, 'xmmword')}", "cvttpd2dq xmm4, xmm5",
                      f"cvtpd2dq xmm6, {mem(3, 'xmmword')}"])
    compare(snippet(body), regs, with_mxcsr(xmm, mxcsr), engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_float_conversions(engine: str, data: st.DataObject) -> None:
    """cvtss2sd, cvtsd2ss, cvtps2pd, cvtpd2ps, cvtdq2pd, cvtdq2ps (the dq sources are random bits)."""
    regs = regs_with_data_pointer(data.draw)
    xmm = data.draw(xmm_pairs(("f32", "f64", "f32", "f64")))
    body = "\n".join([f"cvtss2sd xmm0, {mem(0, 'dword')}", "cvtsd2ss xmm2, xmm3", "cvtps2pd xmm4, xmm5",
                      f"cvtpd2ps xmm6, {mem(3, 'xmmword')}", "cvtdq2pd xmm1, xmm7", "cvtdq2ps xmm3, xmm6"])
    compare(snippet(body), regs, with_mxcsr(xmm, MXCSR_DEFAULT), engine=engine)


def test_conversion_snippets_are_lifted() -> None:
    body = "cvtsd2si rcx, xmm2\ncvtps2dq xmm2, xmm3\ncvtdq2ps xmm3, xmm6\ncvtsi2ss xmm4, rcx\nucomisd xmm0, xmm1"
    out = run_machine(snippet(body), {"rdi": DATA_ADDR}, with_mxcsr(b"", MXCSR_DEFAULT | 3 << 13))
    assert out.stop == "end" and out.extra["stats"].fallback_insns == 2  # only cvtdq2ps and cvtsi2ss round


# -- MXCSR --------------------------------------------------------------------------------------------
def test_ldmxcsr_reserved_bits_raise_gp() -> None:
    """Hardware raises #GP for bits above MXCSR_MASK (Unicorn does not check: engines only)."""
    data = with_mxcsr(b"", 0x1_1F80)
    for engine in ("wasm",):
        out = run_machine(snippet(""), {"rdi": DATA_ADDR}, data, engine)
        assert out.stop == "GP" and out.stop_pc == 0x10000
