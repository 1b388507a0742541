"""Forward pass: constant folding, algebraic simplification and copy propagation.

In the manner of QEMU's tcg/optimize.c: one small ``fold_<op>`` function per
op (or family), built from shared helpers (``to_const``, ``to_mov``,
``finish``) and predicates (``OptContext.is_const``, ``decide_cond``).
Evaluating an op whose inputs are all constant uses ``OpDef.fold`` from the
op table, so the optimizer has no second copy of the semantics.

Every folder receives an op whose inputs are already replaced by their copy
roots, records what is known about the op's outputs, and returns the op to
emit (possibly rewritten) or None to drop it.
"""

from __future__ import annotations

from collections.abc import Callable

from tcg2wasm.ir.core import Op, Temp
from tcg2wasm.ir.ops import MASK64, Cond, MemOp, OpFlag, memop_size
from tcg2wasm.opt.conditions import decide_cond
from tcg2wasm.opt.knowledge import OptContext, TempInfo

Folder = Callable[[OptContext, Op], Op | None]


# -- shared rewrites ------------------------------------------------------------
def to_const(ctx: OptContext, op: Op, value: int) -> Op | None:
    """Replace the single-output ``op`` by ``movi out, value``; drop it when out already holds value."""
    out = op.args[0]
    value &= MASK64
    if ctx.is_const(out, value):
        return None
    ctx.define(out, TempInfo.of_const(value))
    return Op("movi_i64", [out, value])


def to_mov(ctx: OptContext, op: Op, src: Temp) -> Op | None:
    """Replace the single-output ``op`` by ``mov out, src``; drop it when out already holds src."""
    out = op.args[0]
    value = ctx.const(src)
    if value is not None:
        return to_const(ctx, op, value)
    if ctx.canon(out) == src:
        return None
    ctx.define_copy(out, src)
    return Op("mov_i64", [out, src])


def finish(ctx: OptContext, op: Op, z_mask: int = MASK64, s_bits: int = 64) -> Op | None:
    """Keep the pure single-output ``op``, recording the known bits of its result."""
    if z_mask == 0:
        return to_const(ctx, op, 0)
    ctx.define(op.args[0], TempInfo(None, z_mask & MASK64, s_bits))
    return op


def fold_default(ctx: OptContext, op: Op) -> Op:
    ctx.define_outputs_unknown(op)
    return op


def _low_bits(length: int) -> int:
    return (1 << length) - 1


# -- arithmetic and logic ---------------------------------------------------------
def fold_mov(ctx: OptContext, op: Op) -> Op | None:
    return to_mov(ctx, op, op.args[1])


