"""x87 control word: fnstcw and fldcw (x87 arithmetic itself is not lifted; it runs in the fallback).

The control word is the guest global ``fpcw`` (abi.py); the Unicorn fallback
is given it before each instruction and hands it back after, so x87
arithmetic there rounds as the program asked. Neither instruction touches
rflags, the x87 status word or the last-instruction pointers, and neither
waits for pending x87 exceptions. ``fstcw`` is ``wait; fnstcw``: iced-x86
decodes it as two instructions, and ``wait`` (which must check the status
word, kept in Unicorn) goes to the fallback. See docs/sse.md, "x87".
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm import abi
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics

M = ix.Mnemonic


def _memory_operand(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Both have one m16 operand; a lock prefix is #UD on the CPU: leave that to the fallback."""
    if ins.op_count != 1 or ins.op_kind(0) != ix.OpKind.MEMORY or ins.has_lock_prefix:
        raise Unsupported(f"{ctx.pc:#x}: x87 control-word form")


@semantics(M.FNSTCW)
def lift_fnstcw(ctx: LiftContext, ins: ix.Instruction) -> None:
    _memory_operand(ctx, ins)
    ctx.store(ctx.ea(), ctx.b.get_global("fpcw"), 16)


@semantics(M.FLDCW)
def lift_fldcw(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Load the control word; reserved bits are kept as the CPU keeps them (``abi.fpcw_as_loaded``)."""
    _memory_operand(ctx, ins)
    b = ctx.b
    value = b.ori(b.andi(ctx.load(ctx.ea(), 16), abi.FPCW_KEPT), abi.FPCW_ONES)
    b.set_global("fpcw", value)
