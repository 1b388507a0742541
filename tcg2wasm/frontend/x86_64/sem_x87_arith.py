"""x87 arithmetic, compares and transcendentals: each instruction is one x87 op plus stack bookkeeping.

Operand forms (Intel syntax, iced-x86's operands): ``fadd st0, st(i)`` and
``fadd st(i), st0`` write their first operand, ``faddp st(i), st0`` also pops,
``fadd m32/m64`` and ``fiadd m16/m32`` write st0. The reversed mnemonics
(fsubr, fdivr) compute the second operand op the first. A memory operand is
converted first (``MemFormat.F32_OPERAND``: an SNaN stays signaling, a
denormal raises DE through the op), so NaN choice and flags are those of the
instruction on the CPU.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_x87 import convert_load, load_memory, memory_format
from tcg2wasm.frontend.x86_64.x87_state import CONDITION_BITS, Fpu, Value, st_index
from tcg2wasm.ir import Cond, Temp
from tcg2wasm.ir import x87_float as xf
from tcg2wasm.ir.x87_kinds import Arith, MemFormat, Unary, Unary2

M = ix.Mnemonic
OK = ix.OpKind

_KINDS = {
    M.FADD: Arith.ADD, M.FADDP: Arith.ADD, M.FIADD: Arith.ADD,
    M.FSUB: Arith.SUB, M.FSUBP: Arith.SUB, M.FISUB: Arith.SUB,
    M.FSUBR: Arith.SUBR, M.FSUBRP: Arith.SUBR, M.FISUBR: Arith.SUBR,
    M.FMUL: Arith.MUL, M.FMULP: Arith.MUL, M.FIMUL: Arith.MUL,
    M.FDIV: Arith.DIV, M.FDIVP: Arith.DIV, M.FIDIV: Arith.DIV,
    M.FDIVR: Arith.DIVR, M.FDIVRP: Arith.DIVR, M.FIDIVR: Arith.DIVR,
}
_POPS = {M.FADDP, M.FSUBP, M.FSUBRP, M.FMULP, M.FDIVP, M.FDIVRP}
_OPERAND_FORMATS = {MemFormat.F32: MemFormat.F32_OPERAND, MemFormat.F64: MemFormat.F64_OPERAND,
                    MemFormat.I16: MemFormat.I16, MemFormat.I32: MemFormat.I32}


def memory_operand(ctx: LiftContext, fpu: Fpu, ins: ix.Instruction) -> tuple[Value, Temp, Temp]:
    """(value, load flags, ea) of an arithmetic/compare memory operand, converted to extended."""
    addr = ctx.ea()
    fmt = memory_format(ins)
    if fmt is None or fmt not in _OPERAND_FORMATS:
        raise Unsupported(f"x87 arithmetic operand {ins.memory_size}")
    raw = load_memory(ctx, addr, fmt)
    value, flags = convert_load(fpu, raw, _OPERAND_FORMATS[MemFormat(fmt)])
    return value, flags, addr


def arith_op(fpu: Fpu, kind: int, a: Value, c: Value, empty: Temp) -> tuple[Value, Temp]:
    b = fpu.b
    lo, hi, flags = b.new_temp(), b.new_temp(), b.new_temp()
    b.emit("x87_arith", lo, hi, flags, a[0], a[1], c[0], c[1], fpu.cw, empty, kind)
    return (lo, hi), flags


@semantics(*_KINDS)
def lift_arith(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.has_lock_prefix:
        raise Unsupported("lock on x87 arithmetic")
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    kind = _KINDS[ins.mnemonic]
    addr = None
    if ins.op_kind(0) == OK.MEMORY:
        c, load_flags, addr = memory_operand(ctx, fpu, ins)
        dest, a = 0, fpu.reg(0)
        empty = b.or_(fpu.empty(0), b.andi(load_flags, xf.DENORMAL_SOURCE))
    else:
        dest = st_index(ins.op_register(0))
        src = st_index(ins.op_register(1)) if ins.op_count == 2 else 0
        a, c = fpu.reg(dest), fpu.reg(src)
        empty = fpu.empty(dest, src)
    result, flags = arith_op(fpu, kind, a, c, empty)
    fpu.note_instruction(addr)

    def writes() -> None:
        fpu.set_reg(dest, result)
        fpu.set_tag_bit(dest, True)
        if ins.mnemonic in _POPS:
            fpu.pop()

    fpu.guarded(flags, writes)
    fpu.merge_status(flags)


# -- compares ---------------------------------------------------------------------------------------
_COMPARES = {M.FCOM: (False, 0), M.FCOMP: (False, 1), M.FCOMPP: (False, 2), M.FUCOM: (True, 0),
             M.FUCOMP: (True, 1), M.FUCOMPP: (True, 2), M.FICOM: (False, 0), M.FICOMP: (False, 1),
             M.FTST: (False, 0)}
_COMPARES_TO_FLAGS = {M.FCOMI: (False, 0), M.FCOMIP: (False, 1), M.FUCOMI: (True, 0), M.FUCOMIP: (True, 1)}


def _compare_operands(ctx: LiftContext, fpu: Fpu, ins: ix.Instruction) -> tuple[Value, Value, Temp, Temp | None]:
    b = ctx.b
    if ins.mnemonic == M.FTST:
        return fpu.reg(0), (b.const(0), b.const(0)), fpu.empty(0), None
    if ins.op_count and ins.op_kind(0) == OK.MEMORY:
        c, load_flags, addr = memory_operand(ctx, fpu, ins)
        return fpu.reg(0), c, b.or_(fpu.empty(0), b.andi(load_flags, xf.DENORMAL_SOURCE)), addr
    i = st_index(ins.op_register(ins.op_count - 1)) if ins.op_count else 1
    return fpu.reg(0), fpu.reg(i), fpu.empty(0, i), None


def compare_op(fpu: Fpu, a: Value, c: Value, empty: Temp, quiet: bool) -> Temp:
    flags = fpu.b.new_temp()
    fpu.b.emit("x87_compare", flags, a[0], a[1], c[0], c[1], empty, int(quiet))
    return flags


def _unmasked_invalid(fpu: Fpu, flags: Temp) -> Temp:
    """NO_WRITE when the compare raised IE and IE is unmasked (no pop; the codes are still set)."""
    b = fpu.b
    return b.or_(flags, b.shli(b.andc(b.andi(flags, xf.IE), fpu.cw), 16))


@semantics(*_COMPARES)
def lift_fcom(ctx: LiftContext, ins: ix.Instruction) -> None:
    """C0 C2 C3 from the compare (C1 cleared); fcomp/fcompp pop once or twice."""
    fpu = Fpu(ctx)
    fpu.check_pending()
    quiet, pops = _COMPARES[ins.mnemonic]
    a, c, empty, addr = _compare_operands(ctx, fpu, ins)
    flags = _unmasked_invalid(fpu, compare_op(fpu, a, c, empty, quiet))
    fpu.note_instruction(addr)

    def writes() -> None:
        for _ in range(pops):
            fpu.pop()

    fpu.guarded(flags, writes)  # an unmasked IE stops the pops, not the condition codes (measured)
    fpu.merge_status(flags, defined=CONDITION_BITS)


@semantics(*_COMPARES_TO_FLAGS)
def lift_fcomi(ctx: LiftContext, ins: ix.Instruction) -> None:
    """ZF PF CF from the compare (OF SF AF cleared); C1 kept unless a stack fault clears it; the p forms pop."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    quiet, pops = _COMPARES_TO_FLAGS[ins.mnemonic]
    a, c, empty, _ = _compare_operands(ctx, fpu, ins)
    flags = _unmasked_invalid(fpu, compare_op(fpu, a, c, empty, quiet))
    fpu.note_instruction()

    ctx.set_flag("zf", b.extract(flags, 14, 1))
    ctx.set_flag("pf", b.extract(flags, 10, 1))
    ctx.set_flag("cf", b.extract(flags, 8, 1))
    for name in ("of", "sf", "af"):
        ctx.set_flag_const(name, 0)

    def writes() -> None:
        for _ in range(pops):
            fpu.pop()

    fpu.guarded(flags, writes)
    fpu.merge_status_keeping_c1(b.andi(flags, ~CONDITION_BITS & 0xFFFF))


