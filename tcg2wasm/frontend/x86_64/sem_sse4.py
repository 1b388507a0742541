"""SSE3, SSSE3, SSE4.1 and SSE4.2 integer, move and bit instructions (the x86-64-v2 level).

As in sem_sse_int.py an xmm register is two i64 halves; each instruction is
composed from core ops and lane ops (``ops_vec``, ``ops_vec_ext``). Sources may
be an xmm register or memory (16 bytes, or the 2/4/8 bytes of the pmovsx/zx
and insert forms), without alignment checks, as in the oracle. The MMX forms
of the SSSE3 instructions raise ``Unsupported`` (fallback). The float
instructions of these extensions are in sem_sse4_float.py.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_sse_int import _dst_reg, _each_half, _lane_op, shift128_left, shift128_right
from tcg2wasm.frontend.x86_64.sem_sse_move import is_xmm
from tcg2wasm.ir import Cond, IRBuilder, Temp

M = ix.Mnemonic
R = ix.Register

Halves = tuple[Temp, Temp]


def _lane(b: IRBuilder, name: str, *args: Temp) -> Temp:
    out = b.new_temp()
    b.emit(name, out, *args)
    return out


def _source_low(ctx: LiftContext, ins: ix.Instruction, bits: int) -> Temp:
    """The low ``bits`` of operand 1: an xmm register's low half, or ``bits`` of memory (zero-extended)."""
    if is_xmm(ins, 1):
        return ctx.get_xmm(ins.op_register(1))[0]
    if not ctx.is_mem(1):
        raise Unsupported("MMX form of an SSE4 instruction")
    return ctx.load(ctx.ea(), bits)


def _source(ctx: LiftContext, ins: ix.Instruction) -> Halves:
    if not (is_xmm(ins, 1) or ctx.is_mem(1)):
        raise Unsupported("MMX form of an SSSE3 instruction")
    return ctx.read_xmm_operand(1)


# -- SSE3 moves -----------------------------------------------------------------------------------
@semantics(M.MOVDDUP)
def lift_movddup(ctx: LiftContext, ins: ix.Instruction) -> None:
    low = _source_low(ctx, ins, 64)
    ctx.set_xmm(_dst_reg(ins), low, low)


def _dup_dwords(b: IRBuilder, half: Temp, odd: bool) -> Temp:
    if odd:  # dwords 1 1
        return b.or_(b.shri(half, 32), b.andi(half, 0xFFFF_FFFF_0000_0000))
    return b.or_(b.ext32u(half), b.shli(half, 32))  # dwords 0 0


@semantics(M.MOVSHDUP, M.MOVSLDUP)
def lift_movsxdup(ctx: LiftContext, ins: ix.Instruction) -> None:
    lo, hi = _source(ctx, ins)
    odd = ins.mnemonic == M.MOVSHDUP
    ctx.set_xmm(_dst_reg(ins), _dup_dwords(ctx.b, lo, odd), _dup_dwords(ctx.b, hi, odd))


@semantics(M.LDDQU, M.MOVNTDQA)
def lift_load128(ctx: LiftContext, ins: ix.Instruction) -> None:
    if not ctx.is_mem(1):
        raise Unsupported("register source of a load-only instruction")
    ctx.set_xmm(_dst_reg(ins), *ctx.read_xmm_operand(1))


# -- SSSE3 ------------------------------------------------------------------------------------------
@semantics(M.PSHUFB)
def lift_pshufb(ctx: LiftContext, ins: ix.Instruction) -> None:
    reg = _dst_reg(ins)
    idx_lo, idx_hi = _source(ctx, ins)
    lo, hi = ctx.get_xmm(reg)
    b = ctx.b
    ctx.set_xmm(reg, _lane(b, "pshufb_i64", lo, hi, idx_lo), _lane(b, "pshufb_i64", lo, hi, idx_hi))


