"""Conditional data instructions: setcc and cmovcc for all 16 conditions."""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond

M = ix.Mnemonic


@semantics(M.SETO, M.SETNO, M.SETB, M.SETAE, M.SETE, M.SETNE, M.SETBE, M.SETA,
           M.SETS, M.SETNS, M.SETP, M.SETNP, M.SETL, M.SETGE, M.SETLE, M.SETG)
def lift_setcc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.write(0, ctx.condition(ins.condition_code))


@semantics(M.CMOVO, M.CMOVNO, M.CMOVB, M.CMOVAE, M.CMOVE, M.CMOVNE, M.CMOVBE, M.CMOVA,
           M.CMOVS, M.CMOVNS, M.CMOVP, M.CMOVNP, M.CMOVL, M.CMOVGE, M.CMOVLE, M.CMOVG)
def lift_cmovcc(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The source is read (a memory source loaded, and may fault) whatever the condition, and the
    destination is always written: with a 32-bit operand a false condition still zero-extends it."""
    b = ctx.b
    src = ctx.read(1)
    old = ctx.read(0)
    taken = ctx.condition(ins.condition_code)
    ctx.write(0, b.movcond(Cond.NE, taken, b.const(0), src, old))
