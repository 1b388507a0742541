"""The floating-point ops: Python folds on hand-checked x86 cases, and the wasm emitters against the folds."""

from __future__ import annotations

import functools
import math
import struct

import pytest
from backend_harness import Harness
from hypothesis import given, settings
from hypothesis import strategies as st

from tcg2wasm.abi import GLOBAL_NAMES
from tcg2wasm.backend import compile_region
from tcg2wasm.cfg import Region
from tcg2wasm.ir import OPS, GuestInsn, IRBuilder, TranslationBlock
from tcg2wasm.ir.core import GLOBALS
from tcg2wasm.ir.ops import MASK64
from tcg2wasm.ir.ops_float import F32_DEFAULT_NAN, F64_DEFAULT_NAN, FLOAT_OPS, FCond, f32_bits, f64_bits


def d(x: float) -> int:
    return f64_bits(x)


def f(x: float) -> int:
    return f32_bits(x)


def fold(name: str, *args: int) -> int:
    return OPS[name].fold(*args)


INF, NINF = d(math.inf), d(-math.inf)
QNAN_A, QNAN_B = 0x7FF8_0000_0000_1234, 0xFFF8_0000_0000_0042
SNAN = 0x7FF0_0000_0000_0005


# -- folds on cases whose x86 result is known ----------------------------------------------
@pytest.mark.parametrize(("name", "a", "b", "want"), [
    ("add_f64", d(1.5), d(2.25), d(3.75)),
    ("sub_f64", INF, INF, F64_DEFAULT_NAN),
    ("mul_f64", d(0.0), NINF, F64_DEFAULT_NAN),
    ("div_f64", d(0.0), d(-0.0), F64_DEFAULT_NAN),
    ("div_f64", d(-3.0), d(0.0), NINF),
    ("div_f64", d(3.0), d(-0.0), NINF),
    ("add_f64", QNAN_A, QNAN_B, QNAN_A),  # two NaNs: the first one
    ("add_f64", SNAN, QNAN_B, SNAN | 1 << 51),  # quieted
    ("mul_f64", d(1.0), SNAN, SNAN | 1 << 51),
    ("sub_f64", d(1e308), d(-1e308), INF),
    ("div_f32", f(1.0), f(3.0), f(1.0 / 3.0)),
    ("div_f32", 0xDEAD_BEEF_0000_0000, 0x1234_5678_0000_0000, F32_DEFAULT_NAN),  # upper bits ignored: 0 / 0
    ("add_f32", 0x7F80_0001, 0xFFC0_0000, 0x7FC0_0001),
    ("mul_f32", f(3e38), f(10.0), f(math.inf)),
    ("min_f64", d(0.0), d(-0.0), d(-0.0)),  # equal: the second operand
    ("min_f64", d(-0.0), d(0.0), d(0.0)),
    ("max_f64", QNAN_A, d(1.0), d(1.0)),  # a NaN: the second operand, as is
    ("max_f64", d(1.0), SNAN, SNAN),
    ("min_f32", f(-2.0), f(1.0), f(-2.0)),
    ("max_f32", f(-2.0), f(1.0), f(1.0)),
])
def test_binary_folds_follow_x86(name: str, a: int, b: int, want: int) -> None:
    assert fold(name, a, b) == want


@pytest.mark.parametrize(("name", "a", "want"), [
    ("sqrt_f64", d(-0.0), d(-0.0)),
    ("sqrt_f64", d(-1.0), F64_DEFAULT_NAN),
    ("sqrt_f64", NINF, F64_DEFAULT_NAN),
    ("sqrt_f64", QNAN_B, QNAN_B),
    ("sqrt_f32", f(2.0), f(math.sqrt(2.0))),
    ("cvt_f64_from_f32", 0xFF80_0001, 0xFFF8_0000_2000_0000),
    ("cvt_f64_from_f32", f(0.1), d(struct.unpack("<f", struct.pack("<f", 0.1))[0])),
    ("cvt_f32_from_f64", 0x7FF0_0000_2000_0000, 0x7FC0_0001),
    ("cvt_f32_from_f64", d(1e39), f(math.inf)),
    ("cvt_f32_from_f64", d(-1e-50), 0x8000_0000),
    ("cvt_f64_from_i64", MASK64, d(-1.0)),
    ("cvt_f64_from_i64", (1 << 63) + 1, d(-(2.0**63))),
    # 2**60 + 2**36 + 1 is just above a binary32 tie; through binary64 it would round to the tie and then down
    ("cvt_f32_from_i64", (1 << 60) + (1 << 36) + 1, f(2.0**60 + 2.0**37)),
    ("cvt_i64_from_f64", d(-(2.0**63)), 1 << 63),
    ("cvt_i64_from_f64", d(2.0**63), 1 << 63),
    ("cvt_i64_from_f64", d(-1.9), MASK64),
    ("cvt_i64_from_f64", QNAN_A, 1 << 63),
    ("cvt_i32_from_f64", d(-2147483648.9), 0x8000_0000),
    ("cvt_i32_from_f64", d(2147483647.9), 0x7FFF_FFFF),
    ("cvt_i32_from_f64", d(2147483648.0), 0x8000_0000),
    ("cvt_i32_from_f64", d(-3.5), 0xFFFF_FFFD),
])
def test_unary_folds_follow_x86(name: str, a: int, want: int) -> None:
    assert fold(name, a) == want


