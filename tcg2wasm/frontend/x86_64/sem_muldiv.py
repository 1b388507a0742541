"""Multiplication and division: mul/imul (one, two and three operands), div/idiv.

mul/imul: CF = OF = "the result does not fit the destination"; the undefined
SF/ZF/PF take Unicorn's values (from the low half of the product) and AF = 0.
div/idiv raise #DE (``trapcond`` with Excp.DIVIDE) on a zero divisor and on a
quotient that does not fit, before anything is written; flags are left
unchanged (all undefined; that is what Unicorn does).
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Excp, Temp

M = ix.Mnemonic
R = ix.Register

INT64_MAX = (1 << 63) - 1
INT64_MIN = 1 << 63
#: The (low, high) destination registers of one-operand mul/imul and the dividend of div/idiv.
_PAIR = {8: (R.AL, R.AH), 16: (R.AX, R.DX), 32: (R.EAX, R.EDX), 64: (R.RAX, R.RDX)}


def _mul_flags(ctx: LiftContext, low: Temp, overflow: Temp, bits: int) -> None:
    ctx.set_flag("cf", overflow)
    ctx.set_flag("of", overflow)
    ctx.set_flag_const("af", 0)
    ctx.set_zsp(low, bits)


def _widening_multiply(ctx: LiftContext, a: Temp, c: Temp, bits: int, signed: bool) -> tuple[Temp, Temp, Temp]:
    """(low half, high half, overflow) of the 2*bits-bit product of two operands zero-extended to ``bits``.

    The halves may carry garbage above ``bits``; overflow is 0/1: the product
    does not fit ``bits`` (unsigned), or is not the sign-extension of its low half (signed).
    """
    b = ctx.b
    if bits == 64:
        low, high = b.muls2(a, c) if signed else b.mulu2(a, c)
        extension = b.sari(low, 63) if signed else b.const(0)
        return low, high, b.setcond(Cond.NE, high, extension)
    if signed:
        product = b.mul(b.sext(a, bits), b.sext(c, bits))
        return product, b.sari(product, bits), b.setcond(Cond.NE, product, b.sext(product, bits))
    product = b.mul(a, c)
    return product, b.shri(product, bits), b.setcondi(Cond.NE, b.shri(product, bits), 0)


def _one_operand_multiply(ctx: LiftContext, signed: bool) -> None:
    """rdx:rax (edx:eax, dx:ax, ax) = accumulator * operand."""
    bits = ctx.op_bits(0)
    low_reg, high_reg = _PAIR[bits]
    src = ctx.read(0)
    low, high, overflow = _widening_multiply(ctx, ctx.get_reg(low_reg), src, bits, signed)
    ctx.set_reg(low_reg, low)
    ctx.set_reg(high_reg, high)
    _mul_flags(ctx, low, overflow, bits)


@semantics(M.MUL)
def lift_mul(ctx: LiftContext, ins: ix.Instruction) -> None:
    _one_operand_multiply(ctx, signed=False)


@semantics(M.IMUL)
def lift_imul(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.op_count == 1:
        _one_operand_multiply(ctx, signed=True)
        return
    bits = ctx.op_bits(0)
    a, c = (ctx.read(0), ctx.read(1)) if ins.op_count == 2 else (ctx.read(1), ctx.read(2))
    low, _, overflow = _widening_multiply(ctx, a, c, bits, signed=True)
    ctx.write(0, low)
    _mul_flags(ctx, low, overflow, bits)


def _dividend(ctx: LiftContext, bits: int) -> Temp:
    """The narrow (bits < 64) dividend high:low as one 64-bit value, zero-extended."""
    b = ctx.b
    low_reg, high_reg = _PAIR[bits]
    if bits == 8:
        return b.ext16u(ctx.get_gpr("rax"))
    return b.or_(b.shli(ctx.get_reg(high_reg), bits), ctx.get_reg(low_reg))


def _trap_if(ctx: LiftContext, cond: Temp) -> None:
    """#DE when the 0/1 value ``cond`` is set."""
    b = ctx.b
    b.trapcond(Cond.NE, cond, b.const(0), Excp.DIVIDE)