@semantics(M.PALIGNR)
def lift_palignr(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The 32-byte dst:src shifted right by imm8 bytes, low 16 bytes."""
    reg = _dst_reg(ins)
    src = _source(ctx, ins)
    dst = ctx.get_xmm(reg)
    b = ctx.b
    n = ins.immediate(2) & 0xFF
    if n >= 16:
        ctx.set_xmm(reg, *shift128_right(b, *dst, 8 * (n - 16)))
        return
    low = shift128_right(b, *src, 8 * n)
    high = shift128_left(b, *dst, 128 - 8 * n)
    ctx.set_xmm(reg, b.or_(low[0], high[0]), b.or_(low[1], high[1]))


_ABS = {M.PABSB: 8, M.PABSW: 16, M.PABSD: 32}
_SIGN = {M.PSIGNB: 8, M.PSIGNW: 16, M.PSIGND: 32}


def _negative_mask(b: IRBuilder, x: Temp, bits: int) -> Temp:
    return _lane(b, f"cmpgt{bits}s_i64", b.const(0), x)


def _negate_where(b: IRBuilder, x: Temp, mask: Temp, bits: int) -> Temp:
    """Lanes of x negated where ``mask`` is all ones (two's complement: (x ^ m) - m)."""
    return _lane(b, f"sub{bits}_i64", b.xor(x, mask), mask)


@semantics(*_ABS)
def lift_pabs(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = _ABS[ins.mnemonic]
    b = ctx.b
    halves = [_negate_where(b, x, _negative_mask(b, x, bits), bits) for x in _source(ctx, ins)]
    ctx.set_xmm(_dst_reg(ins), halves[0], halves[1])


@semantics(*_SIGN)
def lift_psign(ctx: LiftContext, ins: ix.Instruction) -> None:
    """dst lanes negated where src < 0, zeroed where src = 0."""
    bits = _SIGN[ins.mnemonic]

    def half(b: IRBuilder, d: Temp, s: Temp) -> Temp:
        zero = _lane(b, f"cmpeq{bits}_i64", s, b.const(0))
        return b.andc(_negate_where(b, d, _negative_mask(b, s, bits), bits), zero)

    _each_half(ctx, ins, half)


_HORIZONTAL = {M.PHADDW: "hadd16_i64", M.PHADDD: "hadd32_i64", M.PHADDSW: "haddsat16s_i64",
               M.PHSUBW: "hsub16_i64", M.PHSUBD: "hsub32_i64", M.PHSUBSW: "hsubsat16s_i64"}


@semantics(*_HORIZONTAL)
def lift_horizontal(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Low half from the destination's adjacent pairs, high half from the source's."""
    reg = _dst_reg(ins)
    src = _source(ctx, ins)
    dst = ctx.get_xmm(reg)
    name = _HORIZONTAL[ins.mnemonic]
    ctx.set_xmm(reg, _lane(ctx.b, name, *dst), _lane(ctx.b, name, *src))


_EVEN_BYTES = 0x00FF_00FF_00FF_00FF


def _pmaddubsw_half(b: IRBuilder, a: Temp, s: Temp) -> Temp:
    """Unsigned bytes of a times signed bytes of s, adjacent products added with signed saturation."""
    eight = b.const(8)
    products = [
        _lane(b, "mul16_i64", b.andi(a, _EVEN_BYTES), _lane(b, "sar16_i64", _lane(b, "shl16_i64", s, eight), eight)),
        _lane(b, "mul16_i64", _lane(b, "shr16_i64", a, eight), _lane(b, "sar16_i64", s, eight)),
    ]  # each fits a signed word: 255 * -128 .. 255 * 127
    return _lane(b, "addsat16s_i64", *products)


def _pmulhrsw_half(b: IRBuilder, x: Temp, y: Temp) -> Temp:
    """((x * y >> 14) + 1) >> 1 per signed word = (t >> 15) + bit 14 of t, t the 32-bit product."""
    low, high = _lane(b, "mul16_i64", x, y), _lane(b, "mulhi16s_i64", x, y)
    shifted = b.or_(_lane(b, "shl16_i64", high, b.const(1)), _lane(b, "shr16_i64", low, b.const(15)))
    round_bit = b.andi(_lane(b, "shr16_i64", low, b.const(14)), 0x0001_0001_0001_0001)
    return _lane(b, "add16_i64", shifted, round_bit)


@semantics(M.PMADDUBSW, M.PMULHRSW)
def lift_ssse3_multiply(ctx: LiftContext, ins: ix.Instruction) -> None:
    _source(ctx, ins)  # rejects the MMX form before anything is emitted
    _each_half(ctx, ins, _pmaddubsw_half if ins.mnemonic == M.PMADDUBSW else _pmulhrsw_half)


# -- SSE4.1 and SSE4.2 lane-wise ---------------------------------------------------------------------
def _qword_mask(cond: Cond) -> Callable[[IRBuilder, Temp, Temp], Temp]:
    return lambda b, x, y: b.neg(b.setcond(cond, x, y))


_LANEWISE: dict[int, Callable[[IRBuilder, Temp, Temp], Temp]] = {
    M.PMINSB: _lane_op("min8s_i64"), M.PMAXSB: _lane_op("max8s_i64"),
    M.PMINUW: _lane_op("min16u_i64"), M.PMAXUW: _lane_op("max16u_i64"),
    M.PMINSD: _lane_op("min32s_i64"), M.PMAXSD: _lane_op("max32s_i64"),
    M.PMINUD: _lane_op("min32u_i64"), M.PMAXUD: _lane_op("max32u_i64"),
    M.PMULLD: _lane_op("mul32_i64"),
    M.PMULDQ: lambda b, x, y: b.mul(b.ext32s(x), b.ext32s(y)),
    M.PCMPEQQ: _qword_mask(Cond.EQ), M.PCMPGTQ: _qword_mask(Cond.GT),
}


@semantics(*_LANEWISE)
def lift_sse4_lanewise(ctx: LiftContext, ins: ix.Instruction) -> None:
    _each_half(ctx, ins, _LANEWISE[ins.mnemonic])


@semantics(M.PACKUSDW)
def lift_packusdw(ctx: LiftContext, ins: ix.Instruction) -> None:
    reg = _dst_reg(ins)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    ctx.set_xmm(reg, _lane(ctx.b, "packus32_i64", *dst), _lane(ctx.b, "packus32_i64", *src))


_EXTENDS = {  # mnemonic -> (source lane bits, destination lane bits, signed)
    M.PMOVSXBW: (8, 16, True), M.PMOVSXBD: (8, 32, True), M.PMOVSXBQ: (8, 64, True),
    M.PMOVSXWD: (16, 32, True), M.PMOVSXWQ: (16, 64, True), M.PMOVSXDQ: (32, 64, True),
    M.PMOVZXBW: (8, 16, False), M.PMOVZXBD: (8, 32, False), M.PMOVZXBQ: (8, 64, False),
    M.PMOVZXWD: (16, 32, False), M.PMOVZXWQ: (16, 64, False), M.PMOVZXDQ: (32, 64, False),
}


@semantics(*_EXTENDS)
def lift_pmov_extend(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The low lanes of the source, each sign- or zero-extended to the wider lane."""
    src_bits, dst_bits, is_signed = _EXTENDS[ins.mnemonic]
    count = 128 // dst_bits
    x = _source_low(ctx, ins, src_bits * count)
    b = ctx.b
    per_half = count // 2
    halves = []
    for h in range(2):
        out: Temp | None = None
        for i in range(per_half):
            pos = (h * per_half + i) * src_bits
            lane = b.sextract(x, pos, src_bits) if is_signed else b.extract(x, pos, src_bits)
            out = lane if out is None else b.deposit(out, lane, i * dst_bits, dst_bits)
        assert out is not None
        halves.append(out)
    ctx.set_xmm(_dst_reg(ins), halves[0], halves[1])


# -- blends ----------------------------------------------------------------------------------------
_IMM_BLENDS = {M.PBLENDW: 16, M.BLENDPS: 32, M.BLENDPD: 64}


def _select(b: IRBuilder, mask: Temp, if_set: Temp, if_clear: Temp) -> Temp:
    return b.or_(b.and_(if_set, mask), b.andc(if_clear, mask))


@semantics(*_IMM_BLENDS)
def lift_blend_imm(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Lane i from the source where imm8 bit i is set, else kept."""
    bits = _IMM_BLENDS[ins.mnemonic]
    reg = _dst_reg(ins)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    imm = ins.immediate(2)
    per_half = 64 // bits
    b = ctx.b
    out = []
    for h in range(2):
        mask = sum(((1 << bits) - 1) << (i * bits) for i in range(per_half) if imm >> (h * per_half + i) & 1)
        out.append(_select(b, b.const(mask), src[h], dst[h]))
    ctx.set_xmm(reg, out[0], out[1])


_VAR_BLENDS = {M.PBLENDVB: 8, M.BLENDVPS: 32, M.BLENDVPD: 64}


@semantics(*_VAR_BLENDS)
def lift_blend_variable(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Lane from the source where the sign bit of the same lane of xmm0 is set."""
    bits = _VAR_BLENDS[ins.mnemonic]
    reg = _dst_reg(ins)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    selector = ctx.get_xmm(R.XMM0)
    b = ctx.b
    masks = [b.sari(x, 63) if bits == 64 else _negative_mask(b, x, bits) for x in selector]
    ctx.set_xmm(reg, _select(b, masks[0], src[0], dst[0]), _select(b, masks[1], src[1], dst[1]))


@semantics(M.PTEST)
def lift_ptest(ctx: LiftContext, ins: ix.Instruction) -> None:
    """ZF = (dst & src) == 0, CF = (src & ~dst) == 0; AF OF PF SF cleared."""
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(_dst_reg(ins))
    b = ctx.b
    both = b.or_(b.and_(dst[0], src[0]), b.and_(dst[1], src[1]))
    src_only = b.or_(b.andc(src[0], dst[0]), b.andc(src[1], dst[1]))
    ctx.set_flag("zf", b.setcondi(Cond.EQ, both, 0))
    ctx.set_flag("cf", b.setcondi(Cond.EQ, src_only, 0))
    for name in ("af", "of", "pf", "sf"):
        ctx.set_flag_const(name, 0)


# -- insert and extract ----------------------------------------------------------------------------
_EXTRACTS = {M.PEXTRB: 8, M.PEXTRD: 32, M.PEXTRQ: 64, M.EXTRACTPS: 32}
_INSERTS = {M.PINSRB: 8, M.PINSRD: 32, M.PINSRQ: 64}


@semantics(*_EXTRACTS)
def lift_extract(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Lane imm8 of the xmm source to a register (zero-extended) or to memory of the lane's size."""
    bits = _EXTRACTS[ins.mnemonic]
    if not is_xmm(ins, 1):
        raise Unsupported("extract from a non-xmm register")
    per_half = 64 // bits
    index = ins.immediate(2) & (2 * per_half - 1)
    half = ctx.get_xmm(ins.op_register(1))[index // per_half]
    value = half if bits == 64 else ctx.b.extract(half, (index % per_half) * bits, bits)
    ctx.write(0, value)


@semantics(*_INSERTS)
def lift_insert(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = _INSERTS[ins.mnemonic]
    reg = _dst_reg(ins)
    per_half = 64 // bits
    index = ins.immediate(2) & (2 * per_half - 1)
    value = ctx.read(1)  # r32/r64 or memory of the lane's size
    halves = list(ctx.get_xmm(reg))
    h = index // per_half
    halves[h] = value if bits == 64 else ctx.b.deposit(halves[h], value, (index % per_half) * bits, bits)
    ctx.set_xmm(reg, halves[0], halves[1])


@semantics(M.INSERTPS)
def lift_insertps(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Dword count_s (imm[7:6]) of an xmm source, or a memory dword, into dword imm[5:4]; imm[3:0] zero dwords."""
    reg = _dst_reg(ins)
    imm = ins.immediate(2)
    b = ctx.b
    if is_xmm(ins, 1):
        s = imm >> 6
        value = b.extract(ctx.get_xmm(ins.op_register(1))[s >> 1], 32 * (s & 1), 32)
    else:
        value = ctx.load(ctx.ea(), 32)
    halves = list(ctx.get_xmm(reg))
    d = (imm >> 4) & 3
    halves[d >> 1] = b.deposit(halves[d >> 1], value, 32 * (d & 1), 32)
    for h in range(2):
        keep = sum(0xFFFF_FFFF << (32 * i) for i in range(2) if not imm >> (2 * h + i) & 1)
        if keep != 0xFFFF_FFFF_FFFF_FFFF:
            halves[h] = b.andi(halves[h], keep)
    ctx.set_xmm(reg, halves[0], halves[1])


# -- phminposuw, mpsadbw -------------------------------------------------------------------------------
@semantics(M.PHMINPOSUW)
def lift_phminposuw(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The smallest unsigned word in bits 0-15, its index (the lowest of equal ones) in 16-18; the rest 0."""
    src = ctx.read_xmm_operand(1)
    b = ctx.b
    best, index = b.extract(src[0], 0, 16), b.const(0)
    for i in range(1, 8):
        word = b.extract(src[i // 4], 16 * (i % 4), 16)
        index = b.movcond(Cond.LTU, word, best, b.const(i), index)
        best = b.movcond(Cond.LTU, word, best, word, best)
    ctx.set_xmm(_dst_reg(ins), b.or_(best, b.shli(index, 16)), b.const(0))


def _bytes4_at(b: IRBuilder, lo: Temp, hi: Temp, offset: int) -> Temp:
    """Bytes offset..offset+3 of the 128-bit lo:hi (offset <= 12), zero-extended."""
    if offset + 4 <= 8:
        return b.extract(lo, 8 * offset, 32)
    if offset >= 8:
        return b.extract(hi, 8 * (offset - 8), 32)
    return b.ext32u(b.or_(b.shri(lo, 8 * offset), b.shli(hi, 64 - 8 * offset)))


@semantics(M.MPSADBW)
def lift_mpsadbw(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Word j = the sum of |dst[d + j + k] - src[s + k]| over k < 4; s = imm[1:0] * 4, d = imm[2] * 4."""
    reg = _dst_reg(ins)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    imm = ins.immediate(2)
    b = ctx.b
    block = _bytes4_at(b, *src, 4 * (imm & 3))
    d = 4 * ((imm >> 2) & 1)
    words = [_lane(b, "sad8u_i64", _bytes4_at(b, *dst, d + j), block) for j in range(8)]
    halves = []
    for h in range(2):
        out = words[4 * h]
        for i in range(1, 4):
            out = b.deposit(out, words[4 * h + i], 16 * i, 16)
        halves.append(out)
    ctx.set_xmm(reg, halves[0], halves[1])


# -- crc32 -------------------------------------------------------------------------------------------------
@semantics(M.CRC32)
def lift_crc32(ctx: LiftContext, ins: ix.Instruction) -> None:
    """CRC-32C of the low 32 bits of the destination with the 8/16/32/64-bit source; the result is 32 bits."""
    bits = ctx.op_bits(1)
    data = ctx.read(1)
    crc = ctx.read(0)
    ctx.write(0, _lane(ctx.b, f"crc32c{bits}_i64", crc, data))
