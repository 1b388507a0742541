"""Forward pass: constant folding, algebraic simplification and copy propagation.

In the manner of QEMU's tcg/optimize.c: one small ``fold_<op>`` function per
op (or family), built from shared helpers (``to_const``, ``to_mov``,
``finish``) and predicates (``OptContext.is_const``, ``decide_cond``).
Evaluating an op whose inputs are all constant uses ``OpDef.fold`` from the
op table, so the optimizer has no second copy of the semantics.

Every folder receives an op whose inputs are already replaced by their copy
roots, records what is known about the op's outputs, and returns the op to
emit (possibly rewritten) or None to drop it. A folder that keeps an op
returns the very object it was given, which lets the driver see cheaply that
a round changed nothing.

The passes run on ops in index form (``shape.py``), but a folder only compares
and hashes its temps, so it works on Temp objects as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcg2wasm.ir.core import Op
from tcg2wasm.ir.ops import MASK64, Cond, MemOp, PureFn, memop_size
from tcg2wasm.opt.conditions import decide_cond
from tcg2wasm.opt.knowledge import OptContext, TempInfo, TempKey, const_info, known_bits
from tcg2wasm.opt.shape import SHAPES, OpShape

Folder = Callable[[OptContext, Op], Op | None]
COND_OF: dict[int, Cond] = {int(c): c for c in Cond}
"""``Cond(value)`` as a plain lookup (the enum call is slow for the per-op paths)."""


# -- shared rewrites ------------------------------------------------------------
def to_const(ctx: OptContext, op: Op, value: int) -> Op | None:
    """Replace the single-output ``op`` by ``movi out, value``; drop it when out already holds value."""
    out = op.args[0]
    value &= MASK64
    if ctx.is_const(out, value):
        return None
    ctx.define(out, const_info(value))
    if op.name == "movi_i64" and op.args[1] == value:
        return op
    return Op("movi_i64", [out, value])


def to_mov(ctx: OptContext, op: Op, src: TempKey) -> Op | None:
    """Replace the single-output ``op`` by ``mov out, src``; drop it when out already holds src."""
    out = op.args[0]
    value = ctx.const(src)
    if value is not None:
        return to_const(ctx, op, value)
    if ctx.canon(out) == src:
        return None
    ctx.define_copy(out, src)
    if op.name == "mov_i64" and op.args[1] == src:
        return op
    return Op("mov_i64", [out, src])


def finish(ctx: OptContext, op: Op, z_mask: int = MASK64, s_bits: int = 64) -> Op | None:
    """Keep the pure single-output ``op``, recording the known bits of its result."""
    if z_mask == 0:
        return to_const(ctx, op, 0)
    z_mask &= MASK64
    if z_mask == MASK64 and s_bits == 64:
        ctx.forget(op.args[0])  # nothing known (``define`` with UNKNOWN)
    else:
        ctx.define(op.args[0], known_bits(z_mask, s_bits))
    return op


def keep_without_outputs(ctx: OptContext, op: Op) -> Op:
    """An op writing no temp (a store, a branch, ``insn_start``…): nothing to learn."""
    return op


def keep_one_output_unknown(ctx: OptContext, op: Op) -> Op:
    ctx.forget(op.args[0])
    return op


def keep_two_outputs_unknown(ctx: OptContext, op: Op) -> Op:
    ctx.forget(op.args[0])
    ctx.forget(op.args[1])
    return op


def fold_default(ctx: OptContext, op: Op) -> Op:
    """Ops without a rule of their own: their outputs become unknown."""
    for t in op.args[: SHAPES[op.name].n_out]:
        ctx.forget(t)
    return op


def default_folder(shape: OpShape) -> Folder:
    """``fold_default``, specialised to the number of outputs."""
    return {0: keep_without_outputs, 1: keep_one_output_unknown, 2: keep_two_outputs_unknown}.get(
        shape.n_out, fold_default)


def fold_movi(ctx: OptContext, op: Op) -> Op | None:
    return to_const(ctx, op, op.args[1])


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
    ia, ib = ctx.info(a), ctx.info(b)
    # x & mask, when x has no bit outside the mask (covers x & ~0)
    if ib.const is not None and ia.z_mask & ~ib.const == 0:
        return to_mov(ctx, op, a)
    if ia.const is not None and ib.z_mask & ~ia.const == 0:
        return to_mov(ctx, op, b)
    return finish(ctx, op, ia.z_mask & ib.z_mask)


def fold_or(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_mov(ctx, op, a)
    ia, ib = ctx.info(a), ctx.info(b)
    for x, y_const in ((a, ib.const), (b, ia.const)):
        if y_const == 0:
            return to_mov(ctx, op, x)
        if y_const == MASK64:
            return to_const(ctx, op, MASK64)
    return finish(ctx, op, ia.z_mask | ib.z_mask)


def fold_xor(ctx: OptContext, op: Op) -> Op | None:
    _, a, b = op.args
    if a == b:
        return to_const(ctx, op, 0)
    ia, ib = ctx.info(a), ctx.info(b)
    if ib.const == 0:
        return to_mov(ctx, op, a)
    if ia.const == 0:
        return to_mov(ctx, op, b)
    return finish(ctx, op, ia.z_mask | ib.z_mask)


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
        info = ctx.info(a)
        z = info.z_mask
        if not signed:
            return to_mov(ctx, op, a) if z & ~mask == 0 else finish(ctx, op, z & mask)
        if z >> (bits - 1) == 0 or info.s_bits <= bits:
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
    decided = decide_cond(ctx, COND_OF[cond], a, b)
    if decided is not None:
        return to_const(ctx, op, int(decided))
    return finish(ctx, op, 1)


def fold_movcond(ctx: OptContext, op: Op) -> Op | None:
    _, c1, c2, v1, v2, cond = op.args
    if v1 == v2:
        return to_mov(ctx, op, v1)
    decided = decide_cond(ctx, COND_OF[cond], c1, c2)
    if decided is not None:
        return to_mov(ctx, op, v1 if decided else v2)
    return finish(ctx, op, ctx.z_mask(v1) | ctx.z_mask(v2), max(ctx.s_bits(v1), ctx.s_bits(v2)))


def fold_brcond(ctx: OptContext, op: Op) -> Op | None:
    a, b, cond, label = op.args
    decided = decide_cond(ctx, COND_OF[cond], a, b)
    if decided is None:
        return op
    return Op("br", [label]) if decided else None


def fold_trapcond(ctx: OptContext, op: Op) -> Op | None:
    a, b, cond, _ = op.args
    return None if decide_cond(ctx, COND_OF[cond], a, b) is False else op


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
    "movi_i64": fold_movi,
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


#: Ops with neither a folder above nor semantics in the op table (``fold``): the forward pass only
#: canonicalizes their inputs (and records that their outputs are unknown). Listed, so that a new op
#: must be given a folder, a fold, or a place here (tests/test_structure.py checks).
NOT_FOLDED: frozenset[str] = frozenset({
    "mulu2_i64", "muls2_i64", "divu2_i64", "divs2_i64",  # two outputs
    "qemu_st_i64",  # a side effect only
    "x87_arith", "x87_unary", "x87_unary2", "x87_load", "x87_store", "x87_const",  # several outputs
    "insn_start", "set_label", "br", "goto_tb", "goto_ptr", "exit_tb",  # markers and control flow
})

HANDLE_CONSTANTS: frozenset[str] = frozenset({"movi_i64", "mov_i64"})
"""Pure ops whose folder gives the same result as the op table's evaluation when every input is
constant (``to_mov`` of a constant is ``to_const``), so the forward pass skips that evaluation."""


@dataclass(frozen=True, slots=True)
class FoldRule:
    """How the forward pass treats one op: the parts of its ``OpShape`` it reads, and its folder."""

    n_out: int
    n_temps: int
    terminator: bool
    inert: bool  # reads and writes no temp and has no rule (insn_start, goto_tb…): kept as it is
    evaluate: PureFn | None  # the op table's semantics, for all-constant inputs
    folder: Folder

    @staticmethod
    def of(name: str, shape: OpShape) -> FoldRule:
        evaluate = None if name in HANDLE_CONSTANTS else shape.const_fold
        inert = shape.n_temps == 0 and name not in FOLDERS
        return FoldRule(shape.n_out, shape.n_temps, shape.terminator, inert, evaluate,
                        FOLDERS.get(name, default_folder(shape)))


RULES: dict[str, FoldRule] = {name: FoldRule.of(name, shape) for name, shape in SHAPES.items()}


def fold_op(ctx: OptContext, op: Op) -> Op | None:
    """Simplify one op whose inputs are canonical; constant inputs are evaluated by the op table."""
    return _fold(ctx, op, RULES[op.name])


def _fold(ctx: OptContext, op: Op, rule: FoldRule) -> Op | None:
    evaluate = rule.evaluate
    if evaluate is not None:
        args = op.args
        values = ctx.consts(args[1 : rule.n_temps])
        if values is not None:
            return to_const(ctx, op, evaluate(*values, *args[rule.n_temps :]))
    return rule.folder(ctx, op)


def with_canonical_inputs(ctx: OptContext, op: Op) -> Op:
    """``op`` reading each input from its copy root: ``op`` itself when no input is a copy."""
    return _reading_roots(ctx, op, RULES[op.name])


def _reading_roots(ctx: OptContext, op: Op, rule: FoldRule) -> Op:
    if rule.n_temps == rule.n_out:  # reads no temp
        return op
    args = ctx.canonical_args(op.args, rule.n_out, rule.n_temps)
    return op if args is None else Op(op.name, args)


def referenced_labels(ops: list[Op]) -> set[int]:
    return {op.args[-1] for op in ops if op.name in ("br", "brcond_i64")}


def forward_pass(ops: list[Op]) -> tuple[list[Op], bool]:
    """One forward pass, and whether its result differs from ``ops``.

    All knowledge is dropped at a label that some branch targets (a join
    point); an unreferenced label is only a fall-through and is removed. Ops
    after a terminator and before the next label can never run.
    """
    ctx = OptContext()
    used = referenced_labels(ops)
    out: list[Op] = []
    changed = False
    reachable = True
    rules = RULES
    for op in ops:
        name = op.name
        if name == "set_label":
            if op.args[0] in used:
                ctx.reset()
                reachable = True
                out.append(op)
            else:
                changed = True
            continue
        if not reachable:
            changed = True
            continue
        rule = rules[name]
        if not rule.inert:
            new = _fold(ctx, _reading_roots(ctx, op, rule), rule)
            if new is None:
                changed = True
                continue
            if new is not op:
                changed = changed or new.name != name or new.args != op.args
                rule = rules[new.name]
            op = new
        out.append(op)
        if rule.terminator:
            reachable = False
    return out, changed
