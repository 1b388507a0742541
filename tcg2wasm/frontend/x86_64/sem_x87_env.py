"""x87 environment and state images: fnstenv/fldenv, fnsave/frstor, fxsave/fxrstor (and the 64-bit forms).

Layouts as the CPU writes them in 64-bit mode (measured on an AMD EPYC with a
static C probe; docs/x87.md):

* fnstenv, 28 bytes: FCW, FSW, the full tag word (2 bits per physical register:
  valid, zero, special, empty), each in the low half of a dword whose high half
  reads 0xffff; FIP (32 bits); FCS = 0x33 and FOP in bits 16-26; FDP (32 bits);
  FDS = 0 with 0xffff above. Then every exception is masked.
* fnsave: that environment and ST0-ST7 (10 bytes each, stack order), then fninit.
* fxsave: FCW, FSW, the abridged tag byte, FOP, FIP, FDP (64-bit in fxsave64,
  else 32 bits + selector), MXCSR, MXCSR_MASK 0x0002ffff, ST0-ST7 in 16-byte
  slots (the 6 bytes above each value zero), xmm0-15; bytes 416-511 untouched.
  This CPU stores FOP, FIP and FDP as 0 unless an unmasked exception is pending.

The tag words are by physical register, the stack registers by position: the
translation rotates the tags by TOP. A TOP loaded by fldenv (or set by fninit)
rotates the stack positions too, since the registers do not move physically.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm import abi
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.x87_state import TOP_SHIFT, Fpu, reset_fpu, rotate_to_top, rotl, top_of
from tcg2wasm.ir import Cond, Temp
from tcg2wasm.ir import x87_float as xf

M = ix.Mnemonic
MS = ix.MemorySize
FCS = 0x33  # the selector fnstenv stores with FIP (the user code segment of 64-bit Linux)
MXCSR_MASK = 0x0002_FFFF  # the MXCSR bits this CPU implements (DAZ included)


def physical_tags(fpu: Fpu) -> Temp:
    """The abridged tag byte by physical register (bit j: R_j in use)."""
    return rotl(fpu.b, fpu.tag, top_of(fpu), 8)


def full_tag_word(fpu: Fpu) -> Temp:
    """fnstenv's tag word: per physical register 00 valid, 01 zero, 10 special, 11 empty."""
    b = fpu.b
    word = b.const(0)
    for i in range(8):
        lo, hi = fpu.reg(i)
        exp = b.andi(hi, 0x7FFF)
        zero = b.and_(b.setcondi(Cond.EQ, exp, 0), b.setcondi(Cond.EQ, lo, 0))
        special = b.or_(b.or_(b.setcondi(Cond.EQ, exp, 0x7FFF), b.setcondi(Cond.EQ, exp, 0)),
                        b.setcondi(Cond.GE, lo, 0))  # J clear: unnormal (or a denormal, caught above)
        kind = b.movcond(Cond.NE, zero, b.const(0), b.const(1), b.shli(special, 1))
        valid = b.extract(fpu.tag, i, 1)
        kind = b.movcond(Cond.NE, valid, b.const(0), kind, b.const(3))
        word = b.or_(word, b.shli(kind, 2 * i))
    return rotl(b, word, b.shli(top_of(fpu), 1), 16)


def _tags_from_word(fpu: Fpu, word: Temp, new_top: Temp) -> Temp:
    """fldenv: a register is in use unless its two tag bits are 11; by position for ``new_top``."""
    b = fpu.b
    phys = b.const(0)
    for j in range(8):
        bits = b.extract(word, 2 * j, 2)
        phys = b.or_(phys, b.shli(b.setcondi(Cond.NE, bits, 3), j))
    return rotl(b, phys, b.andi(b.sub(b.const(8), new_top), 7), 8)


def _env_form(ins: ix.Instruction) -> None:
    if ins.memory_size not in (MS.FPU_ENV28, MS.FPU_STATE108):
        raise Unsupported("x87 environment with 16-bit operand size")


