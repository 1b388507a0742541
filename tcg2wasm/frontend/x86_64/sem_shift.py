"""Shifts and rotates: shl/sal/shr/sar, rol/ror, rcl/rcr, shld/shrd.

Common rules: the count is masked to 5 bits (6 for 64-bit operands); a masked
count of 0 leaves every flag untouched (the destination is still written, so a
32-bit register destination is zero-extended, as on hardware and Unicorn).
Flags the SDM leaves undefined get Unicorn's (QEMU's) values where that is
cheap: OF is computed for every count with the count-1 formula, AF is 0.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Temp

M = ix.Mnemonic

#: A shift count: a Python int for immediate counts (lifted without run-time tests), else a temp.
Count = Temp | int


def shift_count(ctx: LiftContext, i: int, bits: int) -> Count:
    """The masked count held in operand ``i`` (an immediate or cl)."""
    mask = 63 if bits == 64 else 31
    if ctx.ins.op_kind(i) == ix.OpKind.REGISTER:
        return ctx.b.andi(ctx.get_reg(ctx.ins.op_register(i)), mask)
    return ctx.ins.immediate(i) & mask


def is_zero(n: Count) -> bool:
    """An immediate count of zero (flags untouched, known while lifting)."""
    return isinstance(n, int) and n == 0


def as_temp(ctx: LiftContext, n: Count) -> Temp:
    return ctx.b.const(n) if isinstance(n, int) else n


def count_minus_one(ctx: LiftContext, n: Count) -> Temp:
    """``n - 1`` (for a zero count the value is garbage that is never selected)."""
    return ctx.b.const((n - 1) & 63) if isinstance(n, int) else ctx.b.addi(n, -1)


def zsp_values(ctx: LiftContext, res: Temp, bits: int) -> dict[str, Temp]:
    """ZF, SF and PF of ``res`` (which may carry garbage above ``bits``) as values, not yet written."""
    b = ctx.b
    return {"zf": b.setcondi(Cond.EQ, b.zext(res, bits), 0), "sf": ctx.sign_bit(res, bits), "pf": ctx.parity(res)}


def commit_flags_if_count(ctx: LiftContext, n: Count, flags: dict[str, Temp]) -> None:
    """Write ``flags`` when the count is non-zero; a zero count keeps the old flags."""
    if isinstance(n, int):
        if n:
            for name, value in flags.items():
                ctx.set_flag(name, value)
        return
    b = ctx.b
    zero = b.const(0)
    for name, value in flags.items():
        ctx.set_flag(name, b.movcond(Cond.NE, n, zero, value, ctx.flag(name)))


def _shift(ctx: LiftContext, kind: str) -> None:
    """shl/shr/sar: CF is the last bit shifted out, OF compares the sign before and after the last step."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    a = ctx.read(0, addr)
    n = shift_count(ctx, 1, bits)
    if kind == "sar":
        a = b.sext(a, bits)
    op = {"shl": b.shl, "shr": b.shr, "sar": b.sar}[kind]
    res = op(a, as_temp(ctx, n))
    ctx.write(0, res, addr)
    if is_zero(n):
        return
    before_last = op(a, count_minus_one(ctx, n))
    cf = b.extract(before_last, bits - 1, 1) if kind == "shl" else b.andi(before_last, 1)
    flags = {"cf": cf, "of": b.extract(b.xor(before_last, res), bits - 1, 1), "af": b.const(0)}
    flags.update(zsp_values(ctx, res, bits))
    commit_flags_if_count(ctx, n, flags)


@semantics(M.SHL, M.SAL)
def lift_shl(ctx: LiftContext, ins: ix.Instruction) -> None:
    _shift(ctx, "shl")


@semantics(M.SHR)
def lift_shr(ctx: LiftContext, ins: ix.Instruction) -> None:
    _shift(ctx, "shr")


@semantics(M.SAR)
def lift_sar(ctx: LiftContext, ins: ix.Instruction) -> None:
    _shift(ctx, "sar")


def _rotate_value(ctx: LiftContext, a: Temp, n: Count, bits: int, left: bool) -> Temp:
    """``a`` (zero-extended) rotated by ``n`` within ``bits`` bits; the result is zero-extended."""
    b = ctx.b
    if bits == 64:
        return (b.rotl if left else b.rotr)(a, as_temp(ctx, n))
    r = n % bits if isinstance(n, int) else b.andi(n, bits - 1)
    rest = b.const(bits - r) if isinstance(r, int) else b.sub(b.const(bits), r)
    r = as_temp(ctx, r)
    if left:
        return b.zext(b.or_(b.shl(a, r), b.shr(a, rest)), bits)
    return b.zext(b.or_(b.shr(a, r), b.shl(a, rest)), bits)


