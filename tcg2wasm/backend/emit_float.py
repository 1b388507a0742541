"""Wasm emitters of the floating-point ops (``tcg2wasm/ir/ops_float.py``).

IR values stay i64 locals holding IEEE bits; each emitter reinterprets them as
f64 (or wraps and reinterprets as f32), computes with wasm's float
instructions, and reinterprets back. Wasm leaves the bits of a NaN *result*
non-deterministic, so every op that can produce a NaN ends in an explicit
select chain on the integer bits: first NaN operand quieted, else the default
NaN when the result is a NaN (an invalid operation), else the result. Ops that
only select an operand (min, max) or compare never need the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tcg2wasm.backend.bn import I64, Expr, lib
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.ir.core import Op
from tcg2wasm.ir.ops_float import (
    F32_DEFAULT_NAN,
    F32_EXP,
    F32_QUIET,
    F64_DEFAULT_NAN,
    F64_EXP,
    F64_QUIET,
    INT32_INDEFINITE,
    INT64_INDEFINITE,
    FCond,
)

if TYPE_CHECKING:
    from tcg2wasm.backend.function import FunctionBuilder

Emitter = Callable[["FunctionBuilder", Op], None]
M32 = 0xFFFF_FFFF
F32 = lib.BinaryenTypeFloat32()
F64 = lib.BinaryenTypeFloat64()


class FW:
    """Binaryen opcodes of the float instructions used here, fetched once."""

    F64_FROM_BITS = lib.BinaryenReinterpretInt64()
    BITS_FROM_F64 = lib.BinaryenReinterpretFloat64()
    F32_FROM_BITS = lib.BinaryenReinterpretInt32()
    BITS_FROM_F32 = lib.BinaryenReinterpretFloat32()
    PROMOTE = lib.BinaryenPromoteFloat32()
    DEMOTE = lib.BinaryenDemoteFloat64()
    F64_FROM_S64 = lib.BinaryenConvertSInt64ToFloat64()
    F32_FROM_S64 = lib.BinaryenConvertSInt64ToFloat32()
    S64_SAT_FROM_F64 = lib.BinaryenTruncSatSFloat64ToInt64()
    S32_SAT_FROM_F64 = lib.BinaryenTruncSatSFloat64ToInt32()
    NEAREST = lib.BinaryenNearestFloat64()
    FLOOR = lib.BinaryenFloorFloat64()
    CEIL = lib.BinaryenCeilFloat64()
    TRUNC = lib.BinaryenTruncFloat64()
    AND32 = lib.BinaryenAndInt32()
    OR32 = lib.BinaryenOrInt32()
    GTU64 = lib.BinaryenGtUInt64()
    ARITH = {
        "f64": {"add": lib.BinaryenAddFloat64(), "sub": lib.BinaryenSubFloat64(), "mul": lib.BinaryenMulFloat64(),
                "div": lib.BinaryenDivFloat64(), "sqrt": lib.BinaryenSqrtFloat64()},
        "f32": {"add": lib.BinaryenAddFloat32(), "sub": lib.BinaryenSubFloat32(), "mul": lib.BinaryenMulFloat32(),
                "div": lib.BinaryenDivFloat32(), "sqrt": lib.BinaryenSqrtFloat32()},
    }
    CMP = {
        "f64": {"eq": lib.BinaryenEqFloat64(), "ne": lib.BinaryenNeFloat64(), "lt": lib.BinaryenLtFloat64(),
                "le": lib.BinaryenLeFloat64(), "gt": lib.BinaryenGtFloat64(), "ge": lib.BinaryenGeFloat64()},
        "f32": {"eq": lib.BinaryenEqFloat32(), "ne": lib.BinaryenNeFloat32(), "lt": lib.BinaryenLtFloat32(),
                "le": lib.BinaryenLeFloat32(), "gt": lib.BinaryenGtFloat32(), "ge": lib.BinaryenGeFloat32()},
    }


class _Fmt:
    """Per-format constants and the bits <-> float expression builders."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        wide = suffix == "f64"
        self.mask = (1 << 64) - 1 if wide else M32
        self.exp, self.quiet = (F64_EXP, F64_QUIET) if wide else (F32_EXP, F32_QUIET)
        self.default_nan = F64_DEFAULT_NAN if wide else F32_DEFAULT_NAN
        self.arith, self.cmp = FW.ARITH[suffix], FW.CMP[suffix]

    def value(self, fb: FunctionBuilder, local: int) -> Expr:
        """The float held in i64 local ``local``."""
        e = fb.e
        if self.suffix == "f64":
            return e.un(FW.F64_FROM_BITS, e.get(local))
        return e.un(FW.F32_FROM_BITS, e.un(W.WRAP64, e.get(local)))

    def bits(self, fb: FunctionBuilder, value: Expr) -> Expr:
        """i64 bits of a float expression (binary32 zero-extended)."""
        e = fb.e
        if self.suffix == "f64":
            return e.un(FW.BITS_FROM_F64, value)
        return e.un(W.EXTU32, e.un(FW.BITS_FROM_F32, value))

    def operand(self, fb: FunctionBuilder, local: int) -> Expr:
        """The operand's own bits (f32: the low 32 bits)."""
        e = fb.e
        return e.get(local) if self.suffix == "f64" else e.bin(W.AND64, e.get(local), e.c64(M32))

    def is_nan(self, fb: FunctionBuilder, local: int) -> Expr:
        """i32: the operand in ``local`` is a NaN (magnitude bits above the infinity pattern)."""
        e = fb.e
        magnitude = e.bin(W.AND64, e.get(local), e.c64(self.mask >> 1))
        return e.bin(FW.GTU64, magnitude, e.c64(self.exp))

    def quieted(self, fb: FunctionBuilder, local: int) -> Expr:
        e = fb.e
        return e.bin(W.OR64, self.operand(fb, local), e.c64(self.quiet))


