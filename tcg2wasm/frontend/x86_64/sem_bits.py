"""Bit operations: bt/bts/btr/btc, bsf/bsr, tzcnt/lzcnt, popcnt.

Flags the SDM leaves undefined get Unicorn's (QEMU's) values where that is
cheap: bt* leave them unchanged, bsf/bsr set SF/PF from the source and clear
CF/OF/AF, tzcnt/lzcnt clear SF/PF/OF/AF.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, gpr_location
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Temp

M = ix.Mnemonic


def _bit_operand(ctx: LiftContext, bits: int) -> tuple[Temp | None, Temp]:
    """(address of the operand to test, bit index inside it) for bt-family operands.

    With a register bit offset and a memory operand the offset is a signed bit
    address relative to the operand: the operand-sized unit it falls in is
    accessed at ``ea + (offset >> log2(bits)) * (bits / 8)``.
    """
    b = ctx.b
    ins = ctx.ins
    if ins.op_kind(1) != ix.OpKind.REGISTER:
        return (ctx.ea() if ctx.is_mem(0) else None), b.const(ins.immediate(1) & (bits - 1))
    offset = ctx.read(1)
    addr = None
    if ctx.is_mem(0):
        unit = b.sari(b.sext(offset, bits), (bits.bit_length() - 1))
        addr = ctx.ea(extra=b.shli(unit, (bits // 8).bit_length() - 1))
    return addr, b.andi(offset, bits - 1)


def _bit_test(ctx: LiftContext, update: str | None) -> None:
    """CF = the selected bit; ``update`` ("set", "reset", "complement") writes the operand back."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr, index = _bit_operand(ctx, bits)
    value = ctx.read(0, addr)
    ctx.set_flag("cf", b.andi(b.shr(value, index), 1))
    if update is None:
        return
    mask = b.shl(b.const(1), index)
    new = {"set": b.or_, "reset": b.andc, "complement": b.xor}[update](value, mask)
    ctx.write(0, new, addr)


@semantics(M.BT)
def lift_bt(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_test(ctx, None)


@semantics(M.BTS)
def lift_bts(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_test(ctx, "set")


@semantics(M.BTR)
def lift_btr(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_test(ctx, "reset")


@semantics(M.BTC)
def lift_btc(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_test(ctx, "complement")


def _bit_scan(ctx: LiftContext, forward: bool) -> None:
    """bsf/bsr: a zero source leaves the whole destination register as it was, its upper half too for a
    32-bit operand (the SDM leaves it undefined; AMD documents it unchanged, and the CPU here keeps all
    64 bits: found by ``tcg2wasm fuzz streams``, seed 41067841)."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src = ctx.read(1)
    zero = b.const(0)
    index = b.ctz(src, zero) if forward else b.xori(b.clz(src, zero), 63)
    if bits == 32:  # no zero-extending write when nothing is written
        name = gpr_location(ctx.ins.op_register(0))[0]
        ctx.set_gpr(name, b.movcond(Cond.EQ, src, zero, ctx.get_gpr(name), index))
    else:
        ctx.write(0, b.movcond(Cond.EQ, src, zero, ctx.read(0), index))
    for name in ("cf", "of", "af"):
        ctx.set_flag_const(name, 0)
    ctx.set_zsp(src, bits)


@semantics(M.BSF)
def lift_bsf(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_scan(ctx, forward=True)


@semantics(M.BSR)
def lift_bsr(ctx: LiftContext, ins: ix.Instruction) -> None:
    _bit_scan(ctx, forward=False)


def _count_flags(ctx: LiftContext, src: Temp, res: Temp) -> None:
    """tzcnt/lzcnt: CF = (source == 0), ZF = (result == 0), the rest cleared (Unicorn's choice)."""
    b = ctx.b
    ctx.set_flag("cf", b.setcondi(Cond.EQ, src, 0))
    ctx.set_flag("zf", b.setcondi(Cond.EQ, res, 0))
    for name in ("sf", "pf", "of", "af"):
        ctx.set_flag_const(name, 0)


@semantics(M.TZCNT)
def lift_tzcnt(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    src = ctx.read(1)
    res = b.ctz(src, b.const(bits))
    ctx.write(0, res)
    _count_flags(ctx, src, res)


@semantics(M.LZCNT)
def lift_lzcnt(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    src = ctx.read(1)  # zero-extended: 64 - bits of its leading zeros lie above the operand
    res = b.addi(b.clz(src, b.const(64)), -(64 - bits))
    ctx.write(0, res)
    _count_flags(ctx, src, res)


@semantics(M.POPCNT)
def lift_popcnt(ctx: LiftContext, ins: ix.Instruction) -> None:
    """ZF = (source == 0); CF, OF, SF, AF and PF are cleared."""
    b = ctx.b
    src = ctx.read(1)
    ctx.write(0, b.ctpop(src))
    ctx.set_flag("zf", b.setcondi(Cond.EQ, src, 0))
    for name in ("cf", "of", "sf", "af", "pf"):
        ctx.set_flag_const(name, 0)