def store_env(ctx: LiftContext, fpu: Fpu, addr: Temp) -> None:
    """The 28-byte environment (the fields in the order the CPU writes them)."""
    b = ctx.b
    high = 0xFFFF_0000
    fields = [
        b.ori(fpu.cw, high), b.ori(fpu.status_word(), high), b.ori(full_tag_word(fpu), high),
        b.ext32u(b.get_global("fpip")), b.or_(b.const(FCS), b.shli(b.get_global("fpop"), 16)),
        b.ext32u(b.get_global("fpdp")), b.const(high),
    ]
    for k in range(len(fields) - 1, -1, -1):  # the last dword first: a fault leaves nothing written
        ctx.store(b.addi(addr, 4 * k), fields[k], 32)


def load_env(ctx: LiftContext, fpu: Fpu, addr: Temp, rotate: bool) -> None:
    b = ctx.b
    words = [ctx.load(b.addi(addr, 4 * k), 32) for k in range(7)]
    sw = b.andi(words[1], 0xFFFF & ~(xf.ES | xf.BUSY))
    new_top = b.extract(sw, TOP_SHIFT, 3)
    tags = _tags_from_word(fpu, words[2], new_top)
    if rotate:
        rotate_to_top(fpu, new_top)
    b.set_global("fpcw", b.ori(b.andi(words[0], abi.FPCW_KEPT), abi.FPCW_ONES))
    b.set_global("fpsw", sw)
    b.set_global("fptag", tags)
    b.set_global("fpip", words[3])
    b.set_global("fpop", b.extract(words[4], 16, 11))
    b.set_global("fpdp", words[5])


@semantics(M.FNSTENV)
def lift_fnstenv(ctx: LiftContext, ins: ix.Instruction) -> None:
    _env_form(ins)
    fpu = Fpu(ctx)
    store_env(ctx, fpu, ctx.ea())
    ctx.b.set_global("fpcw", ctx.b.ori(fpu.cw, xf.EXCEPTIONS))


@semantics(M.FLDENV)
def lift_fldenv(ctx: LiftContext, ins: ix.Instruction) -> None:
    _env_form(ins)
    load_env(ctx, Fpu(ctx), ctx.ea(), rotate=True)


@semantics(M.FNSAVE)
def lift_fnsave(ctx: LiftContext, ins: ix.Instruction) -> None:
    _env_form(ins)
    fpu = Fpu(ctx)
    b = ctx.b
    addr = ctx.ea()
    for i in range(7, -1, -1):
        lo, hi = fpu.reg(i)
        ctx.store(b.addi(addr, 28 + 10 * i + 8), hi, 16)
        ctx.store(b.addi(addr, 28 + 10 * i), lo, 64)
    store_env(ctx, fpu, addr)
    reset_fpu(fpu)


@semantics(M.FRSTOR)
def lift_frstor(ctx: LiftContext, ins: ix.Instruction) -> None:
    _env_form(ins)
    fpu = Fpu(ctx)
    b = ctx.b
    addr = ctx.ea()
    regs = [(ctx.load(b.addi(addr, 28 + 10 * i), 64), ctx.load(b.addi(addr, 28 + 10 * i + 8), 16))
            for i in range(8)]
    load_env(ctx, fpu, addr, rotate=False)
    for i, value in enumerate(regs):
        fpu.set_reg(i, value)


# -- fxsave / fxrstor ------------------------------------------------------------------------------
def _check_alignment(ctx: LiftContext, addr: Temp) -> None:
    """A 512-byte image must be 16-byte aligned (#GP otherwise)."""
    b = ctx.b
    b.trapcond(Cond.TSTNE, addr, b.const(15), abi.Excp.GP)