FORMATS = {"f64": _Fmt("f64"), "f32": _Fmt("f32")}


def _select(fb: FunctionBuilder, cond: Expr, if_true: Expr, if_false: Expr, type_: int = I64) -> Expr:
    return lib.BinaryenSelect(fb.e.m, cond, if_true, if_false, type_)


def _fconst(fb: FunctionBuilder, value: float) -> Expr:
    return lib.BinaryenConst(fb.e.m, lib.BinaryenLiteralFloat64(value))


def _nan_fixed(fb: FunctionBuilder, fmt: _Fmt, operands: tuple[int, ...], result: int) -> Expr:
    """x86 NaN rules over a raw result in local ``result``: first NaN operand quieted, else default NaN."""
    e = fb.e
    value = _select(fb, fmt.is_nan(fb, result), e.c64(fmt.default_nan), e.get(result))
    for local in reversed(operands):
        value = _select(fb, fmt.is_nan(fb, local), fmt.quieted(fb, local), value)
    return value


# -- arithmetic ------------------------------------------------------------------------
def _arith(suffix: str, name: str) -> Emitter:
    fmt = FORMATS[suffix]
    wasm_op = fmt.arith[name]

    def emit(fb: FunctionBuilder, op: Op) -> None:
        e = fb.e
        out, *ins = op.args
        operands = tuple(t.index for t in ins)
        raw = fb.scratch[0]
        if len(operands) == 2:
            value = e.bin(wasm_op, fmt.value(fb, operands[0]), fmt.value(fb, operands[1]))
        else:
            value = e.un(wasm_op, fmt.value(fb, operands[0]))
        fb.stmt(e.set(raw, fmt.bits(fb, value)))
        fb.stmt(e.set(out.index, _nan_fixed(fb, fmt, operands, raw)))

    return emit


