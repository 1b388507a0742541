"""Atomic read-modify-write instructions: xadd, cmpxchg, cmpxchg8b/16b, and bswap.

The guest is single-threaded and a translated instruction cannot be
interrupted half-way, so the ``lock`` prefix changes nothing: these are lifted
as plain load/compute/store sequences (iced decodes the prefix; it is ignored).

cmpxchg follows the SDM (and current hardware/QEMU) where Unicorn 2.1 differs:
a register destination is written only on equality, and the accumulator only
on inequality -- so with 32-bit operands the upper halves of rax and of the
destination register are zeroed only when they are written. Unicorn (QEMU 5)
writes both unconditionally. See docs/frontend-notes-a.md.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Excp, Temp

M = ix.Mnemonic
R = ix.Register

_ACCUMULATOR = {8: R.AL, 16: R.AX, 32: R.EAX, 64: R.RAX}


@semantics(M.XADD)
def lift_xadd(ctx: LiftContext, ins: ix.Instruction) -> None:
    """temp = dest + src; src = dest; dest = temp (dest written last, so ``xadd rax, rax`` keeps the sum)."""
    b = ctx.b
    bits = ctx.op_bits(0)
    addr = ctx.ea() if ctx.is_mem(0) else None
    dest = ctx.read(0, addr)
    src = ctx.read(1)
    total = b.add(dest, src)
    if addr is not None:  # the store may fault: do it before the register write becomes visible
        ctx.write(0, total, addr)
        ctx.write(1, dest)
    else:
        ctx.write(1, dest)
        ctx.write(0, total)
    ctx.flags_add(dest, src, total, bits)


def set_reg_when(ctx: LiftContext, reg: int, cond: Temp, value: Temp) -> None:
    """Write register ``reg`` (x86 rules) only when the 0/1 value ``cond`` is set; else leave all 64 bits."""
    b = ctx.b
    name = ix.RegisterInfo(reg).full_register  # type: ignore[arg-type]  # iced Register values are ints
    old = ctx.get_reg(name)
    ctx.set_reg(reg, value)
    written = ctx.get_reg(name)
    ctx.set_reg(name, b.movcond(Cond.NE, cond, b.const(0), written, old))


@semantics(M.CMPXCHG)
def lift_cmpxchg(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Compare the accumulator with dest (flags of ``cmp acc, dest``): equal -> dest = src, else acc = dest.

    A memory destination always receives a store (of its old value when not equal), as on hardware.
    """
    b = ctx.b
    bits = ctx.op_bits(0)
    acc_reg = _ACCUMULATOR[bits]
    addr = ctx.ea() if ctx.is_mem(0) else None
    dest = ctx.read(0, addr)
    src = ctx.read(1)
    acc = ctx.get_reg(acc_reg)
    equal = b.setcond(Cond.EQ, acc, dest)
    if addr is not None:
        ctx.write(0, b.movcond(Cond.NE, equal, b.const(0), src, dest), addr)
        set_reg_when(ctx, acc_reg, b.xori(equal, 1), dest)
    else:
        set_reg_when(ctx, acc_reg, b.xori(equal, 1), dest)
        set_reg_when(ctx, ins.op_register(0), equal, src)
    ctx.flags_sub(acc, dest, b.sub(acc, dest), bits)


def _compare_exchange_pair(ctx: LiftContext, bits: int) -> None:
    """cmpxchg8b/16b: compare rdx:rax (halves of ``bits``) with memory; equal -> memory = rcx:rbx,
    else rdx:rax = memory. Only ZF changes. Memory always receives a store, as on hardware."""
    b = ctx.b
    regs = {32: (R.EAX, R.EDX, R.EBX, R.ECX), 64: (R.RAX, R.RDX, R.RBX, R.RCX)}[bits]
    addr = ctx.ea()
    if bits == 64:  # cmpxchg16b: #GP unless the operand is 16-byte aligned
        b.trapcond(Cond.TSTNE, addr, b.const(15), Excp.GP)
    old_low = ctx.load(addr, bits)
    old_high = ctx.load(b.addi(addr, bits // 8), bits)
    acc_low, acc_high, new_low, new_high = (ctx.get_reg(r) for r in regs)
    equal = b.and_(b.setcond(Cond.EQ, old_low, acc_low), b.setcond(Cond.EQ, old_high, acc_high))
    zero = b.const(0)
    ctx.store(addr, b.movcond(Cond.NE, equal, zero, new_low, old_low), bits)
    ctx.store(b.addi(addr, bits // 8), b.movcond(Cond.NE, equal, zero, new_high, old_high), bits)
    unequal = b.xori(equal, 1)
    set_reg_when(ctx, regs[0], unequal, old_low)
    set_reg_when(ctx, regs[1], unequal, old_high)
    ctx.set_flag("zf", equal)


@semantics(M.CMPXCHG8B)
def lift_cmpxchg8b(ctx: LiftContext, ins: ix.Instruction) -> None:
    _compare_exchange_pair(ctx, 32)


@semantics(M.CMPXCHG16B)
def lift_cmpxchg16b(ctx: LiftContext, ins: ix.Instruction) -> None:
    _compare_exchange_pair(ctx, 64)


@semantics(M.BSWAP)
def lift_bswap(ctx: LiftContext, ins: ix.Instruction) -> None:
    """32- and 64-bit only: bswap of a 16-bit register is undefined and goes to the fallback."""
    bits = ctx.op_bits(0)
    if bits not in (32, 64):
        raise Unsupported(f"bswap of {bits} bits")
    ctx.write(0, ctx.b.bswap(ctx.read(0), bits))
