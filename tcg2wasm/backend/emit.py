"""One wasm emitter per IR op, in a table keyed by op name.

Every IR value is an i64 local (a temp's local index is its IR index). An
emitter appends statements to the current sub-block of the
:class:`~tcg2wasm.backend.function.FunctionBuilder`; control-flow emitters end
sub-blocks and add Relooper branches.

Shift and rotate counts need no masking: wasm's i64 shifts already take the
count modulo 64, which is the op table's semantics. Divisions never trap: a
zero divisor (undefined in the op table) gives the op table's fold result, and
``INT64_MIN / -1`` wraps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tcg2wasm.abi import (
    PAGE_BITS,
    PAGE_MASK,
    STATE_OFFSET,
    TLB_ADDEND,
    TLB_BASE,
    TLB_ENTRIES,
    TLB_ENTRY_SIZE,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
)
from tcg2wasm.backend.bn import I64, NONE, Expr
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.backend.emit_float import FLOAT_EMITTERS
from tcg2wasm.backend.emit_vec import VEC_EMITTERS
from tcg2wasm.backend.emit_vec_ext import VEC_EXT_EMITTERS
from tcg2wasm.backend.emit_x87 import X87_EMITTERS
from tcg2wasm.ir.core import Op
from tcg2wasm.ir.ops import OPS, Cond, Exit, memop_for_write, memop_signed, memop_size

if TYPE_CHECKING:
    from tcg2wasm.backend.function import FunctionBuilder

Emitter = Callable[["FunctionBuilder", Op], None]
M32 = 0xFFFF_FFFF
ALL_ONES = (1 << 64) - 1

_CMP: dict[int, int] = {
    Cond.EQ: W.EQ64, Cond.NE: W.NE64, Cond.LT: W.LTS64, Cond.GE: W.GES64, Cond.LE: W.LES64, Cond.GT: W.GTS64,
    Cond.LTU: W.LTU64, Cond.GEU: W.GEU64, Cond.LEU: W.LEU64, Cond.GTU: W.GTU64,
}


def compare(fb: FunctionBuilder, cond: int, a: int, b: int) -> Expr:
    """i32 truth value of ``cond(local a, local b)``."""
    e = fb.e
    op = _CMP.get(cond)
    if op is not None:
        return e.bin(op, e.get(a), e.get(b))
    both = e.bin(W.AND64, e.get(a), e.get(b))
    if cond == Cond.TSTEQ:
        return e.un(W.EQZ64, both)
    if cond == Cond.TSTNE:
        return e.bin(W.NE64, both, e.c64(0))
    raise ValueError(f"bad condition {cond!r}")


# -- plain arithmetic -----------------------------------------------------------------
def _binary(wasm_op: int) -> Emitter:
    def emit(fb: FunctionBuilder, op: Op) -> None:
        o, a, b = op.args
        e = fb.e
        fb.stmt(e.set(o.index, e.bin(wasm_op, e.get(a.index), e.get(b.index))))

    return emit


def _unary(wasm_op: int) -> Emitter:
    def emit(fb: FunctionBuilder, op: Op) -> None:
        o, a = op.args
        e = fb.e
        fb.stmt(e.set(o.index, e.un(wasm_op, e.get(a.index))))

    return emit


def _masked(mask: int) -> Emitter:
    def emit(fb: FunctionBuilder, op: Op) -> None:
        o, a = op.args
        e = fb.e
        fb.stmt(e.set(o.index, e.bin(W.AND64, e.get(a.index), e.c64(mask))))

    return emit


def _mov(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    if o.index != a.index:
        fb.stmt(fb.e.set(o.index, fb.e.get(a.index)))


def _movi(fb: FunctionBuilder, op: Op) -> None:
    o, c = op.args
    fb.stmt(fb.e.set(o.index, fb.e.c64(c)))


def _andc(fb: FunctionBuilder, op: Op) -> None:
    o, a, b = op.args
    e = fb.e
    fb.stmt(e.set(o.index, e.bin(W.AND64, e.get(a.index), e.bin(W.XOR64, e.get(b.index), e.c64(ALL_ONES)))))


def _neg(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    e = fb.e
    fb.stmt(e.set(o.index, e.bin(W.SUB64, e.c64(0), e.get(a.index))))


def _not(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    e = fb.e
    fb.stmt(e.set(o.index, e.bin(W.XOR64, e.get(a.index), e.c64(ALL_ONES))))


def _bswap32_i32(fb: FunctionBuilder, x: Callable[[], Expr]) -> Expr:
    """Byte-swap the i32 that ``x()`` builds (called twice)."""
    e = fb.e
    bytes_0_2 = e.bin(W.ROTR32, e.bin(W.AND32, x(), e.c32(0x00FF00FF)), e.c32(8))  # to positions 3 and 1
    bytes_1_3 = e.bin(W.ROTL32, e.bin(W.AND32, x(), e.c32(0xFF00FF00)), e.c32(8))  # to positions 2 and 0
    return e.bin(W.OR32, bytes_0_2, bytes_1_3)


def _bswap16(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    e = fb.e
    hi = e.bin(W.SHL64, e.bin(W.AND64, e.get(a.index), e.c64(0xFF)), e.c64(8))
    lo = e.bin(W.AND64, e.bin(W.SHRU64, e.get(a.index), e.c64(8)), e.c64(0xFF))
    fb.stmt(e.set(o.index, e.bin(W.OR64, hi, lo)))


def _bswap32(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    e = fb.e
    swapped = _bswap32_i32(fb, lambda: e.un(W.WRAP64, e.get(a.index)))
    fb.stmt(e.set(o.index, e.un(W.EXTU32, swapped)))


def _bswap64(fb: FunctionBuilder, op: Op) -> None:
    o, a = op.args
    e = fb.e
    low = _bswap32_i32(fb, lambda: e.un(W.WRAP64, e.get(a.index)))
    high = _bswap32_i32(fb, lambda: e.un(W.WRAP64, e.bin(W.SHRU64, e.get(a.index), e.c64(32))))
    value = e.bin(W.OR64, e.bin(W.SHL64, e.un(W.EXTU32, low), e.c64(32)), e.un(W.EXTU32, high))
    fb.stmt(e.set(o.index, value))


def _count_zeros(wasm_op: int) -> Emitter:
    def emit(fb: FunctionBuilder, op: Op) -> None:
        o, a, dflt = op.args
        e = fb.e
        value = e.select(e.un(W.EQZ64, e.get(a.index)), e.get(dflt.index), e.un(wasm_op, e.get(a.index)))
        fb.stmt(e.set(o.index, value))

    return emit


def _setcond(fb: FunctionBuilder, op: Op) -> None:
    o, a, b, cond = op.args
    e = fb.e
    fb.stmt(e.set(o.index, e.un(W.EXTU32, compare(fb, cond, a.index, b.index))))


def _movcond(fb: FunctionBuilder, op: Op) -> None:
    o, c1, c2, v1, v2, cond = op.args
    e = fb.e
    value = e.select(compare(fb, cond, c1.index, c2.index), e.get(v1.index), e.get(v2.index))
    fb.stmt(e.set(o.index, value))


def _deposit(fb: FunctionBuilder, op: Op) -> None:
    o, a, b, pos, length = op.args
    e = fb.e
    if length == 64:
        fb.stmt(e.set(o.index, e.get(b.index)))
        return
    field = ((1 << length) - 1) << pos
    shifted = e.get(b.index) if pos == 0 else e.bin(W.SHL64, e.get(b.index), e.c64(pos))
    kept = e.bin(W.AND64, e.get(a.index), e.c64(~field & ALL_ONES))
    fb.stmt(e.set(o.index, e.bin(W.OR64, kept, e.bin(W.AND64, shifted, e.c64(field)))))


def _extract(fb: FunctionBuilder, op: Op) -> None:
    o, a, pos, length = op.args
    e = fb.e
    value = e.get(a.index) if pos == 0 else e.bin(W.SHRU64, e.get(a.index), e.c64(pos))
    if pos + length < 64:
        value = e.bin(W.AND64, value, e.c64((1 << length) - 1))
    fb.stmt(e.set(o.index, value))


def _sextract(fb: FunctionBuilder, op: Op) -> None:
    o, a, pos, length = op.args
    e = fb.e
    value = e.get(a.index)
    left = 64 - pos - length
    if left:
        value = e.bin(W.SHL64, value, e.c64(left))
    if length < 64:
        value = e.bin(W.SHRS64, value, e.c64(64 - length))
    fb.stmt(e.set(o.index, value))


# -- division (never traps) -------------------------------------------------------------
def _divide(wasm_op: int, minus_one_negates: bool = False) -> Emitter:
    """``o = b == 0 ? 0 : a op b``; for signed division ``b == -1`` gives ``-a`` (wrapping)."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        o, a, b = op.args
        e = fb.e
        quotient = e.bin(wasm_op, e.get(a.index), e.get(b.index))
        if minus_one_negates:
            is_m1 = e.bin(W.EQ64, e.get(b.index), e.c64(ALL_ONES))
            quotient = e.if_(is_m1, e.bin(W.SUB64, e.c64(0), e.get(a.index)), quotient)
        fb.stmt(e.set(o.index, e.if_(e.un(W.EQZ64, e.get(b.index)), e.c64(0), quotient)))

    return emit