def _divide_narrow(ctx: LiftContext, divisor: Temp, bits: int, signed: bool) -> tuple[Temp, Temp]:
    """Quotient and remainder of a 16/32/64-bit dividend by an 8/16/32-bit divisor, with the #DE checks."""
    b = ctx.b
    dividend = _dividend(ctx, bits)
    zero = b.const(0)
    b.trapcond(Cond.EQ, divisor, zero, Excp.DIVIDE)
    if not signed:
        quotient = b.divu(dividend, divisor)
        _trap_if(ctx, b.setcondi(Cond.GTU, quotient, (1 << bits) - 1))
        return quotient, b.remu(dividend, divisor)
    dividend = b.sext(dividend, 2 * bits)
    divisor = b.sext(divisor, bits)
    if bits == 32:  # INT64_MIN / -1 overflows the 64-bit division itself (and is a #DE anyway)
        _trap_if(ctx, b.and_(b.setcondi(Cond.EQ, dividend, INT64_MIN), b.setcondi(Cond.EQ, divisor, -1)))
    quotient = b.divs(dividend, divisor)
    _trap_if(ctx, b.setcond(Cond.NE, quotient, b.sext(quotient, bits)))
    return quotient, b.rems(dividend, divisor)


def _abs128(ctx: LiftContext, low: Temp, high: Temp) -> tuple[Temp, Temp, Temp]:
    """(|high:low| low, high, sign mask 0 or all-ones) of a signed 128-bit value."""
    b = ctx.b
    sign = b.sari(high, 63)
    flipped_low = b.xor(low, sign)
    abs_low = b.sub(flipped_low, sign)  # + 1 when negative
    carry = b.setcond(Cond.LTU, abs_low, flipped_low)
    abs_high = b.add(b.xor(high, sign), carry)
    return abs_low, abs_high, sign


def _conditional_negate(ctx: LiftContext, value: Temp, sign: Temp) -> Temp:
    """``value`` negated when ``sign`` is all ones, unchanged when it is 0."""
    return ctx.b.sub(ctx.b.xor(value, sign), sign)


def _divide_wide(ctx: LiftContext, divisor: Temp, signed: bool) -> tuple[Temp, Temp]:
    """rdx:rax / a 64-bit divisor with divu2; the signed form divides magnitudes so that every
    overflow is detected (and trapped) before the division could misbehave."""
    b = ctx.b
    low, high = ctx.get_gpr("rax"), ctx.get_gpr("rdx")
    if not signed:
        b.trapcond(Cond.GEU, high, divisor, Excp.DIVIDE)  # covers divisor == 0
        return b.divu2(low, high, divisor)
    abs_low, abs_high, dividend_sign = _abs128(ctx, low, high)
    divisor_sign = b.sari(divisor, 63)
    abs_divisor = _conditional_negate(ctx, divisor, divisor_sign)
    b.trapcond(Cond.GEU, abs_high, abs_divisor, Excp.DIVIDE)  # zero divisor or |quotient| >= 2**64
    abs_quotient, abs_remainder = b.divu2(abs_low, abs_high, abs_divisor)
    quotient_sign = b.xor(dividend_sign, divisor_sign)
    limit = b.sub(b.const(INT64_MAX), quotient_sign)  # 2**63 - 1, or 2**63 for a negative quotient
    b.trapcond(Cond.GTU, abs_quotient, limit, Excp.DIVIDE)
    return (_conditional_negate(ctx, abs_quotient, quotient_sign),
            _conditional_negate(ctx, abs_remainder, dividend_sign))


def _divide(ctx: LiftContext, signed: bool) -> None:
    bits = ctx.op_bits(0)
    if bits not in _PAIR:
        raise Unsupported(f"div of {bits} bits")
    divisor = ctx.read(0)
    if bits == 64:
        quotient, remainder = _divide_wide(ctx, divisor, signed)
    else:
        quotient, remainder = _divide_narrow(ctx, divisor, bits, signed)
    quotient_reg, remainder_reg = _PAIR[bits]
    ctx.set_reg(quotient_reg, quotient)
    ctx.set_reg(remainder_reg, remainder)


@semantics(M.DIV)
def lift_div(ctx: LiftContext, ins: ix.Instruction) -> None:
    _divide(ctx, signed=False)


@semantics(M.IDIV)
def lift_idiv(ctx: LiftContext, ins: ix.Instruction) -> None:
    _divide(ctx, signed=True)
