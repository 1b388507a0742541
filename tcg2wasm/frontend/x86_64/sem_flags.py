"""Flag instructions: clc/stc/cmc/cld/std, lahf/sahf, pushf/popf; and the trapping ud2/int3/int n.

Only the seven flags the IR models (CF PF AF ZF SF OF DF) are globals. The
other rflags bits live in the runtime's ``state.rflags_rest``, which the
translated code cannot see, so:

* pushf pushes the seven flags plus ``RFLAGS_PUSHED_REST`` (bit 1, always one,
  and IF, set in user mode), which is what rflags_rest holds for a user-mode
  guest that has not changed AC/ID;
* popf sets the seven flags from the popped value and ignores the other bits
  (rflags_rest keeps its value).
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.abi import FLAG_BITS, FLAG_NAMES, RFLAGS_FIXED
from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Excp, Exit, Temp

M = ix.Mnemonic
R = ix.Register

RFLAGS_IF = 0x200
RFLAGS_PUSHED_REST = RFLAGS_FIXED | RFLAGS_IF
#: The flags lahf/sahf move between AH and rflags (OF and DF are not among them).
_AH_FLAGS = ("cf", "pf", "af", "zf", "sf")


def _pack_flags(ctx: LiftContext, names: tuple[str, ...], fixed: int) -> Temp:
    """``fixed`` with each named flag shifted into its rflags bit."""
    b = ctx.b
    value = b.const(fixed)
    for name in names:
        value = b.or_(value, b.shli(ctx.flag(name), FLAG_BITS[name]))
    return value


def pushed_rflags(ctx: LiftContext) -> Temp:
    """rflags as pushf pushes it (and syscall copies it to r11): the seven flags, bit 1 and IF."""
    return _pack_flags(ctx, FLAG_NAMES, RFLAGS_PUSHED_REST)


def _unpack_flags(ctx: LiftContext, value: Temp, names: tuple[str, ...]) -> None:
    for name in names:
        ctx.set_flag(name, ctx.b.extract(value, FLAG_BITS[name], 1))


@semantics(M.CLC)
def lift_clc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.set_flag_const("cf", 0)


@semantics(M.STC)
def lift_stc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.set_flag_const("cf", 1)


@semantics(M.CMC)
def lift_cmc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.set_flag("cf", ctx.b.xori(ctx.flag("cf"), 1))


@semantics(M.CLD)
def lift_cld(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.set_flag_const("df", 0)


@semantics(M.STD)
def lift_std(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.set_flag_const("df", 1)


@semantics(M.LAHF)
def lift_lahf(ctx: LiftContext, ins: ix.Instruction) -> None:
    """AH = SF ZF 0 AF 0 PF 1 CF."""
    ctx.set_reg(R.AH, _pack_flags(ctx, _AH_FLAGS, RFLAGS_FIXED))


@semantics(M.SAHF)
def lift_sahf(ctx: LiftContext, ins: ix.Instruction) -> None:
    _unpack_flags(ctx, ctx.get_reg(R.AH), _AH_FLAGS)


def _stack_bits(ins: ix.Instruction) -> int:
    """16 for the 0x66-prefixed pushf/popf, 64 otherwise."""
    return 8 * abs(ins.stack_pointer_increment)


@semantics(M.PUSHF, M.PUSHFQ)
def lift_pushf(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.push(_pack_flags(ctx, FLAG_NAMES, RFLAGS_PUSHED_REST), _stack_bits(ins))


@semantics(M.POPF, M.POPFQ)
def lift_popf(ctx: LiftContext, ins: ix.Instruction) -> None:
    _unpack_flags(ctx, ctx.pop(_stack_bits(ins)), FLAG_NAMES)


@semantics(M.UD2)
def lift_ud2(ctx: LiftContext, ins: ix.Instruction) -> None:
    """#UD at this instruction (a trapcond that always fires; the exit after it is never reached)."""
    b = ctx.b
    zero = b.const(0)
    b.trapcond(Cond.EQ, zero, zero, Excp.INVALID_OPCODE)
    ctx.exit(Exit.FAULT, ins.ip)


@semantics(M.INT3, M.INT)
def lift_int(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Software interrupt: leave with Exit.INT at this instruction; the runtime decodes the vector."""
    ctx.exit(Exit.INT, ins.ip)
