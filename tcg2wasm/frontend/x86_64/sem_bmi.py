"""BMI1, BMI2 and MOVBE: andn, bextr, blsi, blsmsk, blsr, bzhi, mulx, pdep, pext, rorx, sarx, shlx, shrx, movbe.

The VEX forms read their operands like any other instruction (32 or 64 bits,
the second source may be memory); tzcnt (BMI1) is in sem_bits.py. pdep and
pext have no wasm instruction: they are unrolled over the 32 or 64 mask bits
(core ops: the lowest set bit of the mask each step). Flags the SDM leaves
undefined (AF, PF, and SF for bextr) are computed anyway and masked by the
tests, as everywhere.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, IRBuilder, Temp

M = ix.Mnemonic


def _mask(bits: int) -> int:
    return (1 << bits) - 1


def _logic_flags(ctx: LiftContext, res: Temp, bits: int, cf: Temp | None = None) -> None:
    """ZF, SF (and PF) from the result, OF = 0, CF = ``cf`` (0 when None)."""
    ctx.set_zsp(res, bits)
    ctx.set_flag_const("of", 0)
    ctx.set_flag_const("af", 0)
    if cf is None:
        ctx.set_flag_const("cf", 0)
    else:
        ctx.set_flag("cf", cf)


@semantics(M.ANDN)
def lift_andn(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    res = b.andi(b.andc(ctx.read(2), ctx.read(1)), _mask(bits))
    ctx.write(0, res)
    _logic_flags(ctx, res, bits)


@semantics(M.BEXTR)
def lift_bextr(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Bits [start, start + len) of the source: start = control[7:0], len = control[15:8]."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src, control = ctx.read(1), ctx.read(2)
    start, length = b.extract(control, 0, 8), b.extract(control, 8, 8)
    shifted = b.movcond(Cond.LTU, start, b.const(bits), b.shr(src, start), b.const(0))
    low_bits = b.sub(b.shl(b.const(1), length), b.const(1))
    res = b.movcond(Cond.LTU, length, b.const(bits), b.and_(shifted, low_bits), shifted)
    ctx.write(0, res)
    _logic_flags(ctx, res, bits)


_BLS = {M.BLSI: "blsi", M.BLSMSK: "blsmsk", M.BLSR: "blsr"}


@semantics(*_BLS)
def lift_bls(ctx: LiftContext, ins: ix.Instruction) -> None:
    """blsi: src & -src (CF = src != 0); blsmsk: src ^ (src - 1); blsr: src & (src - 1) (CF = src == 0)."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src = ctx.read(1)
    kind = _BLS[ins.mnemonic]
    if kind == "blsi":
        res, cf = b.and_(src, b.neg(src)), b.setcondi(Cond.NE, src, 0)
    elif kind == "blsmsk":
        res, cf = b.xor(src, b.addi(src, -1)), b.setcondi(Cond.EQ, src, 0)
    else:
        res, cf = b.and_(src, b.addi(src, -1)), b.setcondi(Cond.EQ, src, 0)
    res = b.andi(res, _mask(bits))
    ctx.write(0, res)
    _logic_flags(ctx, res, bits, cf)


@semantics(M.BZHI)
def lift_bzhi(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The source with the bits from index[7:0] up cleared; CF = index >= the operand width."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src, index = ctx.read(1), b.extract(ctx.read(2), 0, 8)
    in_range = b.setcondi(Cond.LTU, index, bits)
    kept = b.and_(src, b.sub(b.shl(b.const(1), index), b.const(1)))
    res = b.movcond(Cond.LTU, index, b.const(bits), kept, src)
    ctx.write(0, res)
    _logic_flags(ctx, res, bits, b.xori(in_range, 1))


@semantics(M.MULX)
def lift_mulx(ctx: LiftContext, ins: ix.Instruction) -> None:
    """op0:op1 = rdx (edx) * source, unsigned; no flags. With op0 = op1 the high half is kept."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src = ctx.read(2)
    multiplier = ctx.get_gpr("rdx")
    if bits == 64:
        lo, hi = b.mulu2(multiplier, src)
    else:
        product = b.mul(b.ext32u(multiplier), src)
        lo, hi = b.ext32u(product), b.shri(product, 32)
    ctx.write(1, lo)
    ctx.write(0, hi)


def _pdep_pext(b: IRBuilder, src: Temp, mask: Temp, bits: int, deposit: bool) -> Temp:
    """Unrolled over the mask's bits, lowest first: each step takes its lowest set bit."""
    res, k = b.const(0), b.const(1)
    for _ in range(bits):
        low = b.and_(mask, b.neg(mask))  # the lowest set bit left (0 when none)
        if deposit:  # source bit i goes to the i-th set bit of the mask
            res = b.or_(res, b.movcond(Cond.TSTNE, src, k, low, b.const(0)))
        else:  # the source bit under the i-th set bit of the mask goes to bit i
            res = b.or_(res, b.movcond(Cond.TSTNE, src, low, k, b.const(0)))
        mask = b.xor(mask, low)
        k = b.shli(k, 1)
    return res


@semantics(M.PDEP, M.PEXT)
def lift_pdep_pext(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = ctx.op_bits(0)
    ctx.write(0, _pdep_pext(ctx.b, ctx.read(1), ctx.read(2), bits, ins.mnemonic == M.PDEP))


@semantics(M.RORX)
def lift_rorx(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    bits = ctx.op_bits(0)
    n = ins.immediate(2) & (bits - 1)
    src = ctx.read(1)
    if n == 0:
        ctx.write(0, src)
        return
    ctx.write(0, b.andi(b.or_(b.shri(src, n), b.shli(src, bits - n)), _mask(bits)))


_SHIFTX = {M.SARX: "sar", M.SHLX: "shl", M.SHRX: "shr"}


@semantics(*_SHIFTX)
def lift_shiftx(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Shift by the count register modulo the width; no flags."""
    b = ctx.b
    bits = ctx.op_bits(0)
    src, count = ctx.read(1), b.andi(ctx.read(2), bits - 1)
    kind = _SHIFTX[ins.mnemonic]
    if kind == "sar":
        res = b.sar(b.sext(src, bits) if bits < 64 else src, count)
    elif kind == "shl":
        res = b.shl(src, count)
    else:
        res = b.shr(src, count)
    ctx.write(0, res)


@semantics(M.MOVBE)
def lift_movbe(ctx: LiftContext, ins: ix.Instruction) -> None:
    """A load or store with the bytes reversed (16 bits: only the low word of a register is written)."""
    bits = ctx.op_bits(0)
    ctx.write(0, ctx.b.bswap(ctx.read(1), bits))
