"""Deciding comparisons at translation time from what is known about the operands."""

from __future__ import annotations

from tcg2wasm.ir.ops import Cond, eval_cond, to_signed
from tcg2wasm.opt.knowledge import OptContext, TempKey

SWAPPED_COND: dict[Cond, Cond] = {
    Cond.EQ: Cond.EQ, Cond.NE: Cond.NE, Cond.LT: Cond.GT, Cond.GT: Cond.LT, Cond.LE: Cond.GE, Cond.GE: Cond.LE,
    Cond.LTU: Cond.GTU, Cond.GTU: Cond.LTU, Cond.LEU: Cond.GEU, Cond.GEU: Cond.LEU,
    Cond.TSTEQ: Cond.TSTEQ, Cond.TSTNE: Cond.TSTNE,
}
"""cond(a, b) == SWAPPED_COND[cond](b, a)."""

_SAME_OPERANDS: dict[Cond, bool] = {
    Cond.EQ: True, Cond.GE: True, Cond.LE: True, Cond.GEU: True, Cond.LEU: True,
    Cond.NE: False, Cond.LT: False, Cond.GT: False, Cond.LTU: False, Cond.GTU: False,
}
"""The value of cond(a, a), where it does not depend on a (not for the TST conditions)."""


def _negate(result: bool | None) -> bool | None:
    return None if result is None else not result


def _decide_against_const(cond: Cond, z_mask: int, c: int) -> bool | None:
    """Decide cond(a, c) knowing only that a's nonzero bits lie within ``z_mask``.

    Such an ``a`` lies in [0, z_mask] as an unsigned number, and also as a
    signed one when bit 63 of the mask is clear.
    """
    sc = to_signed(c)
    nonnegative = z_mask >> 63 == 0
    match cond:
        case Cond.EQ:
            return False if c & ~z_mask else None
        case Cond.NE:
            return True if c & ~z_mask else None
        case Cond.LTU:
            return True if z_mask < c else (False if c == 0 else None)
        case Cond.GEU:
            return _negate(_decide_against_const(Cond.LTU, z_mask, c))
        case Cond.LEU:
            return True if z_mask <= c else None
        case Cond.GTU:
            return _negate(_decide_against_const(Cond.LEU, z_mask, c))
        case Cond.TSTEQ:
            return True if z_mask & c == 0 else None
        case Cond.TSTNE:
            return _negate(_decide_against_const(Cond.TSTEQ, z_mask, c))
        case Cond.LT if nonnegative:
            return True if z_mask < sc else (False if sc <= 0 else None)
        case Cond.GE if nonnegative:
            return _negate(_decide_against_const(Cond.LT, z_mask, c))
        case Cond.LE if nonnegative:
            return True if z_mask <= sc else (False if sc < 0 else None)
        case Cond.GT if nonnegative:
            return _negate(_decide_against_const(Cond.LE, z_mask, c))
    return None


def decide_cond(ctx: OptContext, cond: Cond, a: TempKey, b: TempKey) -> bool | None:
    """The value of cond(a, b) if it is the same on every execution, else None."""
    ia, ib = ctx.info(a), ctx.info(b)
    ca, cb = ia.const, ib.const
    if ca is not None and cb is not None:
        return eval_cond(cond, ca, cb)
    if a == b:
        return _SAME_OPERANDS.get(cond)
    if ca is not None:
        return _decide_against_const(SWAPPED_COND[cond], ib.z_mask, ca)
    if cb is not None:
        return _decide_against_const(cond, ia.z_mask, cb)
    if (cond == Cond.TSTEQ or cond == Cond.TSTNE) and ia.z_mask & ib.z_mask == 0:
        return cond == Cond.TSTEQ
    return None
