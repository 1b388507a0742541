"""SSE4.2 string compares: pcmpestri, pcmpestrm, pcmpistri, pcmpistrm.

imm8 is a constant, so each instruction is lifted for its one data format
(bytes or words, signed or unsigned), aggregation, polarity and output. The
work is done on n-bit masks (n = 16 bytes or 8 words; bit j for element j of
the second operand): for an element s of the first operand, the lanes of
the second that compare equal (or >=, <=) come from one lane compare on each
half, splatted s against the register, and a movmsk. The lengths are dynamic
(the first zero element, or |eax| and |edx| saturated to n), so the validity
rules of the SDM are masks and movconds:

* equal any: OR over valid i of {j : b[j] = a[i]}, j valid;
* ranges: OR over valid pairs (a[2p], a[2p+1]) of {j : a[2p] <= b[j] <= a[2p+1]}, j valid;
* equal each: {j : a[j] = b[j], both valid} | {j : both invalid};
* equal ordered: AND over valid k of {j : b[j + k] = a[k], j + k valid, or j + k >= n}.

Polarity 01 negates all n bits, 11 only the valid elements of the second
operand. Flags: CF = result != 0, ZF = the second operand is shorter than n,
SF = the first is, OF = bit 0 of the result, AF = PF = 0.
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_sse_move import is_xmm
from tcg2wasm.ir import Cond, IRBuilder, Temp

M = ix.Mnemonic
C = ix.Code
R = ix.Register

Halves = tuple[Temp, Temp]
_WIDE_LENGTHS = {C.PCMPESTRI64_XMM_XMMM128_IMM8, C.PCMPESTRM64_XMM_XMMM128_IMM8}


class _Format:
    """Lane width and signedness of imm8[1:0], and the lane ops that go with them."""

    def __init__(self, imm: int) -> None:
        self.bits = 16 if imm & 1 else 8
        self.signed = bool(imm & 2)
        self.n = 128 // self.bits
        self.all = (1 << self.n) - 1
        sign = "s" if self.signed else "u"
        self.min, self.max = f"min{self.bits}{sign}_i64", f"max{self.bits}{sign}_i64"
        self.eq = f"cmpeq{self.bits}_i64"

    def element(self, b: IRBuilder, x: Halves, i: int) -> Temp:
        per_half = self.n // 2
        return b.extract(x[i // per_half], (i % per_half) * self.bits, self.bits)

    def splat(self, b: IRBuilder, value: Temp) -> Temp:
        return b.mul(value, b.const(0x0101_0101_0101_0101 if self.bits == 8 else 0x0001_0001_0001_0001))


def _lane(b: IRBuilder, name: str, *args: Temp) -> Temp:
    out = b.new_temp()
    b.emit(name, out, *args)
    return out


def _bitmask(b: IRBuilder, f: _Format, lane_masks: Halves) -> Temp:
    """n-bit mask from all-ones/all-zeros lanes: bit j = lane j."""
    if f.bits == 16:
        return _lane(b, "movmsk8_i64", _lane(b, "packss16_i64", *lane_masks))
    return b.or_(_lane(b, "movmsk8_i64", lane_masks[0]), b.shli(_lane(b, "movmsk8_i64", lane_masks[1]), 8))


def _matches(b: IRBuilder, f: _Format, value: Temp, x: Halves, relation: str) -> Temp:
    """{j : x[j] relation value} as an n-bit mask; relation is '=', '>=' or '<='."""
    s = f.splat(b, value)
    lanes = []
    for half in x:
        if relation == "=":
            lanes.append(_lane(b, f.eq, half, s))
        else:
            bound = _lane(b, f.max if relation == ">=" else f.min, half, s)
            lanes.append(_lane(b, f.eq, bound, half))
    return _bitmask(b, f, (lanes[0], lanes[1]))


def _implicit_length(b: IRBuilder, f: _Format, x: Halves) -> Temp:
    zero = b.const(0)
    zeros = _bitmask(b, f, (_lane(b, f.eq, x[0], zero), _lane(b, f.eq, x[1], zero)))
    return b.ctz(b.ori(zeros, 1 << f.n), b.const(f.n))


def _explicit_length(ctx: LiftContext, f: _Format, reg: str, wide: bool) -> Temp:
    """|reg| (rax/rdx, or their low 32 bits, signed) saturated to n."""
    b = ctx.b
    value = ctx.get_gpr(reg) if wide else b.ext32s(ctx.get_gpr(reg))
    magnitude = b.movcond(Cond.LT, value, b.const(0), b.neg(value), value)
    n = b.const(f.n)
    return b.movcond(Cond.LTU, magnitude, n, magnitude, n)


def _valid(b: IRBuilder, length: Temp) -> Temp:
    return b.sub(b.shl(b.const(1), length), b.const(1))


def _aggregate(b: IRBuilder, f: _Format, imm: int, a: Halves, x: Halves, len_a: Temp, valid_x: Temp) -> Temp:
    mode = (imm >> 2) & 3
    if mode == 2:  # equal each
        valid_a = _valid(b, len_a)
        equal = _bitmask(b, f, (_lane(b, f.eq, a[0], x[0]), _lane(b, f.eq, a[1], x[1])))
        both_invalid = b.andi(b.not_(b.or_(valid_a, valid_x)), f.all)
        return b.or_(b.and_(equal, b.and_(valid_a, valid_x)), both_invalid)
    out = b.const(f.all if mode == 3 else 0)
    step = 2 if mode == 1 else 1
    for i in range(0, f.n, step):
        last = b.const(i + step - 1)  # the term counts when its last element of a is valid
        if mode == 0:
            term = b.and_(_matches(b, f, f.element(b, a, i), x, "="), valid_x)
            out = b.or_(out, b.movcond(Cond.LTU, last, len_a, term, b.const(0)))
        elif mode == 1:
            low = _matches(b, f, f.element(b, a, i), x, ">=")
            high = _matches(b, f, f.element(b, a, i + 1), x, "<=")
            term = b.and_(b.and_(low, high), valid_x)
            out = b.or_(out, b.movcond(Cond.LTU, last, len_a, term, b.const(0)))
        else:  # equal ordered: a[i] against x[j + i] for every start j
            hits = b.shri(b.and_(_matches(b, f, f.element(b, a, i), x, "="), valid_x), i)
            term = b.ori(hits, (f.all << (f.n - i)) & f.all)
            out = b.and_(out, b.movcond(Cond.LTU, last, len_a, term, b.const(f.all)))
    return out


def _result(ctx: LiftContext, ins: ix.Instruction, explicit: bool) -> tuple[_Format, int, Temp, Temp, Temp]:
    """(format, imm8, IntRes2, length of operand 1, length of operand 2)."""
    if not is_xmm(ins, 0):
        raise Unsupported("pcmpXstrX destination is not xmm")
    imm = ins.immediate(2)
    f = _Format(imm)
    b = ctx.b
    x = ctx.read_xmm_operand(1)
    a = ctx.get_xmm(ins.op_register(0))
    if explicit:
        wide = ins.code in _WIDE_LENGTHS
        len_a, len_x = _explicit_length(ctx, f, "rax", wide), _explicit_length(ctx, f, "rdx", wide)
    else:
        len_a, len_x = _implicit_length(b, f, a), _implicit_length(b, f, x)
    valid_x = _valid(b, len_x)
    res = _aggregate(b, f, imm, a, x, len_a, valid_x)
    polarity = (imm >> 4) & 3
    if polarity == 1:
        res = b.xori(res, f.all)
    elif polarity == 3:
        res = b.xor(res, valid_x)
    return f, imm, res, len_a, len_x


def _set_flags(ctx: LiftContext, f: _Format, res: Temp, len_a: Temp, len_x: Temp) -> None:
    b = ctx.b
    ctx.set_flag("cf", b.setcondi(Cond.NE, res, 0))
    ctx.set_flag("zf", b.setcondi(Cond.LTU, len_x, f.n))
    ctx.set_flag("sf", b.setcondi(Cond.LTU, len_a, f.n))
    ctx.set_flag("of", b.andi(res, 1))
    ctx.set_flag_const("af", 0)
    ctx.set_flag_const("pf", 0)


@semantics(M.PCMPESTRI, M.PCMPISTRI)
def lift_pcmpstri(ctx: LiftContext, ins: ix.Instruction) -> None:
    """ecx = the least (imm8[6] = 0) or most significant set bit of the result, n when none."""
    f, imm, res, len_a, len_x = _result(ctx, ins, ins.mnemonic == M.PCMPESTRI)
    b = ctx.b
    most = imm & 0x40  # the most significant set bit (63 - clz, where clz of 0 gives 63 - n), else the least
    index = b.sub(b.const(63), b.clz(res, b.const(63 - f.n))) if most else b.ctz(res, b.const(f.n))
    ctx.set_gpr("rcx", index)
    _set_flags(ctx, f, res, len_a, len_x)


def _expand(b: IRBuilder, f: _Format, bits: Temp) -> Temp:
    """Lanes of all ones where the ``f.n // 2`` low bits of ``bits`` are set."""
    if f.bits == 8:
        spread = b.andi(b.mul(b.andi(bits, 0xFF), b.const(0x0101_0101_0101_0101)), 0x8040_2010_0804_0201)
    else:
        spread = b.andi(b.mul(b.andi(bits, 0xF), b.const(0x0001_0001_0001_0001)), 0x0008_0004_0002_0001)
    return b.not_(_lane(b, f.eq, spread, b.const(0)))


@semantics(M.PCMPESTRM, M.PCMPISTRM)
def lift_pcmpstrm(ctx: LiftContext, ins: ix.Instruction) -> None:
    """xmm0 = the result as a bit mask (imm8[6] = 0) or expanded to element masks."""
    f, imm, res, len_a, len_x = _result(ctx, ins, ins.mnemonic == M.PCMPESTRM)
    b = ctx.b
    if imm & 0x40:
        lo, hi = _expand(b, f, res), _expand(b, f, b.shri(res, f.n // 2))
    else:
        lo, hi = res, b.const(0)
    ctx.set_xmm(R.XMM0, lo, hi)
    _set_flags(ctx, f, res, len_a, len_x)