def _minmax(suffix: str, want_min: bool) -> Emitter:
    """``a < b ? a : b`` (``>`` for max) choosing operand bits, so NaNs and zeros need no fix."""
    fmt = FORMATS[suffix]
    relation = fmt.cmp["lt" if want_min else "gt"]

    def emit(fb: FunctionBuilder, op: Op) -> None:
        out, a, b = op.args
        e = fb.e
        chosen = _select(fb, e.bin(relation, fmt.value(fb, a.index), fmt.value(fb, b.index)),
                         fmt.operand(fb, a.index), fmt.operand(fb, b.index))
        fb.stmt(e.set(out.index, chosen))

    return emit


def _fcond(fb: FunctionBuilder, fmt: _Fmt, cond: int, a: int, b: int) -> Expr:
    """i32 truth value of float predicate ``cond`` on locals ``a`` and ``b``."""
    e = fb.e

    def rel(name: str) -> Expr:
        return e.bin(fmt.cmp[name], fmt.value(fb, a), fmt.value(fb, b))

    def negated(x: Expr) -> Expr:
        return e.un(W.EQZ32, x)

    def unordered() -> Expr:
        return e.bin(FW.OR32, fmt.is_nan(fb, a), fmt.is_nan(fb, b))

    builders: dict[FCond, Callable[[], Expr]] = {
        FCond.EQ: lambda: rel("eq"),
        FCond.LT: lambda: rel("lt"),
        FCond.LE: lambda: rel("le"),
        FCond.UNORD: unordered,
        FCond.NEQ: lambda: rel("ne"),  # wasm's ne is true on unordered operands
        FCond.NLT: lambda: negated(rel("lt")),
        FCond.NLE: lambda: negated(rel("le")),
        FCond.ORD: lambda: negated(unordered()),
        FCond.EQ_U: lambda: e.bin(FW.OR32, rel("eq"), unordered()),
        FCond.NGE: lambda: negated(rel("ge")),
        FCond.NGT: lambda: negated(rel("gt")),
        FCond.FALSE: lambda: e.c32(0),
        FCond.NEQ_O: lambda: e.bin(FW.OR32, rel("lt"), rel("gt")),
        FCond.GE: lambda: rel("ge"),
        FCond.GT: lambda: rel("gt"),
        FCond.TRUE: lambda: e.c32(1),
    }
    try:
        return builders[FCond(cond)]()
    except ValueError:
        raise ValueError(f"setcond_{fmt.suffix}: bad float condition {cond!r}") from None


def _setcond(suffix: str) -> Emitter:
    fmt = FORMATS[suffix]

    def emit(fb: FunctionBuilder, op: Op) -> None:
        out, a, b, cond = op.args
        e = fb.e
        fb.stmt(e.set(out.index, e.un(W.EXTU32, _fcond(fb, fmt, cond, a.index, b.index))))

    return emit


# -- conversions -----------------------------------------------------------------------
def _f64_from_f32(fb: FunctionBuilder, op: Op) -> None:
    out, a = op.args
    e = fb.e
    f32, f64 = FORMATS["f32"], FORMATS["f64"]
    widened = f64.bits(fb, e.un(FW.PROMOTE, f32.value(fb, a.index)))
    sign = e.bin(W.SHL64, e.bin(W.AND64, e.get(a.index), e.c64(1 << 31)), e.c64(32))
    payload = e.bin(W.SHL64, e.bin(W.AND64, e.get(a.index), e.c64(0x7F_FFFF)), e.c64(29))
    nan = e.bin(W.OR64, e.bin(W.OR64, sign, payload), e.c64(F64_EXP | F64_QUIET))
    fb.stmt(e.set(out.index, _select(fb, f32.is_nan(fb, a.index), nan, widened)))


def _f32_from_f64(fb: FunctionBuilder, op: Op) -> None:
    out, a = op.args
    e = fb.e
    f32, f64 = FORMATS["f32"], FORMATS["f64"]
    narrowed = f32.bits(fb, e.un(FW.DEMOTE, f64.value(fb, a.index)))
    sign = e.bin(W.AND64, e.bin(W.SHRU64, e.get(a.index), e.c64(32)), e.c64(1 << 31))
    payload = e.bin(W.AND64, e.bin(W.SHRU64, e.get(a.index), e.c64(29)), e.c64(0x3F_FFFF))
    nan = e.bin(W.OR64, e.bin(W.OR64, sign, payload), e.c64(F32_EXP | F32_QUIET))
    fb.stmt(e.set(out.index, _select(fb, f64.is_nan(fb, a.index), nan, narrowed)))


