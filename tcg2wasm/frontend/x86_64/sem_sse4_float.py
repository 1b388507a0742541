"""SSE3 and SSE4.1 floating point: addsub, horizontal add/subtract, round, dot products.

Each is composed from the float ops of SSE2 (``ops_float``), lane by lane in
the order the SDM gives, so the x86 NaN rules of the ops hold (first NaN
operand, default NaN). MXCSR is handled as in sem_sse_float.py: translated
for round-to-nearest without FTZ/DAZ, with a per-TB check that leaves the
rest to the fallback; ``round*`` reads RC at run time when imm8 bit 2 asks for
it, and depends on DAZ only.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_sse_float import (
    MXCSR_DAZ,
    MXCSR_ROUNDING,
    _op,
    _rounding_mode,
    _xmm_dest,
    require_mxcsr_default,
)
from tcg2wasm.ir import Temp

M = ix.Mnemonic

Halves = tuple[Temp, Temp]


def _lanes(ctx: LiftContext, halves: Halves, fmt: str) -> list[Temp]:
    """The float lanes of a register: 2 binary64 or 4 binary32 (in the low 32 bits of each temp)."""
    if fmt == "f64":
        return list(halves)
    b = ctx.b
    return [halves[0], b.shri(halves[0], 32), halves[1], b.shri(halves[1], 32)]


def _join(ctx: LiftContext, lanes: list[Temp], fmt: str) -> Halves:
    if fmt == "f64":
        return lanes[0], lanes[1]
    b = ctx.b
    return b.deposit(lanes[0], lanes[1], 32, 32), b.deposit(lanes[2], lanes[3], 32, 32)


def _operands(ctx: LiftContext, ins: ix.Instruction, guard: int) -> tuple[int, Halves, Halves]:
    reg = _xmm_dest(ins)
    src = ctx.read_xmm_operand(1)
    require_mxcsr_default(ctx, guard)
    return reg, ctx.get_xmm(reg), src


def _fmt(ins: ix.Instruction) -> str:
    return "f64" if _name(ins)[-1] == "D" else "f32"


def _name(ins: ix.Instruction) -> str:
    return _MNEMONICS[ins.mnemonic]


_MNEMONICS = {getattr(M, n): n for n in ("ADDSUBPS", "ADDSUBPD", "HADDPS", "HADDPD", "HSUBPS", "HSUBPD",
                                         "ROUNDSS", "ROUNDSD", "ROUNDPS", "ROUNDPD", "DPPS", "DPPD")}


@semantics(M.ADDSUBPS, M.ADDSUBPD)
def lift_addsub(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Even lanes dst - src, odd lanes dst + src."""
    fmt = _fmt(ins)
    reg, dst, src = _operands(ctx, ins, MXCSR_ROUNDING)
    d, s = _lanes(ctx, dst, fmt), _lanes(ctx, src, fmt)
    out = [_op(ctx, f"{'add' if i & 1 else 'sub'}_{fmt}", x, y) for i, (x, y) in enumerate(zip(d, s, strict=True))]
    ctx.set_xmm(reg, *_join(ctx, out, fmt))


@semantics(M.HADDPS, M.HADDPD, M.HSUBPS, M.HSUBPD)
def lift_horizontal_float(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Adjacent lanes of dst (then of src) added or subtracted (even - odd)."""
    fmt = _fmt(ins)
    op = f"{'add' if _name(ins).startswith('HADD') else 'sub'}_{fmt}"
    reg, dst, src = _operands(ctx, ins, MXCSR_ROUNDING)
    lanes = _lanes(ctx, dst, fmt) + _lanes(ctx, src, fmt)
    out = [_op(ctx, op, lanes[i], lanes[i + 1]) for i in range(0, len(lanes), 2)]
    ctx.set_xmm(reg, *_join(ctx, out, fmt))


def _round_lane(ctx: LiftContext, value: Temp, fmt: str, mode: Temp) -> Temp:
    """An integral value by ``mode``; binary32 goes through binary64, where widening and rounding are exact."""
    if fmt == "f64":
        return _op(ctx, "round_f64", value, mode)
    wide = _op(ctx, "cvt_f64_from_f32", value)
    return _op(ctx, "cvt_f32_from_f64", _op(ctx, "round_f64", wide, mode))


@semantics(M.ROUNDSS, M.ROUNDSD, M.ROUNDPS, M.ROUNDPD)
def lift_round(ctx: LiftContext, ins: ix.Instruction) -> None:
    """imm8[1:0] the rounding mode, or MXCSR.RC when imm8[2] is set; scalar forms keep the rest of dst."""
    name = _name(ins)
    fmt = _fmt(ins)
    reg, dst, src = _operands(ctx, ins, MXCSR_DAZ)
    imm = ins.immediate(2)
    mode = _rounding_mode(ctx) if imm & 4 else ctx.b.const(imm & 3)
    lanes = _lanes(ctx, src, fmt)
    if name[-2] == "S":  # scalar: lane 0 only
        rounded = [_round_lane(ctx, lanes[0], fmt, mode)] + _lanes(ctx, dst, fmt)[1:]
    else:
        rounded = [_round_lane(ctx, x, fmt, mode) for x in lanes]
    ctx.set_xmm(reg, *_join(ctx, rounded, fmt))


def _dot(ctx: LiftContext, fmt: str, d: list[Temp], s: list[Temp], imm: int) -> Temp:
    """The sum of the products selected by imm8[7:4] (+0.0 for the others), added pairwise in the SDM's order."""
    zero = ctx.b.const(0)
    add: Callable[[Temp, Temp], Temp] = lambda x, y: _op(ctx, f"add_{fmt}", x, y)  # noqa: E731
    terms = [_op(ctx, f"mul_{fmt}", x, y) if imm >> (4 + i) & 1 else zero
             for i, (x, y) in enumerate(zip(d, s, strict=True))]
    if len(terms) == 2:
        return add(terms[0], terms[1])
    return add(add(terms[0], terms[1]), add(terms[2], terms[3]))


@semantics(M.DPPS, M.DPPD)
def lift_dot_product(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Lane i of the result = the dot product where imm8 bit i is set, else +0.0."""
    fmt = _fmt(ins)
    reg, dst, src = _operands(ctx, ins, MXCSR_ROUNDING)
    imm = ins.immediate(2)
    total = _dot(ctx, fmt, _lanes(ctx, dst, fmt), _lanes(ctx, src, fmt), imm)
    zero = ctx.b.const(0)
    n = 2 if fmt == "f64" else 4
    ctx.set_xmm(reg, *_join(ctx, [total if imm >> i & 1 else zero for i in range(n)], fmt))
