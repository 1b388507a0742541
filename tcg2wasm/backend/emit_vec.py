"""Emitters of the lane ops (``tcg2wasm.ir.ops_vec``) with wasm SIMD.

Each i64 input is splatted into a v128 (``i64x2.splat``), the matching
``i8x16``/``i16x8``/``i32x4`` instruction does the lane work, and lane 0 of
the result (``i64x2.extract_lane 0``) is the op's value. The upper lane just
computes the same thing again, which costs nothing extra.

Wasm shifts take the count modulo the lane width where the op table wants 0
or sign fill for counts >= the width; the emitters clamp the count first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tcg2wasm.backend.bn import I32, I64, Expr, ffi, lib
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.ir.core import Op

if TYPE_CHECKING:
    from tcg2wasm.backend.function import FunctionBuilder

Emitter = Callable[["FunctionBuilder", Op], None]
M32 = 0xFFFF_FFFF


class V:
    """Binaryen SIMD opcode numbers used here, fetched once."""

    SPLAT64 = lib.BinaryenSplatVecI64x2()
    EXTRACT64 = lib.BinaryenExtractLaneVecI64x2()
    REPLACE64 = lib.BinaryenReplaceLaneVecI64x2()
    BITMASK8 = lib.BinaryenBitmaskVecI8x16()
    PAIRWISE8U = lib.BinaryenExtAddPairwiseUVecI8x16ToI16x8()
    PAIRWISE16U = lib.BinaryenExtAddPairwiseUVecI16x8ToI32x4()
    MIN8U = lib.BinaryenMinUVecI8x16()
    MAX8U = lib.BinaryenMaxUVecI8x16()


# -- v128 expression helpers ------------------------------------------------------------
def _splat(fb: FunctionBuilder, local: int) -> Expr:
    return fb.e.un(V.SPLAT64, fb.e.get(local))


def _pair(fb: FunctionBuilder, lo: int, hi: int) -> Expr:
    """v128 whose i64 lanes are (local lo, local hi)."""
    return lib.BinaryenSIMDReplace(fb.e.m, V.REPLACE64, _splat(fb, lo), 1, fb.e.get(hi))


def _lane0(fb: FunctionBuilder, vec: Expr) -> Expr:
    return lib.BinaryenSIMDExtract(fb.e.m, V.EXTRACT64, vec, 0)


def _shuffle(fb: FunctionBuilder, left: Expr, right: Expr, first_bytes: Sequence[int]) -> Expr:
    """i8x16.shuffle whose result bytes 0..7 come from ``first_bytes`` (indices into left ++ right)."""
    mask = ffi.new("uint8_t[16]", list(first_bytes) + list(first_bytes))
    return lib.BinaryenSIMDShuffle(fb.e.m, left, right, mask)


def _set(fb: FunctionBuilder, op: Op, value: Expr) -> None:
    fb.stmt(fb.e.set(op.args[0].index, value))


# -- emitter factories ------------------------------------------------------------------------
def _lanewise(simd_op: int) -> Emitter:
    """o = lane 0 of simd_op(splat a, splat b)."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, b = op.args
        _set(fb, op, _lane0(fb, fb.e.bin(simd_op, _splat(fb, a.index), _splat(fb, b.index))))

    return emit


def _mul_high(extmul_low: int) -> Emitter:
    """pmulhw/pmulhuw: the 4 full products as i32x4, then their high 16 bits gathered."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, b = op.args
        products = fb.e.bin(extmul_low, _splat(fb, a.index), _splat(fb, b.index))
        # the right operand is unused by the indices; it must be a separate tree (Binaryen nodes are not shared)
        high_halves = _shuffle(fb, products, _splat(fb, a.index), [2, 3, 6, 7, 10, 11, 14, 15])
        _set(fb, op, _lane0(fb, high_halves))

    return emit


def _shift(shift_op: int, bits: int, arithmetic: bool) -> Emitter:
    """Lane shift by an i64 count; counts >= bits give 0 (logical) or a shift by bits - 1 (arithmetic)."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, n = op.args
        e = fb.e
        in_range = e.bin(W.LTU64, e.get(n.index), e.c64(bits))
        count = e.un(W.WRAP64, e.get(n.index))
        if arithmetic:
            count = lib.BinaryenSelect(e.m, in_range, count, e.c32(bits - 1), I32)
            _set(fb, op, _lane0(fb, lib.BinaryenSIMDShift(e.m, shift_op, _splat(fb, a.index), count)))
            return
        shifted = _lane0(fb, lib.BinaryenSIMDShift(e.m, shift_op, _splat(fb, a.index), count))
        _set(fb, op, lib.BinaryenSelect(e.m, in_range, shifted, e.c64(0), I64))

    return emit


