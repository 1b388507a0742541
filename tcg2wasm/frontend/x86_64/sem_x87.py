"""x87 data movement and control: loads, stores, the stack, constants, the control and status words.

The register stack, tag and status words are IR globals (``x87_state``); the
value conversions are the ``x87_load``/``x87_store``/``x87_const`` ops with the
CPU's semantics (``tcg2wasm/ir/x87_float.py``). ``fnstcw``/``fldcw`` keep the
control word's reserved bits as the CPU does (``abi.fpcw_as_loaded``).
Environment and state images (fnstenv/fldenv, fnsave/frstor) are in
``sem_x87_env``, arithmetic and compares in ``sem_x87_arith``. See docs/x87.md.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm import abi
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.x87_state import Fpu, Value, reset_fpu, st_index
from tcg2wasm.ir import Cond, Temp
from tcg2wasm.ir import x87_float as xf
from tcg2wasm.ir.x87_kinds import Constant, MemFormat

M = ix.Mnemonic
MS = ix.MemorySize
OK = ix.OpKind

#: Memory operand sizes -> the format x87_load/x87_store convert (FLOAT80 is a plain copy).
_FORMATS = {MS.FLOAT32: MemFormat.F32, MS.FLOAT64: MemFormat.F64, MS.INT16: MemFormat.I16,
            MS.INT32: MemFormat.I32, MS.INT64: MemFormat.I64, MS.BCD: MemFormat.BCD}
_BITS = {MemFormat.F32: 32, MemFormat.F64: 64, MemFormat.I16: 16, MemFormat.I32: 32, MemFormat.I64: 64,
         MemFormat.I16_TRUNC: 16, MemFormat.I32_TRUNC: 32, MemFormat.I64_TRUNC: 64}
_TRUNCATING = {MemFormat.I16: MemFormat.I16_TRUNC, MemFormat.I32: MemFormat.I32_TRUNC,
               MemFormat.I64: MemFormat.I64_TRUNC}


def _no_lock(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.has_lock_prefix:
        raise Unsupported(f"{ctx.pc:#x}: lock prefix on an x87 instruction (#UD)")


def load_memory(ctx: LiftContext, addr: Temp, fmt: int | None) -> Value:
    """The raw bits of an x87 memory operand: (low 64 bits, the top 16 bits of an m80)."""
    b = ctx.b
    if fmt is None or fmt == MemFormat.BCD:
        return ctx.load(addr, 64), ctx.load(b.addi(addr, 8), 16)
    return ctx.load(addr, _BITS[MemFormat(fmt)]), b.const(0)


def store_memory(ctx: LiftContext, addr: Temp, raw: Value, fmt: int | None) -> None:
    """Store the raw bits; an m80 is written top part first, so a fault leaves nothing written."""
    if fmt is None or fmt == MemFormat.BCD:
        ctx.store(ctx.b.addi(addr, 8), raw[1], 16)
        ctx.store(addr, raw[0], 64)
    else:
        ctx.store(addr, raw[0], _BITS[MemFormat(fmt)])


def memory_format(ins: ix.Instruction) -> int | None:
    size = ins.memory_size
    if size == MS.FLOAT80:
        return None
    if size not in _FORMATS:
        raise Unsupported(f"x87 memory operand {size}")
    return _FORMATS[size]


def convert_load(fpu: Fpu, raw: Value, fmt: int) -> tuple[Value, Temp]:
    b = fpu.b
    lo, hi, flags = b.new_temp(), b.new_temp(), b.new_temp()
    b.emit("x87_load", lo, hi, flags, raw[0], raw[1], fpu.cw, fmt)
    return (lo, hi), flags


def _push_value(fpu: Fpu, value: Value, flags: Temp | None = None) -> None:
    """Push with the overflow check, raise the flags; C1 is cleared unless the push overflowed."""
    guarded_value, flags = fpu.push_guard(value, flags)
    fpu.guarded(flags, lambda: fpu.push(guarded_value))
    fpu.merge_status(flags)


# -- loads ----------------------------------------------------------------------------------------
@semantics(M.FLD, M.FILD, M.FBLD)
def lift_fld(ctx: LiftContext, ins: ix.Instruction) -> None:
    _no_lock(ctx, ins)
    fpu = Fpu(ctx)
    fpu.check_pending()
    if ins.op_kind(0) == OK.REGISTER:
        i = st_index(ins.op_register(0))
        value = fpu.reg(i)
        empty = fpu.empty(i)
        (lo, hi), flags = _underflow_checked(fpu, value, empty)
        fpu.note_instruction()
        _push_value(fpu, (lo, hi), flags)
        return
    addr = ctx.ea()
    fmt = memory_format(ins)
    raw = load_memory(ctx, addr, fmt)
    fpu.note_instruction(addr)
    if fmt is None:
        _push_value(fpu, raw)
        return
    value, flags = convert_load(fpu, raw, fmt)
    _push_value(fpu, value, flags)


def _underflow_checked(fpu: Fpu, value: Value, empty: Temp) -> tuple[Value, Temp]:
    """A register operand: empty gives the indefinite and IE|SF (NO_WRITE when IE is unmasked)."""
    b = fpu.b
    is_empty = b.setcondi(Cond.NE, empty, 0)
    unmasked = b.andc(is_empty, fpu.cw)
    flags = b.or_(b.and_(b.neg(is_empty), b.const(xf.IE | xf.SF)), b.shli(unmasked, 16))
    lo = b.movcond(Cond.NE, is_empty, b.const(0), b.const(xf.INDEFINITE[0]), value[0])
    hi = b.movcond(Cond.NE, is_empty, b.const(0), b.const(xf.INDEFINITE[1]), value[1])
    return (lo, hi), flags


_CONSTANTS = {M.FLDPI: Constant.PI, M.FLDL2E: Constant.L2E, M.FLDL2T: Constant.L2T, M.FLDLG2: Constant.LG2,
              M.FLDLN2: Constant.LN2}


@semantics(M.FLD1, M.FLDZ, M.FLDPI, M.FLDL2E, M.FLDL2T, M.FLDLG2, M.FLDLN2)
def lift_fld_constant(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The constants are rounded by RC (pi, l2e...: measured to be the correctly rounded values)."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    if ins.mnemonic == M.FLD1:
        value: Value = (b.const(xf.J_BIT), b.const(xf.BIAS))
    elif ins.mnemonic == M.FLDZ:
        value = (b.const(0), b.const(0))
    else:
        lo, hi = b.new_temp(), b.new_temp()
        b.emit("x87_const", lo, hi, fpu.cw, _CONSTANTS[ins.mnemonic])
        value = (lo, hi)
    fpu.note_instruction()
    _push_value(fpu, value)


# -- stores ----------------------------------------------------------------------------------------
@semantics(M.FST, M.FSTP, M.FIST, M.FISTP, M.FISTTP, M.FBSTP, M.FSTPNCE)
def lift_fst(ctx: LiftContext, ins: ix.Instruction) -> None:
    _no_lock(ctx, ins)
    fpu = Fpu(ctx)
    fpu.check_pending()
    pops = ins.mnemonic in (M.FSTP, M.FISTP, M.FISTTP, M.FBSTP, M.FSTPNCE)
    if ins.op_kind(0) == OK.REGISTER:
        _store_register(fpu, st_index(ins.op_register(0)), pops)
        return
    addr = ctx.ea()
    fmt = memory_format(ins)
    if ins.mnemonic == M.FISTTP and fmt is not None:
        fmt = _TRUNCATING[MemFormat(fmt)]
    fpu.note_instruction(addr)
    b = ctx.b
    if fmt is None:  # m80: the register's bits (an empty one stores the indefinite)
        raw, flags = _underflow_checked(fpu, fpu.reg(0), fpu.empty(0))
    else:
        lo, hi, flags = b.new_temp(), b.new_temp(), b.new_temp()
        b.emit("x87_store", lo, hi, flags, *fpu.reg(0), fpu.cw, fpu.empty(0), fmt)
        raw = (lo, hi)

    def writes() -> None:
        store_memory(ctx, addr, raw, fmt)
        if pops:
            fpu.pop()

    fpu.guarded(flags, writes)
    fpu.merge_status(flags)


def _store_register(fpu: Fpu, i: int, pops: bool) -> None:
    """fst/fstp st(i): a copy (st0 empty: the indefinite and IE|SF); fstp st0 just pops."""
    value, flags = _underflow_checked(fpu, fpu.reg(0), fpu.empty(0))
    fpu.note_instruction()

    def writes() -> None:
        fpu.set_reg(i, value)
        fpu.set_tag_bit(i, True)
        if pops:
            fpu.pop()

    fpu.guarded(flags, writes)
    fpu.merge_status(flags)


# -- the stack ---------------------------------------------------------------------------------------
@semantics(M.FXCH)
def lift_fxch(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Swap st0 and st(i); an empty one is first replaced by the indefinite (IE|SF), both end in use."""
    fpu = Fpu(ctx)
    fpu.check_pending()
    i = st_index(ins.op_register(1)) if ins.op_count == 2 else 1
    a, fa = _underflow_checked(fpu, fpu.reg(0), fpu.empty(0))
    c, fc = _underflow_checked(fpu, fpu.reg(i), fpu.empty(i))
    flags = ctx.b.or_(fa, fc)
    fpu.note_instruction()

    def writes() -> None:
        fpu.set_reg(0, c)
        fpu.set_reg(i, a)
        ctx.b.set_global("fptag", ctx.b.ori(fpu.tag, 1 | (1 << i)))

    fpu.guarded(flags, writes)
    fpu.merge_status(flags)


