"""Lane ops: SSE2 integer arithmetic on the 64-bit halves of xmm registers.

The IR's values are i64, so an xmm register is two values and a packed
instruction is lifted as the same lane op on each half. Every op here treats
its i64 inputs as 8, 4 or 2 lanes of 8, 16 or 32 bits (lane 0 in the low
bits) and works lane by lane, except the few that say otherwise (pack,
unpack, sad, movmsk). Anything expressible with a handful of core ops
(64-bit lanes, whole-register shuffles with constant selectors, byte shifts)
has no op of its own: the front end composes it.

Names follow the ``<op><lane bits><s|u>_i64`` pattern: ``add8_i64`` adds
bytes, ``addsat16s_i64`` adds signed words with saturation. The ``fold`` of
each op is its exact semantics on unsigned 64-bit ints, used by the
interpreter and the constant folder.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from tcg2wasm.ir.opdef import MASK64, OpDef, PureFn

LaneFn = Callable[[int, int], int]


def lanes(value: int, bits: int) -> list[int]:
    """The ``64 // bits`` unsigned lanes of ``value``, lane 0 (lowest bits) first."""
    mask = (1 << bits) - 1
    return [(value >> pos) & mask for pos in range(0, 64, bits)]


def join_lanes(values: list[int], bits: int) -> int:
    """Inverse of :func:`lanes` (each value is truncated to ``bits``)."""
    mask = (1 << bits) - 1
    out = 0
    for i, v in enumerate(values):
        out |= (v & mask) << (i * bits)
    return out & MASK64


def signed(lane: int, bits: int) -> int:
    """An unsigned ``bits``-wide lane as two's complement."""
    return lane - (1 << bits) if lane >> (bits - 1) else lane


def saturate(value: int, bits: int, is_signed: bool) -> int:
    """Clamp ``value`` to the range of a ``bits``-wide lane (result unsigned, as stored)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1)
    return min(max(value, lo), hi) & ((1 << bits) - 1)


def _saturating(op: Callable[[int, int], int], bits: int, is_signed: bool) -> LaneFn:
    """``op`` on two lanes, saturated to the lane's range."""
    return lambda x, y: saturate(op(x, y), bits, is_signed)


def _lane_mask(test: Callable[[int, int], bool], bits: int) -> LaneFn:
    """All ones in a lane where ``test`` holds, else 0 (the SSE compares)."""
    return lambda x, y: _all_ones_if(test(x, y), bits)


def _lanewise(bits: int, fn: LaneFn, is_signed: bool = False) -> PureFn:
    """Fold applying ``fn`` to each pair of lanes (read signed when ``is_signed``)."""

    def fold(a: int, b: int) -> int:
        xs, ys = lanes(a, bits), lanes(b, bits)
        if is_signed:
            xs, ys = [signed(x, bits) for x in xs], [signed(y, bits) for y in ys]
        return join_lanes([fn(x, y) for x, y in zip(xs, ys, strict=True)], bits)

    return fold


def _all_ones_if(cond: bool, bits: int) -> int:
    return (1 << bits) - 1 if cond else 0


def _shift_fold(bits: int, kind: str) -> PureFn:
    """Lane shift by a 64-bit unsigned count; counts >= ``bits`` give 0 (shl/shr) or sign fill (sar)."""

    def fold(a: int, n: int) -> int:
        if kind == "sar":
            return join_lanes([signed(x, bits) >> min(n, bits - 1) for x in lanes(a, bits)], bits)
        if n >= bits:
            return 0
        if kind == "shl":
            return join_lanes([x << n for x in lanes(a, bits)], bits)
        return join_lanes([x >> n for x in lanes(a, bits)], bits)

    return fold


