"""Stack frames: enter (any nesting level) and leave, 64-bit operand size (leave also 16-bit)."""

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
    QEMU does) so rsp and rbp are written only once, after every access.
    """
    if ins.code != C.ENTERQ_IMM16_IMM8:
        raise Unsupported("enter with 16-bit operand size")
    b = ctx.b
    size = ins.immediate(0) & 0xFFFF
    level = ins.immediate(1) & _MAX_NESTING
    old_rbp = ctx.get_gpr("rbp")
    frame = b.addi(ctx.get_gpr("rsp"), -8)
    ctx.store(frame, old_rbp, 64)
    if level:
        for i in range(1, level):
            outer = ctx.load(b.addi(old_rbp, -8 * i), 64)
            ctx.store(b.addi(frame, -8 * i), outer, 64)
        ctx.store(b.addi(frame, -8 * level), frame, 64)
    ctx.set_gpr("rbp", frame)
    ctx.set_gpr("rsp", b.addi(frame, -(size + 8 * level)))


@semantics(M.LEAVE)
def lift_leave(ctx: LiftContext, ins: ix.Instruction) -> None:
    """rsp = rbp; pop rbp (bp only, for the 16-bit form)."""
    bits = 16 if ins.code == C.LEAVEW else 64
    rbp = ctx.get_gpr("rbp")
    value = ctx.load(rbp, bits)
    ctx.set_gpr("rsp", ctx.b.addi(rbp, bits // 8))
    ctx.set_reg(ix.Register.BP if bits == 16 else ix.Register.RBP, value)
