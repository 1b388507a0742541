"""SSE/SSE2 integer and logical SIMD: each packed instruction as lane ops on the two 64-bit halves.

Most instructions are ``dst = f(dst, src)`` applied to the low halves and to
the high halves independently, with ``f`` one lane op (``tcg2wasm.ir.ops_vec``)
or core op. Instructions that move data across halves (packs, unpacks,
shuffles, byte shifts, mask extraction) are composed here from core ops with
constant selectors. The source may be an xmm register or a 128-bit memory
operand (no alignment check, as in the oracle: see docs/sse.md). MMX forms
raise ``Unsupported`` and go to the fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_sse_move import is_xmm
from tcg2wasm.ir import Cond, IRBuilder, Temp

M = ix.Mnemonic
OK = ix.OpKind

HalfFn = Callable[[IRBuilder, Temp, Temp], Temp]


def _dst_reg(ins: ix.Instruction) -> int:
    if not is_xmm(ins, 0):
        raise Unsupported("MMX form of an SSE instruction")
    return ins.op_register(0)


def _same_register(ins: ix.Instruction) -> bool:
    return is_xmm(ins, 1) and ins.op_register(0) == ins.op_register(1)


def _each_half(ctx: LiftContext, ins: ix.Instruction, fn: HalfFn) -> None:
    """dst.lo = fn(dst.lo, src.lo); dst.hi = fn(dst.hi, src.hi)."""
    reg = _dst_reg(ins)
    src_lo, src_hi = ctx.read_xmm_operand(1)
    dst_lo, dst_hi = ctx.get_xmm(reg)
    ctx.set_xmm(reg, fn(ctx.b, dst_lo, src_lo), fn(ctx.b, dst_hi, src_hi))


def _lane_op(name: str) -> HalfFn:
    def fn(b: IRBuilder, x: Temp, y: Temp) -> Temp:
        out = b.new_temp()
        b.emit(name, out, x, y)
        return out

    return fn


# -- logical ------------------------------------------------------------------------------------
_LOGIC: dict[int, HalfFn] = {
    M.PXOR: IRBuilder.xor, M.XORPS: IRBuilder.xor, M.XORPD: IRBuilder.xor,
    M.POR: IRBuilder.or_, M.ORPS: IRBuilder.or_, M.ORPD: IRBuilder.or_,
    M.PAND: IRBuilder.and_, M.ANDPS: IRBuilder.and_, M.ANDPD: IRBuilder.and_,
    # andn: dst = ~dst & src
    M.PANDN: lambda b, d, s: b.andc(s, d), M.ANDNPS: lambda b, d, s: b.andc(s, d),
    M.ANDNPD: lambda b, d, s: b.andc(s, d),
}
_XOR_LIKE = {M.PXOR, M.XORPS, M.XORPD}


@semantics(*_LOGIC)
def lift_logic(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.mnemonic in _XOR_LIKE and _same_register(ins):  # the zeroing idiom
        zero = ctx.b.const(0)
        ctx.set_xmm(_dst_reg(ins), zero, zero)
        return
    _each_half(ctx, ins, _LOGIC[ins.mnemonic])


# -- lane-wise arithmetic and comparisons ----------------------------------------------------------
_LANEWISE: dict[int, HalfFn] = {
    M.PADDB: _lane_op("add8_i64"), M.PADDW: _lane_op("add16_i64"), M.PADDD: _lane_op("add32_i64"),
    M.PADDQ: IRBuilder.add,
    M.PSUBB: _lane_op("sub8_i64"), M.PSUBW: _lane_op("sub16_i64"), M.PSUBD: _lane_op("sub32_i64"),
    M.PSUBQ: IRBuilder.sub,
    M.PADDUSB: _lane_op("addsat8u_i64"), M.PADDUSW: _lane_op("addsat16u_i64"),
    M.PADDSB: _lane_op("addsat8s_i64"), M.PADDSW: _lane_op("addsat16s_i64"),
    M.PSUBUSB: _lane_op("subsat8u_i64"), M.PSUBUSW: _lane_op("subsat16u_i64"),
    M.PSUBSB: _lane_op("subsat8s_i64"), M.PSUBSW: _lane_op("subsat16s_i64"),
    M.PCMPEQB: _lane_op("cmpeq8_i64"), M.PCMPEQW: _lane_op("cmpeq16_i64"), M.PCMPEQD: _lane_op("cmpeq32_i64"),
    M.PCMPGTB: _lane_op("cmpgt8s_i64"), M.PCMPGTW: _lane_op("cmpgt16s_i64"), M.PCMPGTD: _lane_op("cmpgt32s_i64"),
    M.PMINUB: _lane_op("min8u_i64"), M.PMAXUB: _lane_op("max8u_i64"),
    M.PMINSW: _lane_op("min16s_i64"), M.PMAXSW: _lane_op("max16s_i64"),
    M.PAVGB: _lane_op("avg8u_i64"), M.PAVGW: _lane_op("avg16u_i64"),
    M.PSADBW: _lane_op("sad8u_i64"),
    M.PMULLW: _lane_op("mul16_i64"), M.PMULHW: _lane_op("mulhi16s_i64"), M.PMULHUW: _lane_op("mulhi16u_i64"),
    M.PMADDWD: _lane_op("madd16s_i64"),
    M.PMULUDQ: lambda b, x, y: b.mul(b.ext32u(x), b.ext32u(y)),
}


@semantics(*_LANEWISE)
def lift_lanewise(ctx: LiftContext, ins: ix.Instruction) -> None:
    _each_half(ctx, ins, _LANEWISE[ins.mnemonic])


# -- shifts ---------------------------------------------------------------------------------------
_LANE_SHIFTS: dict[int, tuple[str, int]] = {
    M.PSLLW: ("shl", 16), M.PSLLD: ("shl", 32), M.PSLLQ: ("shl", 64),
    M.PSRLW: ("shr", 16), M.PSRLD: ("shr", 32), M.PSRLQ: ("shr", 64),
    M.PSRAW: ("sar", 16), M.PSRAD: ("sar", 32),
}


def _shift_half(b: IRBuilder, kind: str, bits: int, value: Temp, count: Temp) -> Temp:
    if bits < 64:
        out = b.new_temp()
        b.emit(f"{kind}{bits}_i64", out, value, count)
        return out
    shifted = b.shl(value, count) if kind == "shl" else b.shr(value, count)
    return b.movcond(Cond.LTU, count, b.const(64), shifted, b.const(0))


@semantics(*_LANE_SHIFTS)
def lift_lane_shift(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Count: imm8, or the whole low quadword of an xmm/m128 source (large counts clear or sign-fill)."""
    kind, bits = _LANE_SHIFTS[ins.mnemonic]
    reg = _dst_reg(ins)
    b = ctx.b
    by_imm = ins.op_kind(1) == OK.IMMEDIATE8
    count = b.const(ins.immediate(1) & 0xFF) if by_imm else ctx.read_xmm_operand(1)[0]
    lo, hi = ctx.get_xmm(reg)
    ctx.set_xmm(reg, _shift_half(b, kind, bits, lo, count), _shift_half(b, kind, bits, hi, count))


