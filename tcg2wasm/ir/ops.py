"""The op table: the single source of truth for the TCG-like IR.

Every op is described once here: its name (as in QEMU's docs/devel/tcg-ops.rst
where the op exists there), how many output, input and constant arguments it
takes, its flags, and -- for pure ops -- its semantics as a Python function on
unsigned 64-bit integers. The builder, validator, printer, optimizer (constant
folding), reference interpreter and the wasm backend all read this table.

All values are 64 bits wide (``_i64`` ops only); narrower x86 arithmetic is
expressed with the ``ext*`` ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag

MASK64 = (1 << 64) - 1


def to_signed(value: int) -> int:
    """Interpret an unsigned 64-bit value as two's complement."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class Cond(IntEnum):
    """Comparison conditions, as QEMU's TCGCond."""

    EQ = 0
    NE = 1
    LT = 2
    GE = 3
    LE = 4
    GT = 5
    LTU = 6
    GEU = 7
    LEU = 8
    GTU = 9
    TSTEQ = 10  # (a & b) == 0
    TSTNE = 11  # (a & b) != 0


def eval_cond(cond: Cond, a: int, b: int) -> bool:
    """Evaluate ``cond`` on two unsigned 64-bit values."""
    match cond:
        case Cond.EQ:
            return a == b
        case Cond.NE:
            return a != b
        case Cond.LT:
            return to_signed(a) < to_signed(b)
        case Cond.GE:
            return to_signed(a) >= to_signed(b)
        case Cond.LE:
            return to_signed(a) <= to_signed(b)
        case Cond.GT:
            return to_signed(a) > to_signed(b)
        case Cond.LTU:
            return a < b
        case Cond.GEU:
            return a >= b
        case Cond.LEU:
            return a <= b
        case Cond.GTU:
            return a > b
        case Cond.TSTEQ:
            return (a & b) == 0
        case Cond.TSTNE:
            return (a & b) != 0
    raise ValueError(f"bad condition {cond!r}")


INVERTED_COND = {
    Cond.EQ: Cond.NE, Cond.NE: Cond.EQ, Cond.LT: Cond.GE, Cond.GE: Cond.LT,
    Cond.LE: Cond.GT, Cond.GT: Cond.LE, Cond.LTU: Cond.GEU, Cond.GEU: Cond.LTU,
    Cond.LEU: Cond.GTU, Cond.GTU: Cond.LEU, Cond.TSTEQ: Cond.TSTNE, Cond.TSTNE: Cond.TSTEQ,
}


class MemOp(IntFlag):
    """Memory access size and signedness (little-endian only), as QEMU's MemOp."""

    UB = 0
    UW = 1
    UL = 2
    UQ = 3
    SIGN = 4
    SB = 4
    SW = 5
    SL = 6


def memop_size(memop: int) -> int:
    """Access size in bytes."""
    return 1 << (memop & 3)


class Exit(IntEnum):
    """Why translated code hands control back (``exit_tb`` codes, also region return values)."""

    CONTINUE = 0  # next pc is in state.rip; the dispatcher goes on
    FAULT = 1  # memory or CPU exception; kind/address in the state block
    SYSCALL = 2  # guest executed syscall; rip is the next instruction
    FALLBACK = 3  # instruction not lifted; rip is that instruction
    HLT = 4
    ICOUNT = 5  # instruction budget exhausted at a block start; rip is that block
    MISS = 6  # dispatcher: no translation for state.rip
    STOP = 7  # dispatcher: state.rip reached the stop address
    CPUID = 8  # host computes cpuid; rip is the next instruction
    RDTSC = 9  # host computes rdtsc; rip is the next instruction
    INT = 10  # int n / int3; exception number in state.fault_kind


class Excp(IntEnum):
    """Exception kinds stored in state.fault_kind on ``Exit.FAULT``."""

    NONE = 0
    READ_UNMAPPED = 1
    WRITE_UNMAPPED = 2
    FETCH_UNMAPPED = 3
    READ_PROT = 4
    WRITE_PROT = 5
    FETCH_PROT = 6
    DIVIDE = 7  # #DE
    INVALID_OPCODE = 8  # #UD (undecodable bytes)
    GP = 9  # #GP


class OpFlag:
    """Op properties, as plain int bits (IntFlag arithmetic is too slow for the per-op hot paths)."""

    NONE = 0
    SIDE_EFFECTS = 1  # must not be removed even if outputs are dead
    BB_END = 2  # ends a basic block (control may leave)
    TERMINATOR = 4  # control never falls through
    COND_BRANCH = 8
    MEMORY = 16  # may fault; observes or changes guest memory


PureFn = Callable[..., int]


@dataclass(frozen=True)
class OpDef:
    """One row of the op table.

    ``fold`` gives the semantics of pure single-output ops (inputs then
    constants, all unsigned 64-bit); ops without it are executed by the
    interpreter's special cases and never constant-folded.
    """

    name: str
    n_out: int
    n_in: int
    n_const: int
    flags: int = OpFlag.NONE
    fold: PureFn | None = None
    doc: str = ""

    @property
    def n_args(self) -> int:
        return self.n_out + self.n_in + self.n_const


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

# Families of ops defined in their own modules (they import the definitions above, so they are
# imported here, after them).
from tcg2wasm.ir.ops_float import FLOAT_OPS  # noqa: E402  IEEE binary32/binary64 with x86 semantics
from tcg2wasm.ir.ops_vec import VEC_OPS  # noqa: E402  lane ops on 64-bit halves of xmm registers

OP_DEFS: tuple[OpDef, ...] = CORE_OPS + VEC_OPS + FLOAT_OPS
OPS: dict[str, OpDef] = {d.name: d for d in OP_DEFS}
