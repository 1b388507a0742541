"""The op table: the single source of truth for the TCG-like IR.

Every op is described once: its name (as in QEMU's docs/devel/tcg-ops.rst where
the op exists there), how many output, input and constant arguments it takes,
its flags, and -- for pure ops -- its semantics as a Python function on unsigned
64-bit integers. The builder, validator, printer, optimizer (constant folding),
reference interpreter and the wasm backend all read ``OPS``. The row type and
the specifications of the non-pure ops are in ``tcg2wasm.ir.opdef``; the float
and vector families are defined in ``ops_float``/``ops_vec`` and joined here.

All values are 64 bits wide (``_i64`` ops only); narrower x86 arithmetic is
expressed with the ``ext*`` ops.
"""

from __future__ import annotations

from tcg2wasm.ir.opdef import (
    COND_TESTS,
    INVERTED_COND,
    MASK64,
    Cond,
    CondTest,
    Excp,
    Exit,
    MemOp,
    OpDef,
    OpFlag,
    PureFn,
    eval_cond,
    load_extend,
    memop_for_write,
    memop_signed,
    memop_size,
    to_signed,
    two_output_values,
)
from tcg2wasm.ir.ops_float import FLOAT_OPS  # IEEE binary32/binary64 with x86 semantics
from tcg2wasm.ir.ops_vec import VEC_OPS  # lane ops on 64-bit halves of xmm registers
from tcg2wasm.ir.ops_vec_ext import VEC_EXT_OPS  # the lane ops SSSE3 and SSE4 add
from tcg2wasm.ir.ops_x87 import X87_OPS  # 80-bit extended arithmetic of the x87

__all__ = [
    "COND_TESTS", "CORE_OPS", "INVERTED_COND", "MASK64", "OPS", "OP_DEFS", "Cond", "CondTest", "Excp", "Exit",
    "MemOp", "OpDef", "OpFlag", "PureFn", "eval_cond", "load_extend", "memop_for_write", "memop_signed", "memop_size",
    "to_signed", "two_output_values",
]


def _sext(bits: int) -> PureFn:
    sign = 1 << (bits - 1)
    mask = (1 << bits) - 1
    return lambda a: (((a & mask) ^ sign) - sign) & MASK64


def _rotl(a: int, n: int) -> int:
    n &= 63
    return ((a << n) | (a >> (64 - n))) & MASK64 if n else a