def _div2(signed: bool) -> Emitter:
    """divu2/divs2: inline 64-bit division when the dividend fits 64 bits, else env.div128."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        q, r, nl, nh, d = op.args
        e = fb.e
        sq, sr = fb.scratch[0], fb.scratch[1]
        if signed:
            fits = e.bin(W.EQ64, e.get(nh.index), e.bin(W.SHRS64, e.get(nl.index), e.c64(63)))
        else:
            fits = e.un(W.EQZ64, e.get(nh.index))
        inline = e.block([
            e.set(sq, _quot(fb, nl.index, d.index, signed)),
            e.set(sr, _rem(fb, nl.index, d.index, signed)),
        ])
        helper = e.block([
            e.set(sq, e.call(b"div128", [e.get(nl.index), e.get(nh.index), e.get(d.index), e.c32(int(signed))], I64)),
            e.set(sr, e.state_load(STATE_OFFSET["scratch"])),
        ])
        fb.stmt(e.if_(fits, inline, helper))
        fb.stmt(e.set(q.index, e.get(sq)))
        fb.stmt(e.set(r.index, e.get(sr)))

    return emit


def _quot(fb: FunctionBuilder, a: int, b: int, signed: bool) -> Expr:
    e = fb.e
    quotient = e.bin(W.DIVS64 if signed else W.DIVU64, e.get(a), e.get(b))
    if signed:
        quotient = e.if_(e.bin(W.EQ64, e.get(b), e.c64(ALL_ONES)), e.bin(W.SUB64, e.c64(0), e.get(a)), quotient)
    return e.if_(e.un(W.EQZ64, e.get(b)), e.c64(0), quotient)


def _rem(fb: FunctionBuilder, a: int, b: int, signed: bool) -> Expr:
    e = fb.e
    remainder = e.bin(W.REMS64 if signed else W.REMU64, e.get(a), e.get(b))
    return e.if_(e.un(W.EQZ64, e.get(b)), e.c64(0), remainder)


# -- 128-bit multiply from 32-bit halves ---------------------------------------------------
def _mul2(signed: bool) -> Emitter:
    def emit(fb: FunctionBuilder, op: Op) -> None:
        lo, hi, a, b = op.args
        e = fb.e
        a0, a1, b0, b1, t, u = fb.scratch
        ai, bi = a.index, b.index

        def half_product(x: int, y: int) -> Expr:
            return e.bin(W.MUL64, e.get(x), e.get(y))

        def high32(x: int) -> Expr:
            return e.bin(W.SHRU64, e.get(x), e.c64(32))

        stmts = [
            e.set(a0, e.bin(W.AND64, e.get(ai), e.c64(M32))),
            e.set(a1, high32(ai)),
            e.set(b0, e.bin(W.AND64, e.get(bi), e.c64(M32))),
            e.set(b1, high32(bi)),
            e.set(t, half_product(a0, b0)),
            e.set(t, e.bin(W.ADD64, half_product(a1, b0), high32(t))),  # middle 1 (cannot overflow)
            e.set(u, e.bin(W.ADD64, half_product(a0, b1), e.bin(W.AND64, e.get(t), e.c64(M32)))),  # middle 2
            e.set(u, e.bin(W.ADD64, e.bin(W.ADD64, half_product(a1, b1), high32(t)), high32(u))),  # unsigned high
        ]
        if signed:
            for x, y in ((ai, bi), (bi, ai)):
                correction = e.bin(W.AND64, e.bin(W.SHRS64, e.get(x), e.c64(63)), e.get(y))
                stmts.append(e.set(u, e.bin(W.SUB64, e.get(u), correction)))
        stmts.append(e.set(t, e.bin(W.MUL64, e.get(ai), e.get(bi))))
        stmts.append(e.set(lo.index, e.get(t)))
        stmts.append(e.set(hi.index, e.get(u)))
        for s in stmts:
            fb.stmt(s)

    return emit


# -- memory: inline soft-TLB fast path, host helper slow path ------------------------------
#: How a helper's raw result becomes the load's value (``ir.opdef.load_extend``), by access size.
_SIGN_EXTEND = {1: W.EXT8S64, 2: W.EXT16S64, 4: W.EXT32S64}
_ZERO_EXTEND = {1: 0xFF, 2: 0xFFFF, 4: M32}


def _tlb_lookup(fb: FunctionBuilder, addr: int, size: int, tag: int) -> tuple[Expr, Expr]:
    """(set ti = entry offset, i32 hit condition) for an access of ``size`` bytes at local ``addr``.

    Hit iff the entry's tag equals the page of the access's *last* byte, so a
    page-crossing access misses and takes the slow path.
    """
    e = fb.e
    page = e.un(W.WRAP64, e.bin(W.SHRU64, e.get(addr), e.c64(PAGE_BITS)))
    offset = e.bin(W.SHL32, e.bin(W.AND32, page, e.c32(TLB_ENTRIES - 1)), e.c32(TLB_ENTRY_SIZE.bit_length() - 1))
    last = e.get(addr) if size == 1 else e.bin(W.ADD64, e.get(addr), e.c64(size - 1))
    hit = e.bin(W.EQ64, e.load(8, False, TLB_BASE + tag, e.get32(fb.ti)), e.bin(W.AND64, last, e.c64(PAGE_MASK)))
    return e.set(fb.ti, offset), hit


def _host_address(fb: FunctionBuilder, addr: int) -> Expr:
    e = fb.e
    addend = e.load(8, False, TLB_BASE + TLB_ADDEND, e.get32(fb.ti))
    return e.un(W.WRAP64, e.bin(W.ADD64, e.get(addr), addend))


def _note_pending_fault(fb: FunctionBuilder) -> Expr:
    """After a host helper: remember whether it reported a fault (checked right after the access)."""
    e = fb.e
    return e.set(fb.fault_flag, e.state_load32(STATE_OFFSET["exit_pending"]))


def _qemu_ld(fb: FunctionBuilder, op: Op) -> None:
    out, addr, memop = op.args
    e = fb.e
    size, signed = memop_size(memop), memop_signed(memop)
    set_ti, hit = _tlb_lookup(fb, addr.index, size, TLB_TAG_READ)
    if memop_for_write(memop):  # the read of a read-modify-write: where loads and stores may both be done
        hit = fb.e.bin(W.AND32, hit, _tlb_lookup(fb, addr.index, size, TLB_TAG_WRITE)[1])
    fast = e.set(out.index, e.load(size, signed, 0, _host_address(fb, addr.index)))
    raw = fb.scratch[0]
    # The helper's result is normalized here, so it may return it extended either way.
    value = e.get(raw)
    if signed and size in _SIGN_EXTEND:
        value = e.un(_SIGN_EXTEND[size], value)
    elif size in _ZERO_EXTEND:
        value = e.bin(W.AND64, value, e.c64(_ZERO_EXTEND[size]))
    slow = e.block([
        e.set(raw, e.call(b"ld_miss", [e.get(addr.index), e.c32(memop)], I64)),
        _note_pending_fault(fb),
        e.set(out.index, value),
    ])
    fb.stmt(set_ti)
    fb.stmt(e.if_(hit, fast, slow))
    fb.fault_if(e.get32(fb.fault_flag))


def _qemu_st(fb: FunctionBuilder, op: Op) -> None:
    val, addr, memop = op.args
    e = fb.e
    size = memop_size(memop)
    set_ti, hit = _tlb_lookup(fb, addr.index, size, TLB_TAG_WRITE)
    fast = e.store(size, 0, _host_address(fb, addr.index), e.get(val.index))
    slow = e.block([
        e.call(b"st_miss", [e.get(addr.index), e.get(val.index), e.c32(memop)], NONE),
        _note_pending_fault(fb),
    ])
    fb.stmt(set_ti)
    fb.stmt(e.if_(hit, fast, slow))
    fb.fault_if(e.get32(fb.fault_flag))


# -- control flow ------------------------------------------------------------------------
def _insn_start(fb: FunctionBuilder, op: Op) -> None:
    fb.insn_pc = op.args[0]


def _set_label(fb: FunctionBuilder, op: Op) -> None:
    target = fb.label_sub(op.args[0])
    if not fb.dead:
        fb.branch(target)
    fb.open(target)


def _br(fb: FunctionBuilder, op: Op) -> None:
    fb.branch(fb.label_sub(op.args[0]))


def _brcond(fb: FunctionBuilder, op: Op) -> None:
    a, b, cond, label = op.args
    fb.branch(fb.label_sub(label), compare(fb, cond, a.index, b.index))
    fallthrough = fb.new_sub(f"{fb.cur.name} +")
    fb.branch(fallthrough)
    fb.open(fallthrough)


def _trapcond(fb: FunctionBuilder, op: Op) -> None:
    a, b, cond, excp = op.args
    e = fb.e
    fb.fault_if(compare(fb, cond, a.index, b.index), [e.state_store(STATE_OFFSET["fault_kind"], e.c64(excp))])


def _goto_tb(fb: FunctionBuilder, op: Op) -> None:
    pc = op.args[0]
    head = fb.heads.get(pc)
    if head is not None:
        fb.branch(head)
    else:
        fb.leave(Exit.CONTINUE, fb.e.c64(pc))


def _goto_ptr(fb: FunctionBuilder, op: Op) -> None:
    fb.leave_indirect(fb.e.get(op.args[0].index))


def _exit_tb(fb: FunctionBuilder, op: Op) -> None:
    """Leave with ``code``; instructions of the TB at or after ``pc`` did not run: give their budget back."""
    code, pc = op.args
    assert fb.tb is not None
    unexecuted = fb.tb.unexecuted_from(pc) if code != Exit.CONTINUE else 0
    if unexecuted:
        e = fb.e
        fb.stmt(e.set(fb.icount, e.bin(W.ADD64, e.get(fb.icount), e.c64(unexecuted))))
    fb.leave(code, fb.e.c64(pc))


EMITTERS: dict[str, Emitter] = {
    "mov_i64": _mov,
    "movi_i64": _movi,
    "add_i64": _binary(W.ADD64),
    "sub_i64": _binary(W.SUB64),
    "mul_i64": _binary(W.MUL64),
    "and_i64": _binary(W.AND64),
    "or_i64": _binary(W.OR64),
    "xor_i64": _binary(W.XOR64),
    "andc_i64": _andc,
    "neg_i64": _neg,
    "not_i64": _not,
    "shl_i64": _binary(W.SHL64),
    "shr_i64": _binary(W.SHRU64),
    "sar_i64": _binary(W.SHRS64),
    "rotl_i64": _binary(W.ROTL64),
    "rotr_i64": _binary(W.ROTR64),
    "ext8s_i64": _unary(W.EXT8S64),
    "ext8u_i64": _masked(0xFF),
    "ext16s_i64": _unary(W.EXT16S64),
    "ext16u_i64": _masked(0xFFFF),
    "ext32s_i64": _unary(W.EXT32S64),
    "ext32u_i64": _masked(M32),
    "bswap16_i64": _bswap16,
    "bswap32_i64": _bswap32,
    "bswap64_i64": _bswap64,
    "clz_i64": _count_zeros(W.CLZ64),
    "ctz_i64": _count_zeros(W.CTZ64),
    "ctpop_i64": _unary(W.POPCNT64),
    "setcond_i64": _setcond,
    "movcond_i64": _movcond,
    "deposit_i64": _deposit,
    "extract_i64": _extract,
    "sextract_i64": _sextract,
    "divu_i64": _divide(W.DIVU64),
    "remu_i64": _divide(W.REMU64),
    "divs_i64": _divide(W.DIVS64, minus_one_negates=True),
    "rems_i64": _divide(W.REMS64),
    "mulu2_i64": _mul2(signed=False),
    "muls2_i64": _mul2(signed=True),
    "divu2_i64": _div2(signed=False),
    "divs2_i64": _div2(signed=True),
    "qemu_ld_i64": _qemu_ld,
    "qemu_st_i64": _qemu_st,
    "insn_start": _insn_start,
    "set_label": _set_label,
    "br": _br,
    "brcond_i64": _brcond,
    "trapcond_i64": _trapcond,
    "goto_tb": _goto_tb,
    "goto_ptr": _goto_ptr,
    "exit_tb": _exit_tb,
}

EMITTERS.update(VEC_EMITTERS)  # the op families' emitters, defined in their own modules
EMITTERS.update(VEC_EXT_EMITTERS)
EMITTERS.update(FLOAT_EMITTERS)
EMITTERS.update(X87_EMITTERS)


def missing_emitters() -> list[str]:
    """Ops of the op table without an emitter (must be empty; checked by the tests)."""
    return sorted(set(OPS) - set(EMITTERS))


__all__ = ["EMITTERS", "compare", "missing_emitters"]
