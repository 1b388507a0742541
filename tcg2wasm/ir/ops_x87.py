"""x87 ops: 80-bit extended arithmetic, conversions and compares, as pure functions of i64 values.

An extended value is two IR values, ``lo`` (the 64-bit significand) and ``hi``
(sign and exponent, 16 bits). Each op takes its operands, the control word
``cw`` (precision, rounding, exception masks) and ``empty`` (bit i set when
register operand i is an empty stack slot), and returns its result value(s)
and ``flags``: the status-word bits it raises (``x87_float.IE`` ... ``PE``,
``SF``, ``C0``-``C3``) plus ``x87_float.NO_WRITE`` when an unmasked exception
means the destination must not be written. The front end merges the flags
into the status word; the ops never see the register stack.

The semantics are ``tcg2wasm.ir.x87_float`` (measured on the CPU, see there).
Most ops have several outputs: their semantics is ``OpDef.multi`` (a function
returning a tuple); the wasm backend evaluates them through the host import
``abi.HOST_X87`` (``x87_host_call``), the interpreter directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tcg2wasm.ir.x87_float as xf
from tcg2wasm.ir.opdef import OpDef
from tcg2wasm.ir.x87_kinds import Arith, Constant, MemFormat, Unary, Unary2

_CONSTANT_NAMES = {Constant.PI: "pi", Constant.L2E: "l2e", Constant.L2T: "l2t", Constant.LG2: "lg2",
                   Constant.LN2: "ln2"}
_INT_BITS = {MemFormat.I16: 16, MemFormat.I32: 32, MemFormat.I64: 64,
             MemFormat.I16_TRUNC: 16, MemFormat.I32_TRUNC: 32, MemFormat.I64_TRUNC: 64}
M64 = (1 << 64) - 1


def arith(a_lo: int, a_hi: int, b_lo: int, b_hi: int, cw: int, empty: int, kind: int) -> tuple[int, int, int]:
    """x87_arith: (lo, hi, flags) of a ``kind`` b."""
    a, b = (a_lo, a_hi & 0xFFFF), (b_lo, b_hi & 0xFFFF)
    cw &= 0xFFFF
    match kind:
        case Arith.ADD:
            return xf.add(a, b, cw, empty)
        case Arith.SUB:
            return xf.add(a, b, cw, empty, negate_b=True)
        case Arith.SUBR:
            return xf.add(b, a, cw, _swap_empty(empty), negate_b=True)
        case Arith.DIVR:
            return xf.div(b, a, cw, _swap_empty(empty))
        case Arith.MUL:
            return xf.mul(a, b, cw, empty)
        case Arith.DIV:
            return xf.div(a, b, cw, empty)
        case Arith.SCALE:
            return xf.scale(a, b, cw, empty)
        case Arith.PREM | Arith.PREM1:
            return xf.remainder(a, b, cw, kind == Arith.PREM1, empty)
    return _trans().binary(kind, a, b, cw, empty)


def _trans() -> Any:
    """tcg2wasm.ir.x87_trans, imported when a program first runs a transcendental (it loads mpmath)."""
    import tcg2wasm.ir.x87_trans as xt

    return xt


def _swap_empty(empty: int) -> int:
    """``empty`` of the operands in the other order (the memory-operand bit stays)."""
    return (empty & ~3) | ((empty & 1) << 1) | ((empty >> 1) & 1)


def unary(a_lo: int, a_hi: int, cw: int, empty: int, kind: int) -> tuple[int, int, int]:
    a = (a_lo, a_hi & 0xFFFF)
    cw &= 0xFFFF
    if kind == Unary.SQRT:
        return xf.sqrt(a, cw, empty)
    if kind == Unary.RNDINT:
        return xf.round_int(a, cw, empty)
    return _trans().unary(kind, a, cw, empty)


def unary2(a_lo: int, a_hi: int, cw: int, empty: int, kind: int) -> tuple[int, int, int, int, int]:
    """x87_unary2: (st1 lo, hi, st0 lo, hi, flags) after the push."""
    a = (a_lo, a_hi & 0xFFFF)
    cw &= 0xFFFF
    if kind == Unary2.XTRACT:
        return xf.extract(a, cw, empty)
    return _trans().unary2(kind, a, cw, empty)


def load(raw_lo: int, raw_hi: int, cw: int, fmt: int) -> tuple[int, int, int]:
    """x87_load: a memory operand (its bits in raw_lo, the top 16 of an m80 in raw_hi) as extended."""
    match fmt:
        case MemFormat.F32:
            return xf.load_binary(raw_lo & 0xFFFF_FFFF, xf.BINARY32)
        case MemFormat.F64:
            return xf.load_binary(raw_lo, xf.BINARY64)
        case MemFormat.F32_OPERAND:
            return xf.load_binary(raw_lo & 0xFFFF_FFFF, xf.BINARY32, as_operand=True)
        case MemFormat.F64_OPERAND:
            return xf.load_binary(raw_lo, xf.BINARY64, as_operand=True)
        case MemFormat.BCD:
            return xf.load_bcd(raw_lo, raw_hi)
    return xf.load_int(raw_lo, _INT_BITS[MemFormat(fmt)])


def store(a_lo: int, a_hi: int, cw: int, empty: int, fmt: int) -> tuple[int, int, int]:
    """x87_store: (raw lo, raw hi, flags) of st0 converted to a memory format (hi: an m80's top 16 bits)."""
    a = (a_lo, a_hi & 0xFFFF)
    cw &= 0xFFFF
    match fmt:
        case MemFormat.F32:
            bits, flags = xf.store_binary(a, cw, xf.BINARY32, empty)
            return bits, 0, flags
        case MemFormat.F64:
            bits, flags = xf.store_binary(a, cw, xf.BINARY64, empty)
            return bits, 0, flags
        case MemFormat.BCD:
            return xf.store_bcd(a, cw, empty)
    fmt = MemFormat(fmt)
    truncate = fmt in (MemFormat.I16_TRUNC, MemFormat.I32_TRUNC, MemFormat.I64_TRUNC)
    value, flags = xf.store_int(a, cw, _INT_BITS[fmt], truncate, empty)
    return value, 0, flags


def constant(cw: int, which: int) -> tuple[int, int]:
    lo, hi, _ = xf.load_constant(_CONSTANT_NAMES[Constant(which)], cw & 0xFFFF)
    return lo, hi


def compare(a_lo: int, a_hi: int, b_lo: int, b_hi: int, empty: int, quiet: int) -> int:
    """x87_compare: C0 C2 C3 as fcom sets them, and IE/DE/SF; ``quiet`` for fucom (only SNaNs raise IE)."""
    return xf.compare((a_lo, a_hi & 0xFFFF), (b_lo, b_hi & 0xFFFF), bool(quiet), empty)


def examine(a_lo: int, a_hi: int, empty: int) -> int:
    """x87_examine: fxam's C0 C1 C2 C3."""
    return xf.examine((a_lo, a_hi & 0xFFFF), empty)


X87_OPS: tuple[OpDef, ...] = (
    OpDef("x87_arith", 3, 6, 1, multi=arith,
          doc="lo, hi, flags = a $kind b; inputs a_lo a_hi b_lo b_hi cw empty (ops_x87.Arith)"),
    OpDef("x87_unary", 3, 4, 1, multi=unary, doc="lo, hi, flags = $kind(a); inputs a_lo a_hi cw empty"),
    OpDef("x87_unary2", 5, 4, 1, multi=unary2,
          doc="lo1, hi1, lo0, hi0, flags = $kind(a): the results for st1 and st0 after a push"),
    OpDef("x87_load", 3, 3, 1, multi=load, doc="lo, hi, flags = memory value (raw_lo raw_hi) in format $fmt"),
    OpDef("x87_store", 3, 4, 1, multi=store,
          doc="raw_lo, raw_hi, flags = st0 (lo hi) in memory format $fmt; inputs lo hi cw empty"),
    OpDef("x87_const", 2, 1, 1, multi=constant, doc="lo, hi = constant $which rounded by cw's RC"),
    OpDef("x87_compare", 1, 5, 1, fold=compare, doc="flags (C0 C2 C3 IE DE SF) of a ? b; $quiet for fucom"),
    OpDef("x87_examine", 1, 3, 0, fold=examine, doc="fxam's C0-C3 of a (lo hi) and empty"),
)

#: The ops the host import evaluates (the others have emitters of their own), by code.
HOST_EVALUATED: tuple[str, ...] = tuple(d.name for d in X87_OPS)
_BY_CODE: dict[int, OpDef] = {i: d for i, d in enumerate(X87_OPS)}
HOST_CODE: dict[str, int] = {d.name: i for i, d in enumerate(X87_OPS)}
HOST_ARGS = 7  # value arguments of the host import (inputs then constants, zero-padded)


def x87_host_call(code: int, args: tuple[int, ...]) -> tuple[int, ...]:
    """What the host import computes: the outputs of op ``code`` (``HOST_CODE``) on its inputs and constants."""
    d = _BY_CODE[code]
    values = args[: d.n_in + d.n_const]
    fn: Callable[..., int | tuple[int, ...]] | None = d.multi or d.fold
    assert fn is not None
    result = fn(*values)
    return result if isinstance(result, tuple) else (result,)


__all__ = ["HOST_ARGS", "HOST_CODE", "HOST_EVALUATED", "X87_OPS", "Arith", "Constant", "MemFormat", "Unary",
           "Unary2", "x87_host_call"]
