"""SSE/SSE2 floating point: arithmetic, min/max, compares, comis/ucomis, conversions, ldmxcsr/stmxcsr.

The float ops of the IR (``ops_float.py``) carry x86's NaN rules, so each
instruction is a per-lane application of one op. Packed singles hold two lanes
per 64-bit half (bits 0-31 and 32-63); scalar forms replace the low lane only.

MXCSR: the ops round to nearest with neither flush-to-zero nor
denormals-are-zero, which is how Linux starts programs. So that a program which
changes that still runs right, translated code checks MXCSR once per TB,
before its first float instruction: when RC, FTZ or DAZ is not the default it
leaves the TB with ``Exit.FALLBACK`` at that instruction and the Unicorn
fallback runs it. Instructions whose result cannot depend on RC or FTZ
(compares, min/max, widening, float -> int conversions, which read RC at run
time) check DAZ only; exact int -> float conversions check nothing. No lifted
instruction sets the MXCSR exception flags (bits 0-5); see docs/sse.md.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64 import sem_string  # noqa: F401  (its cmpsd must be registered first, see lift_cmpsd)
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import SEMANTICS, SemFn, semantics
from tcg2wasm.ir import Cond, Excp, Exit, Temp
from tcg2wasm.ir.ops_float import FCond

M = ix.Mnemonic
OK = ix.OpKind
R = ix.Register

MXCSR_DAZ = 1 << 6
MXCSR_RC_SHIFT = 13
MXCSR_FTZ = 1 << 15
#: MXCSR bits whose non-default value changes a rounded result: RC, FTZ, DAZ.
MXCSR_ROUNDING = (3 << MXCSR_RC_SHIFT) | MXCSR_FTZ | MXCSR_DAZ
#: Bits ldmxcsr accepts (MXCSR_MASK of CPUs with DAZ); others raise #GP.
MXCSR_WRITABLE = 0xFFFF

#: Per-TB record of the MXCSR bits already checked (a LiftContext lifts one TB).
_checked: weakref.WeakKeyDictionary[LiftContext, int] = weakref.WeakKeyDictionary()

Lane = Callable[[Temp, Temp], Temp]


# -- helpers ---------------------------------------------------------------------------
def _op(ctx: LiftContext, name: str, *args: Temp | int) -> Temp:
    out = ctx.b.new_temp()
    ctx.b.emit(name, out, *args)
    return out


def require_mxcsr_default(ctx: LiftContext, bits: int) -> None:
    """Leave to the fallback unless MXCSR ``bits`` are all clear (emitted once per TB and bit set).

    Call it after the operands are read (a faulting load stays precise either way) and
    before any register is written.
    """
    done = _checked.get(ctx, 0)
    if done & bits == bits:
        return
    b = ctx.b
    default = b.new_label()
    b.brcondi(Cond.TSTEQ, b.get_global("mxcsr"), bits, default)
    b.exit_tb(Exit.FALLBACK, ctx.pc)
    b.set_label(default)
    _checked[ctx] = done | bits


def _xmm_dest(ins: ix.Instruction) -> int:
    if ins.op_kind(0) != OK.REGISTER or not R.XMM0 <= ins.op_register(0) <= R.XMM15:
        raise Unsupported("destination is not an xmm register")
    return ins.op_register(0)


def _f32_pair(ctx: LiftContext, lane: Lane, x: Temp, y: Temp) -> Temp:
    """Apply ``lane`` to both binary32 lanes of two 64-bit halves."""
    b = ctx.b
    low = lane(x, y)
    high = lane(b.extract(x, 32, 32), b.extract(y, 32, 32))
    return b.deposit(low, high, 32, 32)


def _apply_lanes(ctx: LiftContext, ins: ix.Instruction, fmt: str, packed: bool, lane: Lane, guard: int) -> None:
    """dest = lane(dest, src) on every lane (packed) or on the low lane (scalar, rest of dest kept)."""
    dst = _xmm_dest(ins)
    dlo, dhi = ctx.get_xmm(dst)
    slo, shi = ctx.read_xmm_operand(1)
    if guard:
        require_mxcsr_default(ctx, guard)
    b = ctx.b
    if fmt == "f64":
        lo = lane(dlo, slo)
        hi = lane(dhi, shi) if packed else None
    elif packed:
        lo, hi = _f32_pair(ctx, lane, dlo, slo), _f32_pair(ctx, lane, dhi, shi)
    else:
        lo, hi = b.deposit(dlo, lane(dlo, slo), 0, 32), None
    ctx.set_xmm(dst, lo, hi)


def _shape(mnemonic_name: str) -> tuple[str, bool]:
    """(format, packed) from the mnemonic's suffix: ss, sd, ps, pd."""
    suffix = mnemonic_name[-2:].lower()
    return ("f64" if suffix[1] == "d" else "f32"), suffix[0] == "p"