def shift128_left(b: IRBuilder, lo: Temp, hi: Temp, nbits: int) -> tuple[Temp, Temp]:
    """(lo, hi) of the 128-bit value shifted left by a constant ``nbits``."""
    if nbits >= 128:
        return b.const(0), b.const(0)
    if nbits >= 64:
        return b.const(0), b.shli(lo, nbits - 64)
    if nbits == 0:
        return lo, hi
    return b.shli(lo, nbits), b.or_(b.shli(hi, nbits), b.shri(lo, 64 - nbits))


def shift128_right(b: IRBuilder, lo: Temp, hi: Temp, nbits: int) -> tuple[Temp, Temp]:
    """(lo, hi) of the 128-bit value shifted right logically by a constant ``nbits``."""
    if nbits >= 128:
        return b.const(0), b.const(0)
    if nbits >= 64:
        return b.shri(hi, nbits - 64), b.const(0)
    if nbits == 0:
        return lo, hi
    return b.or_(b.shri(lo, nbits), b.shli(hi, 64 - nbits)), b.shri(hi, nbits)


@semantics(M.PSLLDQ, M.PSRLDQ)
def lift_byte_shift(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Whole-register shift by imm8 bytes (counts above 15 clear the register)."""
    reg = _dst_reg(ins)
    nbits = 8 * min(ins.immediate(1) & 0xFF, 16)
    shift = shift128_left if ins.mnemonic == M.PSLLDQ else shift128_right
    ctx.set_xmm(reg, *shift(ctx.b, *ctx.get_xmm(reg), nbits))


# -- unpack and pack --------------------------------------------------------------------------------
def _interleave_dwords(b: IRBuilder, x: Temp, y: Temp) -> tuple[Temp, Temp]:
    """Dwords x0 y0 x1 y1 as (lo, hi)."""
    return b.deposit(x, y, 32, 32), b.deposit(y, b.shri(x, 32), 0, 32)


def _unpack(op_bits: int | None) -> Callable[[IRBuilder, Temp, Temp], tuple[Temp, Temp]]:
    """Interleave the lanes of two halves into a full register (op_bits None: dwords; 64: quadwords)."""

    def fn(b: IRBuilder, x: Temp, y: Temp) -> tuple[Temp, Temp]:
        if op_bits is None:
            return _interleave_dwords(b, x, y)
        if op_bits == 64:
            return x, y
        lo, hi = b.new_temp(), b.new_temp()
        b.emit(f"unpacklo{op_bits}_i64", lo, x, y)
        b.emit(f"unpackhi{op_bits}_i64", hi, x, y)
        return lo, hi

    return fn


_UNPACKS = {  # mnemonic -> (which halves interleave: high?, lane bits; None = dwords)
    M.PUNPCKLBW: (False, 8), M.PUNPCKHBW: (True, 8), M.PUNPCKLWD: (False, 16), M.PUNPCKHWD: (True, 16),
    M.PUNPCKLDQ: (False, None), M.PUNPCKHDQ: (True, None), M.PUNPCKLQDQ: (False, 64), M.PUNPCKHQDQ: (True, 64),
    M.UNPCKLPS: (False, None), M.UNPCKHPS: (True, None), M.UNPCKLPD: (False, 64), M.UNPCKHPD: (True, 64),
}


@semantics(*_UNPACKS)
def lift_unpack(ctx: LiftContext, ins: ix.Instruction) -> None:
    high, bits = _UNPACKS[ins.mnemonic]
    reg = _dst_reg(ins)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    half = 1 if high else 0
    ctx.set_xmm(reg, *_unpack(bits)(ctx.b, dst[half], src[half]))


_PACKS = {M.PACKSSWB: "packss16_i64", M.PACKUSWB: "packus16_i64", M.PACKSSDW: "packss32_i64"}


@semantics(*_PACKS)
def lift_pack(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Low half from the destination's lanes, high half from the source's."""
    reg = _dst_reg(ins)
    b = ctx.b
    src_lo, src_hi = ctx.read_xmm_operand(1)
    dst_lo, dst_hi = ctx.get_xmm(reg)
    lo, hi = b.new_temp(), b.new_temp()
    b.emit(_PACKS[ins.mnemonic], lo, dst_lo, dst_hi)
    b.emit(_PACKS[ins.mnemonic], hi, src_lo, src_hi)
    ctx.set_xmm(reg, lo, hi)


# -- shuffles -----------------------------------------------------------------------------------------
def _dword(b: IRBuilder, halves: tuple[Temp, Temp], index: int) -> Temp:
    """Dword ``index`` (0..3) of a register, zero-extended."""
    return b.extract(halves[index >> 1], 32 * (index & 1), 32)


def _join_dwords(b: IRBuilder, low: Temp, high: Temp) -> Temp:
    return b.deposit(low, high, 32, 32)


def _select_words(b: IRBuilder, half: Temp, imm: int) -> Temp:
    """The four words of ``half`` permuted by the 2-bit selectors of imm."""
    words = [b.extract(half, 16 * ((imm >> (2 * i)) & 3), 16) for i in range(4)]
    out = words[0]
    for i in range(1, 4):
        out = b.deposit(out, words[i], 16 * i, 16)
    return out


@semantics(M.PSHUFD)
def lift_pshufd(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    imm = ins.immediate(2)
    src = ctx.read_xmm_operand(1)
    d = [_dword(b, src, (imm >> (2 * i)) & 3) for i in range(4)]
    ctx.set_xmm(_dst_reg(ins), _join_dwords(b, d[0], d[1]), _join_dwords(b, d[2], d[3]))


@semantics(M.PSHUFLW, M.PSHUFHW)
def lift_pshuf_words(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    src_lo, src_hi = ctx.read_xmm_operand(1)
    imm = ins.immediate(2)
    reg = _dst_reg(ins)
    if ins.mnemonic == M.PSHUFLW:
        ctx.set_xmm(reg, _select_words(b, src_lo, imm), src_hi)
    else:
        ctx.set_xmm(reg, src_lo, _select_words(b, src_hi, imm))


@semantics(M.SHUFPS)
def lift_shufps(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Dwords 0-1 picked from the destination, 2-3 from the source."""
    b = ctx.b
    reg = _dst_reg(ins)
    imm = ins.immediate(2)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    d = [_dword(b, dst if i < 2 else src, (imm >> (2 * i)) & 3) for i in range(4)]
    ctx.set_xmm(reg, _join_dwords(b, d[0], d[1]), _join_dwords(b, d[2], d[3]))


@semantics(M.SHUFPD)
def lift_shufpd(ctx: LiftContext, ins: ix.Instruction) -> None:
    reg = _dst_reg(ins)
    imm = ins.immediate(2)
    src = ctx.read_xmm_operand(1)
    dst = ctx.get_xmm(reg)
    ctx.set_xmm(reg, dst[imm & 1], src[(imm >> 1) & 1])


# -- word insert/extract and sign masks -------------------------------------------------------------
@semantics(M.PEXTRW)
def lift_pextrw(ctx: LiftContext, ins: ix.Instruction) -> None:
    if not is_xmm(ins, 1):
        raise Unsupported("MMX form of pextrw")
    index = ins.immediate(2) & 7
    half = ctx.get_xmm(ins.op_register(1))[index >> 2]
    ctx.write(0, ctx.b.extract(half, 16 * (index & 3), 16))


@semantics(M.PINSRW)
def lift_pinsrw(ctx: LiftContext, ins: ix.Instruction) -> None:
    reg = _dst_reg(ins)
    index = ins.immediate(2) & 7
    value = ctx.read(1)  # r32 or m16
    halves = list(ctx.get_xmm(reg))
    halves[index >> 2] = ctx.b.deposit(halves[index >> 2], value, 16 * (index & 3), 16)
    ctx.set_xmm(reg, halves[0], halves[1])


def _source_xmm(ctx: LiftContext, ins: ix.Instruction) -> tuple[Temp, Temp]:
    if not is_xmm(ins, 1):
        raise Unsupported("MMX form of a mask extraction")
    return ctx.get_xmm(ins.op_register(1))


@semantics(M.PMOVMSKB)
def lift_pmovmskb(ctx: LiftContext, ins: ix.Instruction) -> None:
    b = ctx.b
    lo, hi = _source_xmm(ctx, ins)
    masks = []
    for half in (lo, hi):
        out = b.new_temp()
        b.emit("movmsk8_i64", out, half)
        masks.append(out)
    ctx.write(0, b.or_(masks[0], b.shli(masks[1], 8)))


def _sign_bits(b: IRBuilder, values: list[tuple[Temp, int]]) -> Temp:
    """Bit i of the result = bit ``pos`` of value i."""
    out = b.extract(values[0][0], values[0][1], 1)
    for i, (value, pos) in enumerate(values[1:], start=1):
        out = b.deposit(out, b.extract(value, pos, 1), i, 1)
    return out


@semantics(M.MOVMSKPS)
def lift_movmskps(ctx: LiftContext, ins: ix.Instruction) -> None:
    lo, hi = _source_xmm(ctx, ins)
    ctx.write(0, _sign_bits(ctx.b, [(lo, 31), (lo, 63), (hi, 31), (hi, 63)]))


@semantics(M.MOVMSKPD)
def lift_movmskpd(ctx: LiftContext, ins: ix.Instruction) -> None:
    lo, hi = _source_xmm(ctx, ins)
    ctx.write(0, _sign_bits(ctx.b, [(lo, 63), (hi, 63)]))
