"""Stack frames: enter (any nesting level) and leave, 64- and 16-bit operand sizes."""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics

M = ix.Mnemonic
C = ix.Code

_MAX_NESTING = 31  # the level operand is taken modulo 32


@semantics(M.ENTER)
def lift_enter(ctx: LiftContext, ins: ix.Instruction) -> None:
    """push rbp; copy level-1 frame pointers from the old frame; push the new frame; rsp -= size.

    The stores go to their final slots below the frame pointer directly (as
    QEMU does) so rsp and rbp are written only once, after every access. With
    the 0x66 prefix every push and copy is 16 bits wide (addresses stay 64-bit)
    and only BP is written, the upper 48 bits of rbp are kept: measured on the
    CPU (Unicorn writes all of rbp).
    """
    if ins.code == C.ENTERQ_IMM16_IMM8:
        width = 8
    elif ins.code == C.ENTERW_IMM16_IMM8:
        width = 2
    else:
        raise Unsupported("enter form")
    b = ctx.b
    size = ins.immediate(0) & 0xFFFF
    level = ins.immediate(1) & _MAX_NESTING
    old_rbp = ctx.get_gpr("rbp")
    frame = b.addi(ctx.get_gpr("rsp"), -width)
    ctx.store(frame, old_rbp, 8 * width)
    if level:
        for i in range(1, level):
            outer = ctx.load(b.addi(old_rbp, -width * i), 8 * width)
            ctx.store(b.addi(frame, -width * i), outer, 8 * width)
        ctx.store(b.addi(frame, -width * level), frame, 8 * width)
    ctx.set_reg(ix.Register.RBP if width == 8 else ix.Register.BP, frame)
    ctx.set_gpr("rsp", b.addi(frame, -(size + width * level)))


@semantics(M.LEAVE)
def lift_leave(ctx: LiftContext, ins: ix.Instruction) -> None:
    """rsp = rbp; pop rbp (bp only, for the 16-bit form)."""
    bits = 16 if ins.code == C.LEAVEW else 64
    rbp = ctx.get_gpr("rbp")
    value = ctx.load(rbp, bits)
    ctx.set_gpr("rsp", ctx.b.addi(rbp, bits // 8))
    ctx.set_reg(ix.Register.BP if bits == 16 else ix.Register.RBP, value)