def _family(*bases: str) -> dict[int, str]:
    return {getattr(M, f"{base}{s}"): f"{base}{s}" for base in bases for s in ("SS", "SD", "PS", "PD")}


# -- arithmetic, min/max -------------------------------------------------------------------
_ROUNDED = _family("ADD", "SUB", "MUL", "DIV")
_SQRT = _family("SQRT")
_MINMAX = _family("MIN", "MAX")


@semantics(*_ROUNDED)
def lift_arith(ctx: LiftContext, ins: ix.Instruction) -> None:
    name = _ROUNDED[ins.mnemonic]
    fmt, packed = _shape(name)
    op = f"{name[:3].lower()}_{fmt}"
    _apply_lanes(ctx, ins, fmt, packed, lambda x, y: _op(ctx, op, x, y), MXCSR_ROUNDING)


@semantics(*_SQRT)
def lift_sqrt(ctx: LiftContext, ins: ix.Instruction) -> None:
    fmt, packed = _shape(_SQRT[ins.mnemonic])
    _apply_lanes(ctx, ins, fmt, packed, lambda _x, y: _op(ctx, f"sqrt_{fmt}", y), MXCSR_ROUNDING)


@semantics(*_MINMAX)
def lift_minmax(ctx: LiftContext, ins: ix.Instruction) -> None:
    """x86 min/max: ``dest < src ? dest : src``; a NaN or two zeros give src (the ops' rule). Under
    MXCSR.DAZ a denormal operand is a zero, compared and returned as such (applied here: the fallback,
    Unicorn, returns the denormal; found by the native oracle)."""
    name = _MINMAX[ins.mnemonic]
    fmt, packed = _shape(name)
    op = f"{name[:3].lower()}_{fmt}"
    _apply_lanes(ctx, ins, fmt, packed,
                 lambda x, y: _op(ctx, op, _denormals_as_zero(ctx, fmt, x), _denormals_as_zero(ctx, fmt, y)), 0)


# -- compares ------------------------------------------------------------------------------
def _mask_lane(ctx: LiftContext, fmt: str, cond: int) -> Lane:
    """A lane of all ones when ``cond`` holds, else zeros."""
    b = ctx.b

    def lane(x: Temp, y: Temp) -> Temp:
        ones = b.neg(_op(ctx, f"setcond_{fmt}", x, y, cond))
        return ones if fmt == "f64" else b.ext32u(ones)

    return lane


def _denormals_as_zero(ctx: LiftContext, fmt: str, x: Temp) -> Temp:
    """``x`` with a denormal (zero exponent) replaced by a zero of its sign when MXCSR.DAZ is set."""
    b = ctx.b
    sign, exponent = (1 << 63, 0x7FF0000000000000) if fmt == "f64" else (0x80000000, 0x7F800000)
    zeroed = b.movcond(Cond.TSTEQ, x, b.const(exponent), b.andi(x, sign), x)
    return b.movcond(Cond.TSTNE, b.get_global("mxcsr"), b.const(MXCSR_DAZ), zeroed, x)


def _lift_cmp(ctx: LiftContext, ins: ix.Instruction, fmt: str, packed: bool) -> None:
    """cmpss/sd/ps/pd with predicates 0..7: the CPU ignores imm8 bits 3-7 of the legacy forms (Unicorn
    raises #UD for them). DAZ is applied here, not left to the fallback, so that no such compare
    reaches Unicorn (found by the native oracle, docs/testing.md)."""
    cond = ins.immediate(2) & 7
    mask = _mask_lane(ctx, fmt, cond)
    def lane(x, y):
        return (mask(_denormals_as_zero(ctx, fmt, x), _denormals_as_zero(ctx, fmt, y)))
    _apply_lanes(ctx, ins, fmt, packed, lane, 0)


