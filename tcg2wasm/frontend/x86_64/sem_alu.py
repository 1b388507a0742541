"""Integer arithmetic and logic with exact flags: add/adc/sub/sbb/cmp/neg/inc/dec/and/or/xor/not/test."""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Temp

M = ix.Mnemonic


def _binary_operands(ctx: LiftContext) -> tuple[Temp | None, Temp, Temp, int]:
    addr = ctx.ea() if ctx.is_mem(0) or ctx.is_mem(1) else None
    bits = ctx.op_bits(0)
    return addr, ctx.read(0, addr), ctx.read(1, addr), bits


def _add_like(ctx: LiftContext, with_carry: bool, store: bool = True) -> None:
    b = ctx.b
    addr, a, c, bits = _binary_operands(ctx)
    cin = ctx.flag("cf") if with_carry else None
    res = b.add(a, c) if cin is None else b.add(b.add(a, c), cin)
    if store:
        ctx.write(0, res, addr)
    ctx.flags_add(a, c, res, bits, cin)


def _sub_like(ctx: LiftContext, with_borrow: bool, store: bool = True) -> None:
    b = ctx.b
    addr, a, c, bits = _binary_operands(ctx)
    bin_ = ctx.flag("cf") if with_borrow else None
    res = b.sub(a, c) if bin_ is None else b.sub(b.sub(a, c), bin_)
    if store:
        ctx.write(0, res, addr)
    ctx.flags_sub(a, c, res, bits, bin_)


@semantics(M.ADD)
def lift_add(ctx: LiftContext, ins: ix.Instruction) -> None:
    _add_like(ctx, with_carry=False)


@semantics(M.ADC)
def lift_adc(ctx: LiftContext, ins: ix.Instruction) -> None:
    _add_like(ctx, with_carry=True)


@semantics(M.SUB)
def lift_sub(ctx: LiftContext, ins: ix.Instruction) -> None:
    _sub_like(ctx, with_borrow=False)


@semantics(M.SBB)
def lift_sbb(ctx: LiftContext, ins: ix.Instruction) -> None:
    _sub_like(ctx, with_borrow=True)


@semantics(M.CMP)
def lift_cmp(ctx: LiftContext, ins: ix.Instruction) -> None:
    _sub_like(ctx, with_borrow=False, store=False)


def _logic(ctx: LiftContext, op: str, store: bool = True) -> None:
    b = ctx.b
    addr, a, c, bits = _binary_operands(ctx)
    # xor of a register with itself is the zeroing idiom: no dependency on the old value
    res = b.const(0) if op == "xor" and _same_register(ctx) else {"and": b.and_, "or": b.or_, "xor": b.xor}[op](a, c)
    if store:
        ctx.write(0, res, addr)
    ctx.flags_logic(res, bits)


def _same_register(ctx: LiftContext) -> bool:
    ins = ctx.ins
    return ins.op_kind(0) == ins.op_kind(1) == ix.OpKind.REGISTER and ins.op_register(0) == ins.op_register(1)


@semantics(M.AND)
def lift_and(ctx: LiftContext, ins: ix.Instruction) -> None:
    _logic(ctx, "and")


@semantics(M.OR)
def lift_or(ctx: LiftContext, ins: ix.Instruction) -> None:
    _logic(ctx, "or")


@semantics(M.XOR)
def lift_xor(ctx: LiftContext, ins: ix.Instruction) -> None:
    _logic(ctx, "xor")


@semantics(M.TEST)
def lift_test(ctx: LiftContext, ins: ix.Instruction) -> None:
    _logic(ctx, "and", store=False)


@semantics(M.NOT)
def lift_not(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.rmw(ctx.b.not_)


@semantics(M.NEG)
def lift_neg(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    a = ctx.read(0, addr)
    zero = b.const(0)
    res = b.neg(a)
    ctx.write(0, res, addr)
    ctx.flags_sub(zero, a, res, bits)


def _inc_dec(ctx: LiftContext, delta: int) -> None:
    """inc/dec: like add/sub of 1, but CF is preserved."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    a = ctx.read(0, addr)
    one = b.const(1)
    cf = ctx.flag("cf")
    if delta > 0:
        res = b.add(a, one)
        ctx.write(0, res, addr)
        ctx.flags_add(a, one, res, bits)
    else:
        res = b.sub(a, one)
        ctx.write(0, res, addr)
        ctx.flags_sub(a, one, res, bits)
    ctx.set_flag("cf", cf)


@semantics(M.INC)
def lift_inc(ctx: LiftContext, ins: ix.Instruction) -> None:
    _inc_dec(ctx, 1)


@semantics(M.DEC)
def lift_dec(ctx: LiftContext, ins: ix.Instruction) -> None:
    _inc_dec(ctx, -1)