def _rotate(ctx: LiftContext, left: bool) -> None:
    """rol/ror: only CF and OF change (when the masked count is non-zero, even if it is a multiple of the size)."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    a = ctx.read(0, addr)
    n = shift_count(ctx, 1, bits)
    res = _rotate_value(ctx, a, n, bits, left)
    ctx.write(0, res, addr)
    msb = b.extract(res, bits - 1, 1)
    if left:
        cf = b.andi(res, 1)
        of = b.xor(msb, cf)
    else:
        cf = msb
        of = b.xor(msb, b.extract(res, bits - 2, 1))
    commit_flags_if_count(ctx, n, {"cf": cf, "of": of})


@semantics(M.ROL)
def lift_rol(ctx: LiftContext, ins: ix.Instruction) -> None:
    _rotate(ctx, left=True)


@semantics(M.ROR)
def lift_ror(ctx: LiftContext, ins: ix.Instruction) -> None:
    _rotate(ctx, left=False)


def _through_carry_count(ctx: LiftContext, n: Count, bits: int) -> Count:
    """rcl/rcr rotate ``bits + 1`` bits: 8- and 16-bit counts are taken modulo 9 and 17."""
    if bits >= 32:
        return n
    if isinstance(n, int):
        return n % (bits + 1)
    return ctx.b.remu(n, ctx.b.const(bits + 1))


def _rotate_through_carry(ctx: LiftContext, left: bool) -> None:
    """rcl/rcr: rotate the (bits+1)-bit value CF:operand; OF = MSB(result) ^ MSB(operand) (QEMU's formula)."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    a = ctx.read(0, addr)
    c = _through_carry_count(ctx, shift_count(ctx, 1, bits), bits)
    if is_zero(c):
        ctx.write(0, a, addr)
        return
    cin = ctx.flag("cf")
    ct = as_temp(ctx, c)
    cm1 = count_minus_one(ctx, c)
    rest = b.const(bits - c) if isinstance(c, int) else b.sub(b.const(bits), c)  # 0..bits-1 when c != 0
    if left:  # a << c | cf << (c-1) | a >> (bits+1-c)
        res = b.or_(b.or_(b.shl(a, ct), b.shl(cin, cm1)), b.shr(b.shri(a, 1), rest))
        cf = b.andi(b.shr(a, rest), 1)
    else:  # a >> c | cf << (bits-c) | a << (bits+1-c)
        res = b.or_(b.or_(b.shr(a, ct), b.shl(cin, rest)), b.shl(b.shli(a, 1), rest))
        cf = b.andi(b.shr(a, cm1), 1)
    res = b.zext(res, bits)
    if not isinstance(c, int):
        res = b.movcond(Cond.NE, c, b.const(0), res, a)
    ctx.write(0, res, addr)
    commit_flags_if_count(ctx, c, {"cf": cf, "of": b.extract(b.xor(a, res), bits - 1, 1)})


@semantics(M.RCL)
def lift_rcl(ctx: LiftContext, ins: ix.Instruction) -> None:
    _rotate_through_carry(ctx, left=True)


@semantics(M.RCR)
def lift_rcr(ctx: LiftContext, ins: ix.Instruction) -> None:
    _rotate_through_carry(ctx, left=False)


def _double_shift_narrow(ctx: LiftContext, dst: Temp, src: Temp, n: Count, bits: int,
                         left: bool) -> tuple[Temp, Temp]:
    """shld/shrd of 16/32 bits via one 64-bit shift: (result, value shifted by n-1).

    16-bit operands shift dst:src:dst (48 bits), which is Intel's (and Unicorn's)
    result for counts above 16 -- architecturally undefined.
    """
    b = ctx.b
    if left:  # the result is taken from bits 32.. of the shifted value
        low = src if bits == 32 else b.or_(b.shli(src, 16), dst)
        x = b.or_(b.shli(dst, 32), low)
        res = b.shri(b.shl(x, as_temp(ctx, n)), 32)
        before_last = b.shri(b.shl(x, count_minus_one(ctx, n)), 32)
    else:
        x = b.or_(b.shli(src, 32), dst) if bits == 32 else b.or_(b.or_(b.shli(dst, 32), b.shli(src, 16)), dst)
        res = b.shr(x, as_temp(ctx, n))
        before_last = b.shr(x, count_minus_one(ctx, n))
    return res, before_last


def _double_shift_wide(ctx: LiftContext, dst: Temp, src: Temp, n: Count, left: bool) -> tuple[Temp, Temp]:
    """64-bit shld/shrd: the bits coming in from ``src`` are shifted in two steps so a zero count brings none."""
    b = ctx.b
    nt = as_temp(ctx, n)
    rest = b.const(63 - n) if isinstance(n, int) else b.sub(b.const(63), n)
    if left:
        res = b.or_(b.shl(dst, nt), b.shr(b.shri(src, 1), rest))
        before_last = b.shl(dst, count_minus_one(ctx, n))
    else:
        res = b.or_(b.shr(dst, nt), b.shl(b.shli(src, 1), rest))
        before_last = b.shr(dst, count_minus_one(ctx, n))
    return res, before_last


def _double_shift(ctx: LiftContext, left: bool) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    dst = ctx.read(0, addr)
    src = ctx.read(1)
    n = shift_count(ctx, 2, bits)
    if bits == 64:
        res, before_last = _double_shift_wide(ctx, dst, src, n, left)
    else:
        res, before_last = _double_shift_narrow(ctx, dst, src, n, bits, left)
    ctx.write(0, res, addr)
    if is_zero(n):
        return
    cf = b.extract(before_last, bits - 1, 1) if left else b.andi(before_last, 1)
    flags = {"cf": cf, "of": b.extract(b.xor(before_last, res), bits - 1, 1), "af": b.const(0)}
    flags.update(zsp_values(ctx, res, bits))
    commit_flags_if_count(ctx, n, flags)


@semantics(M.SHLD)
def lift_shld(ctx: LiftContext, ins: ix.Instruction) -> None:
    _double_shift(ctx, left=True)


@semantics(M.SHRD)
def lift_shrd(ctx: LiftContext, ins: ix.Instruction) -> None:
    _double_shift(ctx, left=False)