@pytest.mark.parametrize(("x", "mode", "want"), [
    (2.5, 0, 2.0), (3.5, 0, 4.0), (-0.5, 0, -0.0), (-2.5, 1, -3.0), (-2.5, 2, -2.0), (-0.5, 2, -0.0),
    (2.7, 3, 2.0), (-2.7, 3, -2.0), (1e300, 1, 1e300), (-math.inf, 2, -math.inf), (0.5, 4, 0.0),
])
def test_round_f64_by_rounding_mode(x: float, mode: int, want: float) -> None:
    assert fold("round_f64", d(x), mode) == d(want)


def test_setcond_predicates() -> None:
    lt = [fold("setcond_f64", d(1.0), d(2.0), c) for c in FCond]
    eq = [fold("setcond_f64", d(-0.0), d(0.0), c) for c in FCond]
    unord = [fold("setcond_f32", 0x7FC0_0000, f(1.0), c) for c in FCond]
    #          EQ LT LE UN NE NLT NLE ORD EQU NGE NGT F NEO GE GT T
    assert lt == [0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1]
    assert eq == [1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1]
    assert unord == [0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1]


# -- the wasm emitters against the folds ------------------------------------------------------
F64_SPECIAL = [0, 1 << 63, INF, NINF, QNAN_A, QNAN_B, SNAN, 0x7FF8_0000_0000_0000, F64_DEFAULT_NAN, 1,
               0x000F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF, d(1.0), d(-1.0), d(0.5),
               d(2.5), d(-2.5), d(2.0**63), d(-(2.0**63)), d(2.0**31), d(-(2.0**31) - 1.0), d(2147483647.5),
               d(-2147483648.5), d(1e-310), d(3.4028235677973366e38), d(1.401298464324817e-45)]
F32_SPECIAL = [0, 1 << 31, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFFA0_1234,
               0x7F7F_FFFF, 0x0000_0001, 0x007F_FFFF, 0x0080_0000, f(1.0), f(-1.0), f(2.5), f(-0.5), f(3e9)]


@st.composite
def operand_bits(draw: st.DrawFn) -> int:
    """Random f64 or f32 patterns (f32 ones with random upper halves), NaN payloads, edges."""
    f32_upper = draw(st.integers(0, 2**32 - 1)) << 32
    return draw(st.one_of(
        st.integers(0, MASK64),
        st.sampled_from(F64_SPECIAL),
        st.sampled_from(F32_SPECIAL).map(lambda v: v | f32_upper),
        st.integers(0, 2**32 - 1).map(lambda v: v | f32_upper),
        st.floats(allow_nan=False, width=64).map(d),
        st.floats(-(2.0**64), 2.0**64).map(d),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: v & MASK64),
    ))


_FIRST_OUT = 3  # globals 0, 1, 2 are a, b and the rounding mode; the ops write globals 3, 4, ...


def _outputs() -> list[str]:
    """Output order: every non-setcond op, then one 16-bit predicate mask per setcond op."""
    names = [op.name for op in FLOAT_OPS if not op.name.startswith("setcond")]
    return names + [op.name for op in FLOAT_OPS if op.name.startswith("setcond")]


@functools.cache
def _all_float_ops_region() -> Region:
    b = IRBuilder()
    g = [GLOBALS[name] for name in GLOBAL_NAMES]
    a, c, mode = g[0], g[1], g[2]
    b.insn_start(0x1000)
    for i, name in enumerate(_outputs()):
        out = g[_FIRST_OUT + i]
        d_ = OPS[name]
        if name.startswith("setcond"):
            mask = b.const(0)
            for cond in FCond:
                mask = b.or_(mask, b.shli(b._binary(name, a, c, int(cond)), int(cond)))
            b.emit("mov_i64", out, mask)
        elif d_.n_in == 1:
            b.emit(name, out, a)
        else:
            b.emit(name, out, a, mode if name == "round_f64" else c)
    b.goto_tb(0x2000)
    tb: TranslationBlock = b.finish(0x1000, 4, [GuestInsn(0x1000, b"\x90", "insn")])
    return Region(tb.pc, {tb.pc: tb})


@functools.cache
def _compiled(optimize: bool) -> object:
    return compile_region(_all_float_ops_region(), optimize=optimize)


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness([])


def test_region_covers_every_float_op() -> None:
    assert {op.name for op in _all_float_ops_region().blocks[0x1000].ops} >= {op.name for op in FLOAT_OPS}


def _expected(name: str, a: int, b: int, mode: int) -> int:
    if name.startswith("setcond"):
        return sum(fold(name, a, b, int(cond)) << int(cond) for cond in FCond)
    if OPS[name].n_in == 1:
        return fold(name, a)
    return fold(name, a, mode if name == "round_f64" else b)


@pytest.mark.parametrize("optimize", [True, False])
@settings(max_examples=300, deadline=None)
@given(a=operand_bits(), b=operand_bits(), mode=st.integers(0, MASK64))
def test_wasm_emitters_match_folds(harness: Harness, optimize: bool, a: int, b: int, mode: int) -> None:
    values = [a, b, mode] + [0] * (len(GLOBAL_NAMES) - 3)
    out = harness.run(_compiled(optimize), values)
    got = {name: out.globals[_FIRST_OUT + i] for i, name in enumerate(_outputs())}
    want = {name: _expected(name, a, b, mode) for name in _outputs()}
    diffs = {name: (hex(got[name]), hex(want[name])) for name in want if got[name] != want[name]}
    assert not diffs, f"a={a:#x} b={b:#x} mode={mode & 3}: (wasm, fold) {diffs}"