@semantics(M.FXSAVE, M.FXSAVE64)
def lift_fxsave(ctx: LiftContext, ins: ix.Instruction) -> None:
    fpu = Fpu(ctx)
    b = ctx.b
    addr = ctx.ea()
    _check_alignment(ctx, addr)
    wide = ins.mnemonic == M.FXSAVE64
    pending = b.andc(b.andi(fpu.sw, xf.EXCEPTIONS), fpu.cw)
    zero = b.const(0)

    def if_pending(value: Temp) -> Temp:
        return b.movcond(Cond.NE, pending, zero, value, zero)

    fip, fdp = if_pending(b.get_global("fpip")), if_pending(b.get_global("fpdp"))
    if not wide:
        fip = b.or_(b.ext32u(fip), b.shli(if_pending(b.const(FCS)), 32))
        fdp = b.ext32u(fdp)
    xmm = [ctx.get_xmm(ix.Register.XMM0 + n) for n in range(16)]
    for n in range(15, -1, -1):
        ctx.store(b.addi(addr, 160 + 16 * n + 8), xmm[n][1], 64)
        ctx.store(b.addi(addr, 160 + 16 * n), xmm[n][0], 64)
    for i in range(7, -1, -1):
        lo, hi = fpu.reg(i)
        ctx.store(b.addi(addr, 32 + 16 * i + 8), hi, 64)  # the 6 bytes above the value: zero
        ctx.store(b.addi(addr, 32 + 16 * i), lo, 64)
    ctx.store(b.addi(addr, 24), b.or_(b.get_global("mxcsr"), b.const(MXCSR_MASK << 32)), 64)
    ctx.store(b.addi(addr, 16), fdp, 64)
    ctx.store(b.addi(addr, 8), fip, 64)
    head = b.or_(b.or_(fpu.cw, b.shli(fpu.status_word(), 16)),
                 b.or_(b.shli(physical_tags(fpu), 32), b.shli(if_pending(b.get_global("fpop")), 48)))
    ctx.store(addr, head, 64)


@semantics(M.FXRSTOR, M.FXRSTOR64)
def lift_fxrstor(ctx: LiftContext, ins: ix.Instruction) -> None:
    fpu = Fpu(ctx)
    b = ctx.b
    addr = ctx.ea()
    _check_alignment(ctx, addr)
    wide = ins.mnemonic == M.FXRSTOR64
    head, fip, fdp = (ctx.load(b.addi(addr, k), 64) for k in (0, 8, 16))
    mxcsr = ctx.load(b.addi(addr, 24), 32)
    b.trapcond(Cond.TSTNE, mxcsr, b.const(~MXCSR_MASK & 0xFFFF_FFFF), abi.Excp.GP)
    regs = [(ctx.load(b.addi(addr, 32 + 16 * i), 64), ctx.load(b.addi(addr, 32 + 16 * i + 8), 16))
            for i in range(8)]
    xmm = [(ctx.load(b.addi(addr, 160 + 16 * n), 64), ctx.load(b.addi(addr, 168 + 16 * n), 64))
           for n in range(16)]
    sw = b.andi(b.extract(head, 16, 16), 0xFFFF & ~(xf.ES | xf.BUSY))
    new_top = b.extract(sw, TOP_SHIFT, 3)
    b.set_global("fpcw", b.ori(b.andi(b.extract(head, 0, 16), abi.FPCW_KEPT), abi.FPCW_ONES))
    b.set_global("fpsw", sw)
    b.set_global("fptag", rotl(b, b.extract(head, 32, 8), b.andi(b.sub(b.const(8), new_top), 7), 8))
    b.set_global("fpop", b.extract(head, 48, 11))
    b.set_global("fpip", fip if wide else b.ext32u(fip))
    b.set_global("fpdp", fdp if wide else b.ext32u(fdp))
    b.set_global("mxcsr", mxcsr)
    for i, value in enumerate(regs):
        fpu.set_reg(i, value)
    for n, (lo, hi) in enumerate(xmm):
        ctx.set_xmm(ix.Register.XMM0 + n, lo, hi)
