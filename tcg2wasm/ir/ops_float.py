"""Floating-point ops: IEEE binary64 / binary32 with x86 SSE semantics built in.

Values are i64 like every IR value: an ``_f64`` operand is the 64 bits of a
double, an ``_f32`` operand the low 32 bits of a float (upper bits ignored;
``_f32`` results are zero-extended). The x86 rules are part of each op, so a
lifter needs no extra NaN-fixing ops and every backend must produce exactly
these bits (wasm's own NaN results are not deterministic):

* a NaN operand propagates: the *first* NaN operand in argument order, quieted
  (for SSE two-operand forms the first operand is the destination);
* an invalid operation on non-NaN operands (inf - inf, 0 * inf, 0 / 0,
  inf / inf, sqrt of a negative number) gives the default NaN
  ``0xFFF8000000000000`` / ``0xFFC00000``;
* rounding is round-to-nearest-even, no flush-to-zero, no denormals-are-zero
  (the front end guards translated code on MXCSR; see docs/sse.md). Only
  ``round_f64`` takes a rounding mode, as a run-time input.

No op sets MXCSR exception flags. The folds below are exact: binary64 through
Python floats (NaNs are handled on the bits before any arithmetic, since Python
floats do not keep NaN payloads), binary32 as binary64 then rounded once to
binary32, which is exact for + - * / sqrt because 53 >= 2 * 24 + 2.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from enum import IntEnum

from tcg2wasm.ir.opdef import MASK64, OpDef, to_signed

M32 = 0xFFFF_FFFF
F64_SIGN = 1 << 63
F64_EXP = 0x7FF0_0000_0000_0000
F64_QUIET = 1 << 51
F64_DEFAULT_NAN = 0xFFF8_0000_0000_0000
F32_SIGN = 1 << 31
F32_EXP = 0x7F80_0000
F32_QUIET = 1 << 22
F32_DEFAULT_NAN = 0xFFC0_0000
INT64_INDEFINITE = 1 << 63
INT32_INDEFINITE = 1 << 31
#: Smallest magnitude that rounds to infinity in binary32 (halfway between FLT_MAX and 2**128).
_F32_OVERFLOW = (2.0 - 2.0**-24) * 2.0**127


class FCond(IntEnum):
    """Float comparison predicates, numbered as x86's cmpps/vcmpps imm8 (bits 0-3).

    Numbers 0..7 are the SSE ``cmpss/sd/ps/pd`` predicates; 8..15 the AVX extension
    (``EQ_UQ`` and ``NGE`` give ucomisd's ZF and CF directly). "Unordered" means one
    operand is a NaN; no predicate signals (the IR has no exception flags).
    """

    EQ = 0  # ordered and equal
    LT = 1
    LE = 2
    UNORD = 3
    NEQ = 4  # unordered or not equal
    NLT = 5  # unordered or a >= b
    NLE = 6  # unordered or a > b
    ORD = 7
    EQ_U = 8  # unordered or equal
    NGE = 9  # unordered or a < b
    NGT = 10  # unordered or a <= b
    FALSE = 11
    NEQ_O = 12  # ordered and not equal
    GE = 13
    GT = 14
    TRUE = 15


def eval_fcond(cond: int, a: float, b: float) -> bool:
    """Evaluate predicate ``cond`` (an :class:`FCond`) on two Python floats."""
    unordered = math.isnan(a) or math.isnan(b)
    match FCond(cond):
        case FCond.EQ:
            return a == b
        case FCond.LT:
            return a < b
        case FCond.LE:
            return a <= b
        case FCond.UNORD:
            return unordered
        case FCond.NEQ:
            return a != b  # true when unordered
        case FCond.NLT:
            return not a < b
        case FCond.NLE:
            return not a <= b
        case FCond.ORD:
            return not unordered
        case FCond.EQ_U:
            return unordered or a == b
        case FCond.NGE:
            return not a >= b
        case FCond.NGT:
            return not a > b
        case FCond.FALSE:
            return False
        case FCond.NEQ_O:
            return a < b or a > b
        case FCond.GE:
            return a >= b
        case FCond.GT:
            return a > b
        case FCond.TRUE:
            return True
    raise ValueError(f"bad float condition {cond!r}")


# -- bits <-> Python floats ------------------------------------------------------------
def f64_value(bits: int) -> float:
    return struct.unpack("<d", (bits & MASK64).to_bytes(8, "little"))[0]


def f64_bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def f32_value(bits: int) -> float:
    """The binary32 in the low 32 bits of ``bits``, exactly, as a Python float (not for NaNs)."""
    return struct.unpack("<f", (bits & M32).to_bytes(4, "little"))[0]


def f32_bits(value: float) -> int:
    """Round a (non-NaN) Python float to binary32, to nearest even; overflow gives infinity."""
    if abs(value) >= _F32_OVERFLOW:
        return (F32_SIGN if value < 0 else 0) | F32_EXP
    return int.from_bytes(struct.pack("<f", value), "little")


def f64_is_nan(bits: int) -> bool:
    return bits & ~F64_SIGN & MASK64 > F64_EXP


def f32_is_nan(bits: int) -> bool:
    return bits & (M32 >> 1) > F32_EXP


class _Format:
    """What the generic folds need to know about one binary format."""

    def __init__(self, mask: int, is_nan: Callable[[int], bool], quiet: int, default_nan: int,
                 value: Callable[[int], float], bits: Callable[[float], int]) -> None:
        self.mask, self.is_nan, self.quiet, self.default_nan = mask, is_nan, quiet, default_nan
        self.value, self.bits = value, bits


F64 = _Format(MASK64, f64_is_nan, F64_QUIET, F64_DEFAULT_NAN, f64_value, f64_bits)
F32 = _Format(M32, f32_is_nan, F32_QUIET, F32_DEFAULT_NAN, f32_value, f32_bits)


# -- arithmetic ------------------------------------------------------------------------
def _divide(a: float, b: float) -> float:
    """IEEE division on Python floats (which raise on a zero divisor)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _sqrt(a: float) -> float:
    return math.nan if a < 0.0 else math.sqrt(a)  # sqrt(-0.0) is -0.0


_ARITH: dict[str, Callable[[float, float], float]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": _divide,
}


def _binary_fold(fmt: _Format, fn: Callable[[float, float], float]) -> Callable[[int, int], int]:
    def fold(a: int, b: int) -> int:
        a, b = a & fmt.mask, b & fmt.mask
        if fmt.is_nan(a):
            return a | fmt.quiet
        if fmt.is_nan(b):
            return b | fmt.quiet
        result = fn(fmt.value(a), fmt.value(b))
        return fmt.default_nan if math.isnan(result) else fmt.bits(result)

    return fold


def _sqrt_fold(fmt: _Format) -> Callable[[int], int]:
    def fold(a: int) -> int:
        a &= fmt.mask
        if fmt.is_nan(a):
            return a | fmt.quiet
        result = _sqrt(fmt.value(a))
        return fmt.default_nan if math.isnan(result) else fmt.bits(result)

    return fold


def _minmax_fold(fmt: _Format, want_min: bool) -> Callable[[int, int], int]:
    """x86 minsd/maxsd: ``a < b ? a : b`` (resp. ``a > b``); NaNs and equal values give b, unchanged."""

    def fold(a: int, b: int) -> int:
        a, b = a & fmt.mask, b & fmt.mask
        if fmt.is_nan(a) or fmt.is_nan(b):
            return b
        x, y = fmt.value(a), fmt.value(b)
        return a if (x < y if want_min else x > y) else b

    return fold


def _setcond_fold(fmt: _Format) -> Callable[[int, int, int], int]:
    def fold(a: int, b: int, cond: int) -> int:
        a, b = a & fmt.mask, b & fmt.mask
        x = math.nan if fmt.is_nan(a) else fmt.value(a)
        y = math.nan if fmt.is_nan(b) else fmt.value(b)
        return int(eval_fcond(cond, x, y))

    return fold


# -- conversions -----------------------------------------------------------------------
def _f64_from_f32(a: int) -> int:
    """Exact widening; a NaN keeps sign and payload (shifted up) and is quieted."""
    a &= M32
    if f32_is_nan(a):
        return ((a & F32_SIGN) << 32) | F64_EXP | F64_QUIET | ((a & 0x7F_FFFF) << 29)
    return f64_bits(f32_value(a))


def _f32_from_f64(a: int) -> int:
    """Narrowing rounded to nearest; a NaN keeps sign and the top payload bits and is quieted."""
    if f64_is_nan(a):
        return ((a >> 32) & F32_SIGN) | F32_EXP | F32_QUIET | ((a >> 29) & 0x3F_FFFF)
    return f32_bits(f64_value(a))


def _f64_from_i64(a: int) -> int:
    return f64_bits(float(to_signed(a)))  # int -> float conversion rounds to nearest even


def _f32_from_i64(a: int) -> int:
    """Signed int64 -> binary32 rounded once (going through binary64 would round twice)."""
    n = to_signed(a)
    magnitude = abs(n)
    extra = magnitude.bit_length() - 24
    if extra > 0:  # keep 24 significant bits, rounding half to even
        kept, rest = magnitude >> extra, magnitude & ((1 << extra) - 1)
        half = 1 << (extra - 1)
        if rest > half or (rest == half and kept & 1):
            kept += 1
        magnitude = kept << extra
    return f32_bits(float(-magnitude if n < 0 else magnitude))


def _round_f64(a: int, mode: int) -> int:
    """Round to an integral binary64 by MXCSR.RC ``mode & 3``: 0 nearest even, 1 down, 2 up, 3 toward zero."""
    if f64_is_nan(a):
        return a | F64_QUIET
    x = f64_value(a)
    if math.isinf(x) or x == 0.0 or abs(x) >= 2.0**52:
        return a
    rounders: tuple[Callable[[float], int], ...] = (round, math.floor, math.ceil, math.trunc)
    result = float(rounders[mode & 3](x))
    return f64_bits(math.copysign(result, x))  # an integral zero keeps the operand's sign


def _int_from_f64(bits: int) -> Callable[[int], int]:
    """Truncating binary64 -> signed int conversion; NaN and out of range give the integer indefinite."""
    low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1)
    indefinite, mask = 1 << (bits - 1), (1 << bits) - 1

    def fold(a: int) -> int:
        if f64_is_nan(a):
            return indefinite
        x = f64_value(a)
        above_low = x > low - 1.0 if bits < 53 else x >= low  # int32: (-2**31 - 1, 2**31) truncates into range
        if not (above_low and x < high):
            return indefinite
        return math.trunc(x) & mask

    return fold