def _from_i64(suffix: str) -> Emitter:
    fmt = FORMATS[suffix]
    wasm_op = FW.F64_FROM_S64 if suffix == "f64" else FW.F32_FROM_S64

    def emit(fb: FunctionBuilder, op: Op) -> None:
        out, a = op.args
        e = fb.e
        fb.stmt(e.set(out.index, fmt.bits(fb, e.un(wasm_op, e.get(a.index)))))

    return emit


def _int_from_f64(bits: int) -> Emitter:
    """Saturating truncation, replaced by the integer indefinite outside the range (NaN compares false)."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        out, a = op.args
        e = fb.e
        f64 = FORMATS["f64"]
        cmp = f64.cmp
        if bits == 64:
            truncated = e.un(FW.S64_SAT_FROM_F64, f64.value(fb, a.index))
            low = e.bin(cmp["ge"], f64.value(fb, a.index), _fconst(fb, -(2.0**63)))
            indefinite = INT64_INDEFINITE
        else:
            truncated = e.un(W.EXTU32, e.un(FW.S32_SAT_FROM_F64, f64.value(fb, a.index)))
            low = e.bin(cmp["gt"], f64.value(fb, a.index), _fconst(fb, -(2.0**31) - 1.0))
            indefinite = INT32_INDEFINITE
        high = e.bin(cmp["lt"], f64.value(fb, a.index), _fconst(fb, 2.0 ** (bits - 1)))
        fb.stmt(e.set(out.index, _select(fb, e.bin(FW.AND32, low, high), truncated, e.c64(indefinite))))

    return emit


def _round_f64(fb: FunctionBuilder, op: Op) -> None:
    out, a, mode = op.args
    e = fb.e
    f64 = FORMATS["f64"]
    rc, raw = fb.scratch[0], fb.scratch[1]
    fb.stmt(e.set(rc, e.bin(W.AND64, e.get(mode.index), e.c64(3))))

    def rounded(wasm_op: int) -> Expr:
        return e.un(wasm_op, f64.value(fb, a.index))

    def rc_is(value: int) -> Expr:
        return e.bin(W.EQ64, e.get(rc), e.c64(value))

    value = _select(fb, rc_is(2), rounded(FW.CEIL), rounded(FW.TRUNC), F64)
    value = _select(fb, rc_is(1), rounded(FW.FLOOR), value, F64)
    value = _select(fb, rc_is(0), rounded(FW.NEAREST), value, F64)
    fb.stmt(e.set(raw, f64.bits(fb, value)))
    fb.stmt(e.set(out.index, _nan_fixed(fb, f64, (a.index,), raw)))


def _float_emitters() -> dict[str, Emitter]:
    table: dict[str, Emitter] = {}
    for suffix in ("f64", "f32"):
        for name in ("add", "sub", "mul", "div", "sqrt"):
            table[f"{name}_{suffix}"] = _arith(suffix, name)
        table[f"min_{suffix}"] = _minmax(suffix, True)
        table[f"max_{suffix}"] = _minmax(suffix, False)
        table[f"setcond_{suffix}"] = _setcond(suffix)
        table[f"cvt_{suffix}_from_i64"] = _from_i64(suffix)
    table["cvt_f64_from_f32"] = _f64_from_f32
    table["cvt_f32_from_f64"] = _f32_from_f64
    table["cvt_i64_from_f64"] = _int_from_f64(64)
    table["cvt_i32_from_f64"] = _int_from_f64(32)
    table["round_f64"] = _round_f64
    return table


FLOAT_EMITTERS: dict[str, Emitter] = _float_emitters()

__all__ = ["FLOAT_EMITTERS"]