def _pack(narrow_op: int) -> Emitter:
    """Narrowing with saturation of the lanes of (a, b) into one i64."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, b = op.args
        both = _pair(fb, a.index, b.index)
        narrowed = fb.e.bin(narrow_op, both, _pair(fb, a.index, b.index))
        _set(fb, op, _lane0(fb, narrowed))

    return emit


def _unpack(bits: int, high: bool) -> Emitter:
    """Interleave lanes of a (bytes 0..15 of the shuffle) and b (bytes 16..31)."""
    size = bits // 8
    first = 4 if high else 0
    order: list[int] = []
    for lane_start in range(first, first + 4, size):
        order += [lane_start + k for k in range(size)]
        order += [16 + lane_start + k for k in range(size)]

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, b = op.args
        _set(fb, op, _lane0(fb, _shuffle(fb, _splat(fb, a.index), _splat(fb, b.index), order)))

    return emit


def _madd16s(fb: FunctionBuilder, op: Op) -> None:
    _, a, b = op.args
    dot = fb.e.bin(lib.BinaryenDotSVecI16x8ToVecI32x4(), _splat(fb, a.index), _splat(fb, b.index))
    _set(fb, op, _lane0(fb, dot))


def _sad8u(fb: FunctionBuilder, op: Op) -> None:
    """|a - b| per byte as max - min, summed pairwise to two dwords, then the dwords added."""
    _, a, b = op.args
    e = fb.e
    diff = e.bin(lib.BinaryenSubVecI8x16(), e.bin(V.MAX8U, _splat(fb, a.index), _splat(fb, b.index)),
                 e.bin(V.MIN8U, _splat(fb, a.index), _splat(fb, b.index)))
    dwords = e.un(V.PAIRWISE16U, e.un(V.PAIRWISE8U, diff))
    s = fb.scratch[0]
    fb.stmt(e.set(s, _lane0(fb, dwords)))
    _set(fb, op, e.bin(W.ADD64, e.bin(W.AND64, e.get(s), e.c64(M32)), e.bin(W.SHRU64, e.get(s), e.c64(32))))


def _movmsk8(fb: FunctionBuilder, op: Op) -> None:
    _, a = op.args
    e = fb.e
    mask = e.bin(W.AND32, e.un(V.BITMASK8, _splat(fb, a.index)), e.c32(0xFF))
    _set(fb, op, e.un(W.EXTU32, mask))


def _lanewise_table() -> dict[str, Emitter]:
    simd = {
        "add8_i64": "BinaryenAddVecI8x16", "add16_i64": "BinaryenAddVecI16x8", "add32_i64": "BinaryenAddVecI32x4",
        "sub8_i64": "BinaryenSubVecI8x16", "sub16_i64": "BinaryenSubVecI16x8", "sub32_i64": "BinaryenSubVecI32x4",
        "addsat8s_i64": "BinaryenAddSatSVecI8x16", "addsat8u_i64": "BinaryenAddSatUVecI8x16",
        "addsat16s_i64": "BinaryenAddSatSVecI16x8", "addsat16u_i64": "BinaryenAddSatUVecI16x8",
        "subsat8s_i64": "BinaryenSubSatSVecI8x16", "subsat8u_i64": "BinaryenSubSatUVecI8x16",
        "subsat16s_i64": "BinaryenSubSatSVecI16x8", "subsat16u_i64": "BinaryenSubSatUVecI16x8",
        "cmpeq8_i64": "BinaryenEqVecI8x16", "cmpeq16_i64": "BinaryenEqVecI16x8", "cmpeq32_i64": "BinaryenEqVecI32x4",
        "cmpgt8s_i64": "BinaryenGtSVecI8x16", "cmpgt16s_i64": "BinaryenGtSVecI16x8",
        "cmpgt32s_i64": "BinaryenGtSVecI32x4",
        "min8u_i64": "BinaryenMinUVecI8x16", "max8u_i64": "BinaryenMaxUVecI8x16",
        "min16s_i64": "BinaryenMinSVecI16x8", "max16s_i64": "BinaryenMaxSVecI16x8",
        "avg8u_i64": "BinaryenAvgrUVecI8x16", "avg16u_i64": "BinaryenAvgrUVecI16x8",
        "mul16_i64": "BinaryenMulVecI16x8",
    }
    return {name: _lanewise(getattr(lib, fn)()) for name, fn in simd.items()}


def _shift_table() -> dict[str, Emitter]:
    table: dict[str, Emitter] = {}
    for bits, lanes in ((16, "I16x8"), (32, "I32x4")):
        table[f"shl{bits}_i64"] = _shift(getattr(lib, f"BinaryenShlVec{lanes}")(), bits, False)
        table[f"shr{bits}_i64"] = _shift(getattr(lib, f"BinaryenShrUVec{lanes}")(), bits, False)
        table[f"sar{bits}_i64"] = _shift(getattr(lib, f"BinaryenShrSVec{lanes}")(), bits, True)
    return table


VEC_EMITTERS: dict[str, Emitter] = {
    **_lanewise_table(),
    **_shift_table(),
    "mulhi16s_i64": _mul_high(lib.BinaryenExtMulLowSVecI32x4()),  # i32x4.extmul_low_i16x8_s
    "mulhi16u_i64": _mul_high(lib.BinaryenExtMulLowUVecI32x4()),
    "madd16s_i64": _madd16s,
    "sad8u_i64": _sad8u,
    "movmsk8_i64": _movmsk8,
    "packss16_i64": _pack(lib.BinaryenNarrowSVecI16x8ToVecI8x16()),
    "packus16_i64": _pack(lib.BinaryenNarrowUVecI16x8ToVecI8x16()),
    "packss32_i64": _pack(lib.BinaryenNarrowSVecI32x4ToVecI16x8()),
    "unpacklo8_i64": _unpack(8, False),
    "unpackhi8_i64": _unpack(8, True),
    "unpacklo16_i64": _unpack(16, False),
    "unpackhi16_i64": _unpack(16, True),
}