def fold_add(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if ctx.is_const(b, 0):
        return to_mov(ctx, op, a)
    if ctx.is_const(a, 0):
        return to_mov(ctx, op, b)
    return finish(ctx, op)


def fold_sub(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_const(ctx, op, 0)
    if ctx.is_const(b, 0):
        return to_mov(ctx, op, a)
    return finish(ctx, op)


def fold_mul(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    for x, y in ((a, b), (b, a)):
        if ctx.is_const(y, 0):
            return to_const(ctx, op, 0)
        if ctx.is_const(y, 1):
            return to_mov(ctx, op, x)
    return finish(ctx, op)


def fold_and(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_mov(ctx, op, a)
    for x, y in ((a, b), (b, a)):
        mask = ctx.const(y)
        if mask is not None and ctx.z_mask(x) & ~mask == 0:
            return to_mov(ctx, op, x)  # covers x & ~0 and masking already-clear bits
    return finish(ctx, op, ctx.z_mask(a) & ctx.z_mask(b))


def fold_or(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_mov(ctx, op, a)
    for x, y in ((a, b), (b, a)):
        if ctx.is_const(y, 0):
            return to_mov(ctx, op, x)
        if ctx.is_const(y, MASK64):
            return to_const(ctx, op, MASK64)
    return finish(ctx, op, ctx.z_mask(a) | ctx.z_mask(b))


def fold_xor(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_const(ctx, op, 0)
    for x, y in ((a, b), (b, a)):
        if ctx.is_const(y, 0):
            return to_mov(ctx, op, x)
    return finish(ctx, op, ctx.z_mask(a) | ctx.z_mask(b))


def fold_andc(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b or ctx.is_const(b, MASK64):
        return to_const(ctx, op, 0)
    clear = ctx.const(b)
    if clear is not None and ctx.z_mask(a) & clear == 0:
        return to_mov(ctx, op, a)  # covers a & ~0
    return finish(ctx, op, ctx.z_mask(a) & ~(clear or 0))


def fold_shift(ctx: OptContext, op: Op) -> Op | None:
    """shl, shr, sar, rotl, rotr: shifting 0 or by 0 (modulo 64) changes nothing."""
    _, a, b = op.args
    count = ctx.const(b)
    if ctx.is_const(a, 0) or (count is not None and count & 63 == 0):
        return to_mov(ctx, op, a)
    z = ctx.z_mask(a)
    if count is None:
        return finish(ctx, op)
    count &= 63
    match op.name:
        case "shl_i64":
            return finish(ctx, op, z << count)
        case "shr_i64":
            return finish(ctx, op, z >> count)
        case "sar_i64" if z >> 63 == 0:
            return finish(ctx, op, z >> count)
    return finish(ctx, op)


def _fold_ext(bits: int, signed: bool) -> Folder:
    """ext{8,16,32}{s,u}: drop the extension when the input is already extended."""
    mask = _low_bits(bits)

    def fold_ext(ctx: OptContext, op: Op) -> Op | None:
        a = op.args[1]
        z = ctx.z_mask(a)
        if not signed:
            return to_mov(ctx, op, a) if z & ~mask == 0 else finish(ctx, op, z & mask)
        if z >> (bits - 1) == 0 or ctx.s_bits(a) <= bits:
            return to_mov(ctx, op, a)
        return finish(ctx, op, MASK64, bits)

    return fold_ext


def _fold_known_width(z_mask: int) -> Folder:
    """Ops whose result always fits in ``z_mask``."""

    def fold_known_width(ctx: OptContext, op: Op) -> Op | None:
        return finish(ctx, op, z_mask)

    return fold_known_width


def fold_count_zeros(ctx: OptContext, op: Op) -> Op | None:
    """clz/ctz: a count up to 64, or the default operand b."""
    return finish(ctx, op, 0x7F | ctx.z_mask(op.args[2]))


def fold_div(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if ctx.is_const(b, 1):
        return to_mov(ctx, op, a) if op.name in ("divu_i64", "divs_i64") else to_const(ctx, op, 0)
    return finish(ctx, op)


def fold_deposit(ctx: OptContext, op: Op) -> Op | None:
    _, a, b, pos, length = op.args
    if length == 64:
        return to_mov(ctx, op, b)
    field = _low_bits(length) << pos
    return finish(ctx, op, (ctx.z_mask(a) & ~field) | ((ctx.z_mask(b) << pos) & field))


def fold_extract(ctx: OptContext, op: Op) -> Op | None:
    _, a, pos, length = op.args
    z = ctx.z_mask(a)
    if pos == 0 and z & ~_low_bits(length) == 0:
        return to_mov(ctx, op, a)
    return finish(ctx, op, (z >> pos) & _low_bits(length))


def fold_sextract(ctx: OptContext, op: Op) -> Op | None:
    _, a, pos, length = op.args
    if pos == 0 and (ctx.s_bits(a) <= length or ctx.z_mask(a) >> (length - 1) == 0):
        return to_mov(ctx, op, a)
    field = (ctx.z_mask(a) >> pos) & _low_bits(length)
    if field >> (length - 1) == 0:
        return finish(ctx, op, field, length)
    return finish(ctx, op, MASK64, length)


# -- comparisons and selection ------------------------------------------------------
def fold_setcond(ctx: OptContext, op: Op) -> Op | None:
    _, a, b, cond = op.args
    decided = decide_cond(ctx, Cond(cond), a, b)
    if decided is not None:
        return to_const(ctx, op, int(decided))
    return finish(ctx, op, 1)


def fold_movcond(ctx: OptContext, op: Op) -> Op | None:
    _, c1, c2, v1, v2, cond = op.args
    if v1 == v2:
        return to_mov(ctx, op, v1)
    decided = decide_cond(ctx, Cond(cond), c1, c2)
    if decided is not None:
        return to_mov(ctx, op, v1 if decided else v2)
    return finish(ctx, op, ctx.z_mask(v1) | ctx.z_mask(v2), max(ctx.s_bits(v1), ctx.s_bits(v2)))


def fold_brcond(ctx: OptContext, op: Op) -> Op | None:
    a, b, cond, label = op.args
    decided = decide_cond(ctx, Cond(cond), a, b)
    if decided is None:
        return op
    return Op("br", [label]) if decided else None


def fold_trapcond(ctx: OptContext, op: Op) -> Op | None:
    a, b, cond, _ = op.args
    return None if decide_cond(ctx, Cond(cond), a, b) is False else op


# -- two outputs and memory --------------------------------------------------------
def fold_qemu_ld(ctx: OptContext, op: Op) -> Op:
    memop = op.args[2]
    bits = 8 * memop_size(memop)
    if memop & MemOp.SIGN:
        ctx.define(op.args[0], TempInfo(None, MASK64, bits))
    else:
        ctx.define(op.args[0], TempInfo(None, _low_bits(bits), 64 if bits == 64 else bits + 1))
    return op


FOLDERS: dict[str, Folder] = {
    "mov_i64": fold_mov,
    "add_i64": fold_add,
    "sub_i64": fold_sub,
    "mul_i64": fold_mul,
    "and_i64": fold_and,
    "or_i64": fold_or,
    "xor_i64": fold_xor,
    "andc_i64": fold_andc,
    "shl_i64": fold_shift,
    "shr_i64": fold_shift,
    "sar_i64": fold_shift,
    "rotl_i64": fold_shift,
    "rotr_i64": fold_shift,
    "ext8s_i64": _fold_ext(8, True),
    "ext8u_i64": _fold_ext(8, False),
    "ext16s_i64": _fold_ext(16, True),
    "ext16u_i64": _fold_ext(16, False),
    "ext32s_i64": _fold_ext(32, True),
    "ext32u_i64": _fold_ext(32, False),
    "bswap16_i64": _fold_known_width(0xFFFF),
    "bswap32_i64": _fold_known_width(0xFFFF_FFFF),
    "ctpop_i64": _fold_known_width(0x7F),
    "clz_i64": fold_count_zeros,
    "ctz_i64": fold_count_zeros,
    "divu_i64": fold_div,
    "divs_i64": fold_div,
    "remu_i64": fold_div,
    "rems_i64": fold_div,
    "deposit_i64": fold_deposit,
    "extract_i64": fold_extract,
    "sextract_i64": fold_sextract,
    "setcond_i64": fold_setcond,
    "movcond_i64": fold_movcond,
    "brcond_i64": fold_brcond,
    "trapcond_i64": fold_trapcond,
    "qemu_ld_i64": fold_qemu_ld,
}


def fold_op(ctx: OptContext, op: Op) -> Op | None:
    """Simplify one op whose inputs are canonical; constant inputs are evaluated by the op table."""
    d = op.opdef
    if d.fold is not None and d.n_out == 1:
        values = [ctx.const(t) for t in op.inputs]
        if all(v is not None for v in values):
            return to_const(ctx, op, d.fold(*values, *op.consts))
    return FOLDERS.get(op.name, fold_default)(ctx, op)


def with_canonical_inputs(ctx: OptContext, op: Op) -> Op:
    """A copy of ``op`` reading each input from its copy root."""
    d = op.opdef
    args = list(op.args)
    for i in range(d.n_out, d.n_out + d.n_in):
        args[i] = ctx.canon(args[i])
    return Op(op.name, args)


def referenced_labels(ops: list[Op]) -> set[int]:
    return {op.consts[-1] for op in ops if op.name in ("br", "brcond_i64")}


def fold_and_propagate(ops: list[Op]) -> list[Op]:
    """One forward pass: fold, propagate copies, drop unreachable code and unused labels.

    All knowledge is dropped at a label that some branch targets (a join
    point); an unreferenced label is only a fall-through and is removed. Ops
    after a terminator and before the next label can never run.
    """
    ctx = OptContext()
    used = referenced_labels(ops)
    out: list[Op] = []
    reachable = True
    for op in ops:
        if op.name == "set_label":
            if op.args[0] in used:
                ctx.reset()
                reachable = True
                out.append(op)
            continue
        if not reachable:
            continue
        new = fold_op(ctx, with_canonical_inputs(ctx, op))
        if new is None:
            continue
        out.append(new)
        if new.opdef.flags & OpFlag.TERMINATOR:
            reachable = False
    return out