def _float_ops() -> tuple[OpDef, ...]:
    defs: list[OpDef] = []
    for suffix, fmt in (("f64", F64), ("f32", F32)):
        for name, fn in _ARITH.items():
            defs.append(OpDef(f"{name}_{suffix}", 1, 2, 0, fold=_binary_fold(fmt, fn),
                              doc=f"o = a {name} b, x86 NaN rules"))
        defs.append(OpDef(f"sqrt_{suffix}", 1, 1, 0, fold=_sqrt_fold(fmt), doc="o = sqrt(a), x86 NaN rules"))
        defs.append(OpDef(f"min_{suffix}", 1, 2, 0, fold=_minmax_fold(fmt, True), doc="o = a < b ? a : b"))
        defs.append(OpDef(f"max_{suffix}", 1, 2, 0, fold=_minmax_fold(fmt, False), doc="o = a > b ? a : b"))
        defs.append(OpDef(f"setcond_{suffix}", 1, 2, 1, fold=_setcond_fold(fmt),
                          doc="o = fcond(a, b) ? 1 : 0; $fcond an FCond"))
    defs += [
        OpDef("cvt_f64_from_f32", 1, 1, 0, fold=_f64_from_f32, doc="exact widening; NaN quieted, payload kept"),
        OpDef("cvt_f32_from_f64", 1, 1, 0, fold=_f32_from_f64, doc="narrowing to nearest; NaN quieted, payload cut"),
        OpDef("cvt_f64_from_i64", 1, 1, 0, fold=_f64_from_i64, doc="signed int64 -> binary64, to nearest"),
        OpDef("cvt_f32_from_i64", 1, 1, 0, fold=_f32_from_i64, doc="signed int64 -> binary32, to nearest"),
        OpDef("cvt_i64_from_f64", 1, 1, 0, fold=_int_from_f64(64),
              doc="truncate to int64; NaN or out of range -> 0x8000000000000000"),
        OpDef("cvt_i32_from_f64", 1, 1, 0, fold=_int_from_f64(32),
              doc="truncate to int32, zero-extended; NaN or out of range -> 0x80000000"),
        OpDef("round_f64", 1, 2, 0, fold=_round_f64,
              doc="round a to an integral value by rounding mode b & 3 (MXCSR.RC encoding)"),
    ]
    return tuple(defs)


FLOAT_OPS: tuple[OpDef, ...] = _float_ops()

__all__ = ["F32_DEFAULT_NAN", "F64_DEFAULT_NAN", "FLOAT_OPS", "INT32_INDEFINITE", "INT64_INDEFINITE", "FCond",
           "eval_fcond", "f32_bits", "f32_is_nan", "f32_value", "f64_bits", "f64_is_nan", "f64_value"]