def _pack_fold(bits: int, is_signed: bool) -> PureFn:
    """Narrow the signed ``bits``-wide lanes of a then b to half width with saturation."""

    def fold(a: int, b: int) -> int:
        words = [signed(x, bits) for x in lanes(a, bits) + lanes(b, bits)]
        return join_lanes([saturate(w, bits // 2, is_signed) for w in words], bits // 2)

    return fold


def _unpack_fold(bits: int, high: bool) -> PureFn:
    """Interleave the lanes of the low (or high) 32 bits of a and b: a0 b0 a1 b1 ..."""

    def fold(a: int, b: int) -> int:
        half = 64 // bits // 2
        xs, ys = lanes(a, bits), lanes(b, bits)
        if high:
            xs, ys = xs[half:], ys[half:]
        return join_lanes([v for pair in zip(xs[:half], ys[:half], strict=True) for v in pair], bits)

    return fold


def _madd16s(a: int, b: int) -> int:
    xs = [signed(x, 16) for x in lanes(a, 16)]
    ys = [signed(y, 16) for y in lanes(b, 16)]
    return join_lanes([xs[0] * ys[0] + xs[1] * ys[1], xs[2] * ys[2] + xs[3] * ys[3]], 32)


def _sad8u(a: int, b: int) -> int:
    return sum(abs(x - y) for x, y in zip(lanes(a, 8), lanes(b, 8), strict=True))


def _movmsk8(a: int) -> int:
    return sum(((x >> 7) & 1) << i for i, x in enumerate(lanes(a, 8)))


def _arith_ops() -> list[OpDef]:
    ops: list[OpDef] = []
    for bits in (8, 16, 32):
        ops += [
            OpDef(f"add{bits}_i64", 1, 2, 0, fold=_lanewise(bits, lambda x, y: x + y),
                  doc=f"lane-wise {bits}-bit addition, wrapping (paddb/w/d)"),
            OpDef(f"sub{bits}_i64", 1, 2, 0, fold=_lanewise(bits, lambda x, y: x - y),
                  doc=f"lane-wise {bits}-bit subtraction, wrapping (psubb/w/d)"),
        ]
    for bits in (8, 16):
        for sign, is_signed in (("s", True), ("u", False)):
            ops += [
                OpDef(f"addsat{bits}{sign}_i64", 1, 2, 0,
                      fold=_lanewise(bits, _saturating(operator.add, bits, is_signed), is_signed),
                      doc=f"lane-wise {bits}-bit {'signed' if is_signed else 'unsigned'} saturating addition"),
                OpDef(f"subsat{bits}{sign}_i64", 1, 2, 0,
                      fold=_lanewise(bits, _saturating(operator.sub, bits, is_signed), is_signed),
                      doc=f"lane-wise {bits}-bit {'signed' if is_signed else 'unsigned'} saturating subtraction"),
            ]
    return ops


def _compare_ops() -> list[OpDef]:
    ops: list[OpDef] = []
    for bits in (8, 16, 32):
        ops += [
            OpDef(f"cmpeq{bits}_i64", 1, 2, 0, fold=_lanewise(bits, _lane_mask(operator.eq, bits)),
                  doc=f"each {bits}-bit lane all ones where a == b, else 0 (pcmpeq)"),
            OpDef(f"cmpgt{bits}s_i64", 1, 2, 0,
                  fold=_lanewise(bits, _lane_mask(operator.gt, bits), is_signed=True),
                  doc=f"each {bits}-bit lane all ones where a > b (signed), else 0 (pcmpgt)"),
        ]
    ops += [
        OpDef("min8u_i64", 1, 2, 0, fold=_lanewise(8, min), doc="lane-wise unsigned byte minimum (pminub)"),
        OpDef("max8u_i64", 1, 2, 0, fold=_lanewise(8, max), doc="lane-wise unsigned byte maximum (pmaxub)"),
        OpDef("min16s_i64", 1, 2, 0, fold=_lanewise(16, min, True), doc="lane-wise signed word minimum (pminsw)"),
        OpDef("max16s_i64", 1, 2, 0, fold=_lanewise(16, max, True), doc="lane-wise signed word maximum (pmaxsw)"),
    ]
    return ops


def _multiply_ops() -> list[OpDef]:
    return [
        OpDef("avg8u_i64", 1, 2, 0, fold=_lanewise(8, lambda x, y: (x + y + 1) >> 1),
              doc="lane-wise unsigned byte average rounding up: (a + b + 1) >> 1 (pavgb)"),
        OpDef("avg16u_i64", 1, 2, 0, fold=_lanewise(16, lambda x, y: (x + y + 1) >> 1),
              doc="lane-wise unsigned word average rounding up (pavgw)"),
        OpDef("mul16_i64", 1, 2, 0, fold=_lanewise(16, lambda x, y: x * y),
              doc="lane-wise word product, low 16 bits (pmullw)"),
        OpDef("mulhi16s_i64", 1, 2, 0, fold=_lanewise(16, lambda x, y: (x * y) >> 16, True),
              doc="lane-wise signed word product, high 16 bits (pmulhw)"),
        OpDef("mulhi16u_i64", 1, 2, 0, fold=_lanewise(16, lambda x, y: (x * y) >> 16),
              doc="lane-wise unsigned word product, high 16 bits (pmulhuw)"),
        OpDef("madd16s_i64", 1, 2, 0, fold=_madd16s,
              doc="two 32-bit lanes: a0*b0 + a1*b1 and a2*b2 + a3*b3 of the signed words, wrapping (pmaddwd)"),
        OpDef("sad8u_i64", 1, 2, 0, fold=_sad8u,
              doc="sum of the absolute differences of the 8 unsigned bytes, zero-extended (psadbw)"),
        OpDef("movmsk8_i64", 1, 1, 0, fold=_movmsk8,
              doc="8-bit mask of the bytes' sign bits, bit i from byte i (pmovmskb)"),
    ]


def _shift_ops() -> list[OpDef]:
    ops: list[OpDef] = []
    for bits in (16, 32):
        ops += [
            OpDef(f"shl{bits}_i64", 1, 2, 0, fold=_shift_fold(bits, "shl"),
                  doc=f"each {bits}-bit lane of a shifted left by b (unsigned 64-bit); b >= {bits} gives 0"),
            OpDef(f"shr{bits}_i64", 1, 2, 0, fold=_shift_fold(bits, "shr"),
                  doc=f"each {bits}-bit lane of a shifted right logically by b; b >= {bits} gives 0"),
            OpDef(f"sar{bits}_i64", 1, 2, 0, fold=_shift_fold(bits, "sar"),
                  doc=f"each {bits}-bit lane of a shifted right arithmetically by b; b >= {bits} fills with the sign"),
        ]
    return ops


def _shuffle_ops() -> list[OpDef]:
    return [
        OpDef("packss16_i64", 1, 2, 0, fold=_pack_fold(16, True),
              doc="bytes 0-3 = the 4 signed words of a, bytes 4-7 = those of b, each saturated to int8 (packsswb)"),
        OpDef("packus16_i64", 1, 2, 0, fold=_pack_fold(16, False),
              doc="as packss16_i64 but saturated to uint8 (packuswb)"),
        OpDef("packss32_i64", 1, 2, 0, fold=_pack_fold(32, True),
              doc="words 0-1 = the 2 signed dwords of a, words 2-3 = those of b, saturated to int16 (packssdw)"),
        OpDef("unpacklo8_i64", 1, 2, 0, fold=_unpack_fold(8, False),
              doc="bytes a0 b0 a1 b1 a2 b2 a3 b3 (one half of punpcklbw)"),
        OpDef("unpackhi8_i64", 1, 2, 0, fold=_unpack_fold(8, True),
              doc="bytes a4 b4 a5 b5 a6 b6 a7 b7"),
        OpDef("unpacklo16_i64", 1, 2, 0, fold=_unpack_fold(16, False), doc="words a0 b0 a1 b1"),
        OpDef("unpackhi16_i64", 1, 2, 0, fold=_unpack_fold(16, True), doc="words a2 b2 a3 b3"),
    ]


VEC_OPS: tuple[OpDef, ...] = tuple(_arith_ops() + _compare_ops() + _multiply_ops() + _shift_ops() + _shuffle_ops())