def _bswap(nbytes: int) -> PureFn:
    return lambda a: int.from_bytes((a & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


def _clz(a: int, dflt: int) -> int:
    return 64 - a.bit_length() if a else dflt


def _ctz(a: int, dflt: int) -> int:
    return (a & -a).bit_length() - 1 if a else dflt


def _extract(a: int, pos: int, length: int) -> int:
    return (a >> pos) & ((1 << length) - 1)


def _sextract(a: int, pos: int, length: int) -> int:
    return _sext(length)(_extract(a, pos, length))


def _deposit(a: int, b: int, pos: int, length: int) -> int:
    field = ((1 << length) - 1) << pos
    return (a & ~field & MASK64) | ((b << pos) & field)


def _divs(a: int, b: int) -> int:
    sa, sb = to_signed(a), to_signed(b)
    q = abs(sa) // abs(sb)
    return (q if (sa < 0) == (sb < 0) else -q) & MASK64


def _rems(a: int, b: int) -> int:
    sa, sb = to_signed(a), to_signed(b)
    r = abs(sa) % abs(sb)
    return (r if sa >= 0 else -r) & MASK64


_S = OpFlag.SIDE_EFFECTS
_BB = OpFlag.BB_END
_T = OpFlag.TERMINATOR
_M = OpFlag.MEMORY

CORE_OPS: tuple[OpDef, ...] = (
    OpDef("mov_i64", 1, 1, 0, fold=lambda a: a, doc="o = a"),
    OpDef("movi_i64", 1, 0, 1, fold=lambda c: c & MASK64, doc="o = $c"),
    OpDef("add_i64", 1, 2, 0, fold=lambda a, b: (a + b) & MASK64),
    OpDef("sub_i64", 1, 2, 0, fold=lambda a, b: (a - b) & MASK64),
    OpDef("mul_i64", 1, 2, 0, fold=lambda a, b: (a * b) & MASK64, doc="low 64 bits of a*b"),
    OpDef("and_i64", 1, 2, 0, fold=lambda a, b: a & b),
    OpDef("or_i64", 1, 2, 0, fold=lambda a, b: a | b),
    OpDef("xor_i64", 1, 2, 0, fold=lambda a, b: a ^ b),
    OpDef("andc_i64", 1, 2, 0, fold=lambda a, b: a & ~b & MASK64, doc="a & ~b"),
    OpDef("neg_i64", 1, 1, 0, fold=lambda a: -a & MASK64),
    OpDef("not_i64", 1, 1, 0, fold=lambda a: ~a & MASK64),
    OpDef("shl_i64", 1, 2, 0, fold=lambda a, b: (a << (b & 63)) & MASK64,
          doc="count taken modulo 64 (QEMU: unspecified for count >= 64)"),
    OpDef("shr_i64", 1, 2, 0, fold=lambda a, b: a >> (b & 63), doc="logical; count modulo 64"),
    OpDef("sar_i64", 1, 2, 0, fold=lambda a, b: (to_signed(a) >> (b & 63)) & MASK64,
          doc="arithmetic; count modulo 64"),
    OpDef("rotl_i64", 1, 2, 0, fold=lambda a, b: _rotl(a, b), doc="count modulo 64"),
    OpDef("rotr_i64", 1, 2, 0, fold=lambda a, b: _rotl(a, (64 - (b & 63)) & 63), doc="count modulo 64"),
    OpDef("ext8s_i64", 1, 1, 0, fold=_sext(8)),
    OpDef("ext8u_i64", 1, 1, 0, fold=lambda a: a & 0xFF),
    OpDef("ext16s_i64", 1, 1, 0, fold=_sext(16)),
    OpDef("ext16u_i64", 1, 1, 0, fold=lambda a: a & 0xFFFF),
    OpDef("ext32s_i64", 1, 1, 0, fold=_sext(32)),
    OpDef("ext32u_i64", 1, 1, 0, fold=lambda a: a & 0xFFFFFFFF),
    OpDef("bswap16_i64", 1, 1, 0, fold=_bswap(2), doc="swap bytes of the low 16 bits, zero-extend"),
    OpDef("bswap32_i64", 1, 1, 0, fold=_bswap(4), doc="swap bytes of the low 32 bits, zero-extend"),
    OpDef("bswap64_i64", 1, 1, 0, fold=_bswap(8)),
    OpDef("clz_i64", 1, 2, 0, fold=_clz, doc="leading zeros of a, or b when a == 0"),
    OpDef("ctz_i64", 1, 2, 0, fold=_ctz, doc="trailing zeros of a, or b when a == 0"),
    OpDef("ctpop_i64", 1, 1, 0, fold=lambda a: a.bit_count()),
    OpDef("setcond_i64", 1, 2, 1, fold=lambda a, b, c: int(eval_cond(Cond(c), a, b)),
          doc="o = cond(a, b) ? 1 : 0"),
    OpDef("movcond_i64", 1, 4, 1, fold=lambda c1, c2, v1, v2, c: v1 if eval_cond(Cond(c), c1, c2) else v2,
          doc="o = cond(c1, c2) ? v1 : v2"),
    OpDef("deposit_i64", 1, 2, 2, fold=_deposit, doc="o = a with bits [pos, pos+len) replaced by low bits of b"),
    OpDef("extract_i64", 1, 1, 2, fold=_extract, doc="o = (a >> pos) & ((1 << len) - 1)"),
    OpDef("sextract_i64", 1, 1, 2, fold=_sextract, doc="sign-extended extract"),
    OpDef("divu_i64", 1, 2, 0, fold=lambda a, b: a // b if b else 0,
          doc="unsigned quotient; undefined when b == 0 (guard with trapcond_i64)"),
    OpDef("remu_i64", 1, 2, 0, fold=lambda a, b: a % b if b else 0, doc="unsigned remainder; undefined when b == 0"),
    OpDef("divs_i64", 1, 2, 0, fold=lambda a, b: _divs(a, b) if b else 0,
          doc="signed quotient truncating toward zero; undefined when b == 0 or INT64_MIN / -1"),
    OpDef("rems_i64", 1, 2, 0, fold=lambda a, b: _rems(a, b) if b else 0,
          doc="signed remainder (sign of a); undefined when b == 0 or INT64_MIN / -1"),
    # Two-output ops (no fold: interpreter / backend special cases).
    OpDef("mulu2_i64", 2, 2, 0, doc="(hi:lo) = a * b unsigned 128-bit; outputs lo, hi"),
    OpDef("muls2_i64", 2, 2, 0, doc="(hi:lo) = a * b signed 128-bit; outputs lo, hi"),
    OpDef("divu2_i64", 2, 3, 0,
          doc="q, r = (nh:nl) / d unsigned; inputs nl, nh, d; undefined if d == 0 or q >= 2**64"),
    OpDef("divs2_i64", 2, 3, 0,
          doc="q, r = (nh:nl) / d signed; inputs nl, nh, d; undefined if d == 0 or q outside int64"),
    # Memory.
    OpDef("qemu_ld_i64", 1, 1, 1, _M | _S, doc="o = load(addr, memop); may fault"),
    OpDef("qemu_st_i64", 0, 2, 1, _M | _S, doc="store(val, addr, memop); inputs val, addr; may fault"),
    # Control flow.
    OpDef("insn_start", 0, 0, 1, _S, doc="marks the start of the guest instruction at pc $c"),
    OpDef("set_label", 0, 0, 1, _BB | _S, doc="defines label $l"),
    OpDef("br", 0, 0, 1, _BB | _T | _S, doc="jump to label $l"),
    OpDef("brcond_i64", 0, 2, 2, _BB | _S | OpFlag.COND_BRANCH, doc="if cond(a, b) jump to label $l; consts cond, l"),
    OpDef("trapcond_i64", 0, 2, 2, _S,
          doc="if cond(a, b) raise exception $excp at the current instruction; consts cond, excp"),
    OpDef("goto_tb", 0, 0, 1, _BB | _T | _S, doc="continue at constant guest pc $pc"),
    OpDef("goto_ptr", 0, 1, 0, _BB | _T | _S, doc="continue at guest pc a (indirect jump)"),
    OpDef("exit_tb", 0, 0, 2, _BB | _T | _S,
          doc="leave translated code with Exit code $code, rip = $pc; consts code, pc"),
)

OP_DEFS: tuple[OpDef, ...] = CORE_OPS + VEC_OPS + VEC_EXT_OPS + FLOAT_OPS + X87_OPS
OPS: dict[str, OpDef] = {d.name: d for d in OP_DEFS}