@semantics(M.CMPSS, M.CMPPS, M.CMPPD)
def lift_cmp(ctx: LiftContext, ins: ix.Instruction) -> None:
    fmt, packed = _shape({M.CMPSS: "ss", M.CMPPS: "ps", M.CMPPD: "pd"}[ins.mnemonic])
    _lift_cmp(ctx, ins, fmt, packed)


_string_cmpsd: SemFn | None = SEMANTICS.pop(M.CMPSD, None)


@semantics(M.CMPSD)
def lift_cmpsd(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The string instruction cmpsd shares iced's mnemonic with the SSE2 compare: dispatch on the form."""
    if ins.is_string_instruction:
        if _string_cmpsd is None:
            raise Unsupported("string cmpsd")
        _string_cmpsd(ctx, ins)
        return
    _lift_cmp(ctx, ins, "f64", False)


@semantics(M.COMISS, M.COMISD, M.UCOMISS, M.UCOMISD)
def lift_comis(ctx: LiftContext, ins: ix.Instruction) -> None:
    """ZF, PF, CF from an unordered compare (unordered sets all three); OF, SF, AF cleared.

    comis and ucomis differ only in which NaNs raise the invalid exception, which is not modelled.
    """
    fmt = "f64" if ins.mnemonic in (M.COMISD, M.UCOMISD) else "f32"
    a = ctx.get_xmm(_xmm_dest(ins))[0]
    b_ = ctx.read_xmm_operand(1)[0]
    require_mxcsr_default(ctx, MXCSR_DAZ)
    setcond = f"setcond_{fmt}"
    ctx.set_flag("zf", _op(ctx, setcond, a, b_, int(FCond.EQ_U)))
    ctx.set_flag("pf", _op(ctx, setcond, a, b_, int(FCond.UNORD)))
    ctx.set_flag("cf", _op(ctx, setcond, a, b_, int(FCond.NGE)))
    for name in ("of", "sf", "af"):
        ctx.set_flag_const(name, 0)


# -- conversions -----------------------------------------------------------------------------
def _rounding_mode(ctx: LiftContext) -> Temp:
    return ctx.b.extract(ctx.b.get_global("mxcsr"), MXCSR_RC_SHIFT, 2)


def _to_int(ctx: LiftContext, value_f64: Temp, bits: int, truncate: bool) -> Temp:
    """binary64 -> int32 (zero-extended) or int64; the non-truncating forms round by MXCSR.RC."""
    if not truncate:
        value_f64 = _op(ctx, "round_f64", value_f64, _rounding_mode(ctx))
    return _op(ctx, f"cvt_i{bits}_from_f64", value_f64)


def _widen(ctx: LiftContext, value: Temp) -> Temp:
    return _op(ctx, "cvt_f64_from_f32", value)


@semantics(M.CVTSI2SD, M.CVTSI2SS)
def lift_cvtsi2(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst = _xmm_dest(ins)
    source = ctx.read_signed(1)  # r/m32 or r/m64
    to_f64 = ins.mnemonic == M.CVTSI2SD
    if not (to_f64 and ctx.op_bits(1) == 32):  # int32 -> binary64 is exact; the others round
        require_mxcsr_default(ctx, MXCSR_ROUNDING)
    b = ctx.b
    lo = ctx.get_xmm(dst)[0]
    if to_f64:
        ctx.set_xmm(dst, _op(ctx, "cvt_f64_from_i64", source), None)
    else:
        ctx.set_xmm(dst, b.deposit(lo, _op(ctx, "cvt_f32_from_i64", source), 0, 32), None)


@semantics(M.CVTTSD2SI, M.CVTSD2SI, M.CVTTSS2SI, M.CVTSS2SI)
def lift_cvt_to_int(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = ctx.op_bits(0)
    source = ctx.read_xmm_operand(1)[0]
    require_mxcsr_default(ctx, MXCSR_DAZ)
    if ins.mnemonic in (M.CVTTSS2SI, M.CVTSS2SI):
        source = _widen(ctx, source)
    truncate = ins.mnemonic in (M.CVTTSD2SI, M.CVTTSS2SI)
    ctx.write(0, _to_int(ctx, source, bits, truncate))


@semantics(M.CVTSS2SD)
def lift_cvtss2sd(ctx: LiftContext, ins: ix.Instruction) -> None:
    _apply_lanes(ctx, ins, "f64", False, lambda _x, y: _widen(ctx, y), MXCSR_DAZ)


@semantics(M.CVTSD2SS)
def lift_cvtsd2ss(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst = _xmm_dest(ins)
    lo = ctx.get_xmm(dst)[0]
    source = ctx.read_xmm_operand(1)[0]
    require_mxcsr_default(ctx, MXCSR_ROUNDING)
    ctx.set_xmm(dst, ctx.b.deposit(lo, _op(ctx, "cvt_f32_from_f64", source), 0, 32), None)


def _packed_source(ctx: LiftContext, ins: ix.Instruction, guard: int) -> tuple[int, Temp, Temp]:
    dst = _xmm_dest(ins)
    lo, hi = ctx.read_xmm_operand(1)
    if guard:
        require_mxcsr_default(ctx, guard)
    return dst, lo, hi


def _each_dword(ctx: LiftContext, lo: Temp, hi: Temp, lane: Callable[[Temp], Temp]) -> tuple[Temp, Temp]:
    """Apply ``lane`` (32 bits in, 32 bits out zero-extended) to the four dwords of lo:hi."""
    b = ctx.b

    def half(x: Temp) -> Temp:
        return b.deposit(lane(b.ext32u(x)), lane(b.extract(x, 32, 32)), 32, 32)

    return half(lo), half(hi)


@semantics(M.CVTDQ2PD)
def lift_cvtdq2pd(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, _ = _packed_source(ctx, ins, 0)  # exact: no MXCSR dependence
    b = ctx.b
    low = _op(ctx, "cvt_f64_from_i64", b.ext32s(lo))
    high = _op(ctx, "cvt_f64_from_i64", b.sextract(lo, 32, 32))
    ctx.set_xmm(dst, low, high)


@semantics(M.CVTDQ2PS)
def lift_cvtdq2ps(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, hi = _packed_source(ctx, ins, MXCSR_ROUNDING)
    ctx.set_xmm(dst, *_each_dword(ctx, lo, hi, lambda x: _op(ctx, "cvt_f32_from_i64", ctx.b.ext32s(x))))


@semantics(M.CVTPS2PD)
def lift_cvtps2pd(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, _ = _packed_source(ctx, ins, MXCSR_DAZ)
    ctx.set_xmm(dst, _widen(ctx, lo), _widen(ctx, ctx.b.extract(lo, 32, 32)))


@semantics(M.CVTPD2PS)
def lift_cvtpd2ps(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, hi = _packed_source(ctx, ins, MXCSR_ROUNDING)
    low = ctx.b.deposit(_op(ctx, "cvt_f32_from_f64", lo), _op(ctx, "cvt_f32_from_f64", hi), 32, 32)
    ctx.set_xmm(dst, low, ctx.b.const(0))


@semantics(M.CVTTPS2DQ, M.CVTPS2DQ)
def lift_cvtps2dq(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, hi = _packed_source(ctx, ins, MXCSR_DAZ)
    truncate = ins.mnemonic == M.CVTTPS2DQ
    ctx.set_xmm(dst, *_each_dword(ctx, lo, hi, lambda x: _to_int(ctx, _widen(ctx, x), 32, truncate)))


@semantics(M.CVTTPD2DQ, M.CVTPD2DQ)
def lift_cvtpd2dq(ctx: LiftContext, ins: ix.Instruction) -> None:
    dst, lo, hi = _packed_source(ctx, ins, MXCSR_DAZ)
    truncate = ins.mnemonic == M.CVTTPD2DQ
    low = ctx.b.deposit(_to_int(ctx, lo, 32, truncate), _to_int(ctx, hi, 32, truncate), 32, 32)
    ctx.set_xmm(dst, low, ctx.b.const(0))


# -- MXCSR ------------------------------------------------------------------------------------
@semantics(M.LDMXCSR)
def lift_ldmxcsr(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Load MXCSR; reserved bits set raise #GP (as on hardware). Later float instructions check it again."""
    if ins.op_kind(0) != OK.MEMORY:
        raise Unsupported("ldmxcsr without a memory operand")
    b = ctx.b
    value = ctx.load(ctx.ea(), 32)
    b.trapcond(Cond.TSTNE, value, b.const(~MXCSR_WRITABLE & 0xFFFF_FFFF), Excp.GP)
    b.set_global("mxcsr", value)
    _checked[ctx] = 0


@semantics(M.STMXCSR)
def lift_stmxcsr(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.op_kind(0) != OK.MEMORY:
        raise Unsupported("stmxcsr without a memory operand")
    ctx.store(ctx.ea(), ctx.b.get_global("mxcsr"), 32)