@semantics(M.FXAM)
def lift_fxam(ctx: LiftContext, ins: ix.Instruction) -> None:
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    flags = b.new_temp()
    b.emit("x87_examine", flags, *fpu.reg(0), fpu.empty(0))
    fpu.note_instruction()
    fpu.merge_status(flags, defined=CONDITION_BITS)


# -- one-operand ops ------------------------------------------------------------------------------------
_UNARY = {M.FSQRT: Unary.SQRT, M.FRNDINT: Unary.RNDINT, M.F2XM1: Unary.F2XM1, M.FSIN: Unary.SIN,
          M.FCOS: Unary.COS}


@semantics(*_UNARY)
def lift_unary(ctx: LiftContext, ins: ix.Instruction) -> None:
    """st0 = op(st0); fsin/fcos also report C2 (operand out of range: st0 unchanged)."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    lo, hi, flags = b.new_temp(), b.new_temp(), b.new_temp()
    b.emit("x87_unary", lo, hi, flags, *fpu.reg(0), fpu.cw, fpu.empty(0), _UNARY[ins.mnemonic])
    fpu.note_instruction()

    def writes() -> None:
        fpu.set_reg(0, (lo, hi))
        fpu.set_tag_bit(0, True)

    fpu.guarded(flags, writes)
    fpu.merge_status(flags, defined=xf.C1 | xf.C2 if ins.mnemonic in (M.FSIN, M.FCOS) else xf.C1)


_UNARY2 = {M.FXTRACT: Unary2.XTRACT, M.FSINCOS: Unary2.SINCOS, M.FPTAN: Unary2.PTAN}


@semantics(*_UNARY2)
def lift_unary2(ctx: LiftContext, ins: ix.Instruction) -> None:
    """st0 = first result, then push the second (fxtract: exponent, significand; fsincos: sin, cos)."""
    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    out = [b.new_temp() for _ in range(5)]
    b.emit("x87_unary2", *out, *fpu.reg(0), fpu.cw, fpu.empty(0), _UNARY2[ins.mnemonic])
    first, second, flags = (out[0], out[1]), (out[2], out[3]), out[4]
    second, flags = fpu.push_guard(second, flags)
    fpu.note_instruction()
    # C2 set (sincos/ptan operand out of range): st0 unchanged and nothing pushed
    no_push = b.or_(flags, b.shli(b.extract(flags, 10, 1), 16)) if ins.mnemonic != M.FXTRACT else flags

    def writes() -> None:
        fpu.set_reg(0, first)
        fpu.set_tag_bit(0, True)
        fpu.push(second)

    fpu.guarded(no_push, writes)
    fpu.merge_status(flags, defined=xf.C1 | xf.C2 if ins.mnemonic != M.FXTRACT else xf.C1)


_BINARY = {M.FSCALE: (Arith.SCALE, 0), M.FPREM: (Arith.PREM, 0), M.FPREM1: (Arith.PREM1, 0),
           M.FYL2X: (Arith.YL2X, 1), M.FYL2XP1: (Arith.YL2XP1, 1), M.FPATAN: (Arith.PATAN, 1)}


@semantics(*_BINARY)
def lift_binary(ctx: LiftContext, ins: ix.Instruction) -> None:
    """fscale, fprem, fprem1 (st0 = st0 op st1; fprem's C0-C3), fyl2x, fyl2xp1, fpatan (st1 = ..., pop)."""
    fpu = Fpu(ctx)
    fpu.check_pending()
    kind, pops = _BINARY[ins.mnemonic]
    result, flags = arith_op(fpu, kind, fpu.reg(0), fpu.reg(1), fpu.empty(0, 1))
    fpu.note_instruction()
    dest = 1 if pops else 0

    def writes() -> None:
        fpu.set_reg(dest, result)
        fpu.set_tag_bit(dest, True)
        if pops:
            fpu.pop()

    fpu.guarded(flags, writes)
    if ins.mnemonic in (M.FPREM, M.FPREM1):
        fpu.merge_status_codes(flags)
    else:
        fpu.merge_status(flags)


# -- fcmovcc ---------------------------------------------------------------------------------------------
_FCMOV = {M.FCMOVB: ("cf",), M.FCMOVE: ("zf",), M.FCMOVBE: ("cf", "zf"), M.FCMOVU: ("pf",),
          M.FCMOVNB: ("cf",), M.FCMOVNE: ("zf",), M.FCMOVNBE: ("cf", "zf"), M.FCMOVNU: ("pf",)}
_NEGATED = {M.FCMOVNB, M.FCMOVNE, M.FCMOVNBE, M.FCMOVNU}


@semantics(*_FCMOV)
def lift_fcmov(ctx: LiftContext, ins: ix.Instruction) -> None:
    """st0 = st(i) if the condition holds; an empty operand is a stack fault whatever the condition."""
    from tcg2wasm.frontend.x86_64.sem_x87 import _underflow_checked

    fpu = Fpu(ctx)
    b = ctx.b
    fpu.check_pending()
    i = st_index(ins.op_register(1))
    cond = ctx.flag(_FCMOV[ins.mnemonic][0])
    for name in _FCMOV[ins.mnemonic][1:]:
        cond = b.or_(cond, ctx.flag(name))
    if ins.mnemonic in _NEGATED:
        cond = b.xori(cond, 1)
    (lo, hi), flags = _underflow_checked(fpu, fpu.reg(i), fpu.empty(0, i))
    old_lo, old_hi = fpu.reg(0)
    any_empty = b.setcondi(Cond.NE, fpu.empty(0, i), 0)
    take = b.or_(cond, any_empty)
    new = (b.movcond(Cond.NE, take, b.const(0), lo, old_lo), b.movcond(Cond.NE, take, b.const(0), hi, old_hi))
    fpu.note_instruction()

    def writes() -> None:
        fpu.set_reg(0, new)
        fpu.set_tag_bit(0, True)

    fpu.guarded(flags, writes)
    fpu.merge_status_keeping_c1(flags)
