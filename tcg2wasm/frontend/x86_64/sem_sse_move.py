"""SSE/SSE2 data movement: movd/movq, the 128-bit moves, movss/movsd, the half moves, non-temporal stores.

An xmm register is two i64 globals (``xmmN_lo``, ``xmmN_hi``). A 128-bit store
is two 8-byte stores ordered so that a store running off the end of a mapping
faults before it has written anything, at the address the CPU reports
(``store_xmm128``).

Alignment: the aligned forms (movdqa, movaps, movapd, movntdq..., and every
other legacy SSE instruction with a 16-byte memory operand) raise #GP when the
address is not 16-byte aligned, as on the CPU (``LiftContext.check_aligned16``;
found by the native oracle, docs/testing.md). Unicorn (QEMU 5) does not check:
a listed known difference.

MMX forms (``mm0``..``mm7`` operands) raise ``Unsupported`` and go to the fallback.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, MemOp, Temp

M = ix.Mnemonic
OK = ix.OpKind
R = ix.Register


def is_xmm(ins: ix.Instruction, i: int) -> bool:
    """Whether operand ``i`` is an xmm register."""
    return ins.op_kind(i) == OK.REGISTER and R.XMM0 <= ins.op_register(i) <= R.XMM15


def memory_bits(ins: ix.Instruction) -> int:
    return 8 * ix.MemorySizeExt.size(ins.memory_size)


def store_xmm128(ctx: LiftContext, addr: Temp, lo: Temp, hi: Temp) -> None:
    """Store 16 bytes as two 8-byte stores, in the order that keeps a fault precise (#GP first if the
    operand must be aligned and is not).

    Low half first, so that a fault reports the lowest address, as the CPU does -- except when
    the low half ends just before a page boundary that the high half starts at or crosses
    (``addr & 0xFFF`` in 0xFF1..0xFF8): then the high half goes first, so that a fault on the second
    page leaves the first unwritten. Before both, a one-byte write probe at ``addr`` (a load with
    ``MemOp.FOR_WRITE``): when the first page cannot be written either, the CPU reports it, at
    ``addr`` (found by ``tcg2wasm fuzz streams``, seed 41022048)."""
    b = ctx.b
    ctx.check_aligned16(addr)
    b.load(addr, MemOp(MemOp.UB | MemOp.FOR_WRITE))
    high = b.addi(addr, 8)
    high_first = b.setcondi(Cond.LTU, b.addi(b.andi(addr, 0xFFF), -0xFF1), 8)
    zero = b.const(0)
    ctx.store(b.movcond(Cond.NE, high_first, zero, high, addr), b.movcond(Cond.NE, high_first, zero, hi, lo), 64)
    ctx.store(b.movcond(Cond.NE, high_first, zero, addr, high), b.movcond(Cond.NE, high_first, zero, lo, hi), 64)



@semantics(M.MOVD, M.MOVQ)
def lift_movd_movq(ctx: LiftContext, ins: ix.Instruction) -> None:
    """xmm <- r/m (zero-extended to 128 bits), r/m <- low bits of xmm, xmm <- low quadword of xmm."""
    if is_xmm(ins, 0):
        # from xmm: its low quadword; from a GPR or memory: the operand's width, zero-extended
        value = ctx.get_xmm(ins.op_register(1))[0] if is_xmm(ins, 1) else ctx.read(1)
        ctx.set_xmm(ins.op_register(0), value, ctx.b.const(0))
        return
    if not is_xmm(ins, 1):
        raise Unsupported("MMX form of movd/movq")
    lo = ctx.get_xmm(ins.op_register(1))[0]
    ctx.write(0, lo)  # 32-bit GPR writes zero-extend; memory stores the operand's width


@semantics(M.MOVDQA, M.MOVDQU, M.MOVAPS, M.MOVUPS, M.MOVAPD, M.MOVUPD, M.MOVNTDQ, M.MOVNTPS, M.MOVNTPD)
def lift_move128(ctx: LiftContext, ins: ix.Instruction) -> None:
    lo, hi = ctx.read_xmm_operand(1)
    if is_xmm(ins, 0):
        ctx.set_xmm(ins.op_register(0), lo, hi)
    elif ctx.is_mem(0):
        store_xmm128(ctx, ctx.ea(), lo, hi)
    else:
        raise Unsupported("128-bit move to a non-xmm operand")


@semantics(M.MOVNTI)
def lift_movnti(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Non-temporal GPR store: a plain store here (there is no cache to bypass)."""
    ctx.write(0, ctx.read(1))


def lift_scalar_move(ctx: LiftContext, ins: ix.Instruction, bits: int) -> None:
    """movss (bits=32) / movsd (bits=64) moves.

    reg <- reg merges the low lane and keeps the rest; reg <- mem zeroes the
    rest of the register; mem <- reg stores the low lane.
    """
    b = ctx.b
    if is_xmm(ins, 0) and is_xmm(ins, 1):
        dst_lo = ctx.get_xmm(ins.op_register(0))[0]
        src_lo = ctx.get_xmm(ins.op_register(1))[0]
        ctx.set_xmm(ins.op_register(0), src_lo if bits == 64 else b.deposit(dst_lo, src_lo, 0, 32), None)
    elif is_xmm(ins, 0):
        ctx.set_xmm(ins.op_register(0), ctx.load(ctx.ea(), bits), b.const(0))
    elif is_xmm(ins, 1) and ctx.is_mem(0):
        ctx.store(ctx.ea(), ctx.get_xmm(ins.op_register(1))[0], bits)
    else:
        raise Unsupported("movss/movsd operands")


@semantics(M.MOVSS)
def lift_movss(ctx: LiftContext, ins: ix.Instruction) -> None:
    lift_scalar_move(ctx, ins, 32)


def lift_movsd_sse(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The SSE2 form of MOVSD; sem_string owns the mnemonic and dispatches here for non-string forms."""
    lift_scalar_move(ctx, ins, 64)


def _move_half(ctx: LiftContext, ins: ix.Instruction, high: bool) -> None:
    """movlps/movlpd (high=False) and movhps/movhpd (high=True): one half <-> m64."""
    if is_xmm(ins, 0) and ctx.is_mem(1):
        value = ctx.load(ctx.ea(), 64)
        ctx.set_xmm(ins.op_register(0), value if not high else None, value if high else None)
    elif ctx.is_mem(0) and is_xmm(ins, 1):
        lo, hi = ctx.get_xmm(ins.op_register(1))
        ctx.store(ctx.ea(), hi if high else lo, 64)
    else:
        raise Unsupported("movlp/movhp operands")


@semantics(M.MOVLPS, M.MOVLPD)
def lift_movlp(ctx: LiftContext, ins: ix.Instruction) -> None:
    _move_half(ctx, ins, high=False)


@semantics(M.MOVHPS, M.MOVHPD)
def lift_movhp(ctx: LiftContext, ins: ix.Instruction) -> None:
    _move_half(ctx, ins, high=True)


@semantics(M.MOVHLPS)
def lift_movhlps(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Low half of the destination <- high half of the source."""
    ctx.set_xmm(ins.op_register(0), ctx.get_xmm(ins.op_register(1))[1], None)


@semantics(M.MOVLHPS)
def lift_movlhps(ctx: LiftContext, ins: ix.Instruction) -> None:
    """High half of the destination <- low half of the source."""
    ctx.set_xmm(ins.op_register(0), None, ctx.get_xmm(ins.op_register(1))[0])