@semantics(M.FFREE, M.FFREEP)
def lift_ffree(ctx: LiftContext, ins: ix.Instruction) -> None:
    fpu = Fpu(ctx)
    fpu.check_pending()
    fpu.set_tag_bit(st_index(ins.op_register(0)), False)
    if ins.mnemonic == M.FFREEP:
        fpu.pop()
    ctx.b.set_global("fpsw", ctx.b.andi(fpu.sw, ~xf.C1 & 0xFFFF))  # C1 cleared (measured)
    fpu.note_instruction()


@semantics(M.FINCSTP, M.FDECSTP)
def lift_fincstp(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Rotate the stack without touching the tags of the registers (C1 cleared)."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    regs = [fpu.reg(i) for i in range(8)]
    tag = fpu.tag
    if ins.mnemonic == M.FINCSTP:
        order = [*range(1, 8), 0]
        rotated = b.andi(b.or_(b.shri(tag, 1), b.shli(tag, 7)), 0xFF)
        delta = 1
    else:
        order = [7, *range(7)]
        rotated = b.andi(b.or_(b.shli(tag, 1), b.shri(tag, 7)), 0xFF)
        delta = -1
    for i, j in enumerate(order):
        fpu.set_reg(i, regs[j])
    b.set_global("fptag", rotated)
    top = b.andi(b.addi(b.shri(fpu.sw, 11), delta), 7)
    b.set_global("fpsw", b.andi(b.deposit(fpu.sw, top, 11, 3), ~xf.C1 & 0xFFFF))
    fpu.note_instruction()


@semantics(M.FCHS, M.FABS)
def lift_fchs(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Flip or clear the sign bit (any encoding, NaNs included); empty st0: indefinite, IE|SF."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    (lo, hi), flags = _underflow_checked(fpu, fpu.reg(0), fpu.empty(0))
    fpu.note_instruction()
    sign_flipped = b.xori(hi, 0x8000) if ins.mnemonic == M.FCHS else b.andi(hi, 0x7FFF)
    empty = b.setcondi(Cond.NE, fpu.empty(0), 0)
    new_hi = b.movcond(Cond.NE, empty, b.const(0), hi, sign_flipped)  # the indefinite as it is

    def writes() -> None:
        fpu.set_reg(0, (lo, new_hi))
        fpu.set_tag_bit(0, True)

    fpu.guarded(flags, writes)
    fpu.merge_status(flags)


@semantics(M.FNOP)
def lift_fnop(ctx: LiftContext, ins: ix.Instruction) -> None:
    fpu = Fpu(ctx)
    fpu.check_pending()
    fpu.note_instruction()


@semantics(M.FNENI, M.FNDISI, M.FNSETPM)
def lift_legacy_nop(ctx: LiftContext, ins: ix.Instruction) -> None:
    """8087/287 controls: no-ops on the 387 and later (no pending-exception check)."""


@semantics(M.WAIT)
def lift_wait(ctx: LiftContext, ins: ix.Instruction) -> None:
    Fpu(ctx).check_pending()


# -- control and status words ------------------------------------------------------------------------
def _memory_operand(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.op_count != 1 or ins.op_kind(0) != OK.MEMORY or ins.has_lock_prefix:
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


@semantics(M.FNSTSW)
def lift_fnstsw(ctx: LiftContext, ins: ix.Instruction) -> None:
    """fnstsw m16 / fnstsw ax: the status word with ES and B as the CPU computes them."""
    if ins.has_lock_prefix:
        raise Unsupported("lock fnstsw")
    word = Fpu(ctx).status_word()
    if ins.op_kind(0) == OK.REGISTER:
        ctx.set_reg(ix.Register.AX, word)
    else:
        ctx.store(ctx.ea(), word, 16)


@semantics(M.FNCLEX)
def lift_fnclex(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Clear the exception flags, SF, ES and B (C0-C3 and TOP stay)."""
    b = ctx.b
    b.set_global("fpsw", b.andi(b.get_global("fpsw"), ~(xf.EXCEPTIONS | xf.SF | xf.ES | xf.BUSY) & 0xFFFF))


@semantics(M.FNINIT)
def lift_fninit(ctx: LiftContext, ins: ix.Instruction) -> None:
    reset_fpu(Fpu(ctx))
