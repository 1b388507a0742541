"""What every op-table row and every consumer of the table share: value types, conditions, memory ops.

Besides the ``OpDef`` row type this module holds the *specifications* of the
non-pure ops that the interpreter, the optimizer, the wasm emitters and the
runtime's host helpers must agree on, each written once:

* conditions (``COND_TESTS``, ``eval_cond``): the test each ``Cond`` makes on two
  unsigned 64-bit values;
* memory ops (``memop_size``, ``memop_signed``, ``load_extend``): what a load of
  a given ``MemOp`` returns from the raw bytes;
* the two-output ops (``two_output_values``): mulu2/muls2/divu2/divs2.

The instruction-budget refund rule is ``TranslationBlock.unexecuted_from``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from tcg2wasm.abi import Excp, Exit
from tcg2wasm.cpu_state import MASK64

__all__ = [
    "COND_TESTS", "INVERTED_COND", "MASK64", "Cond", "CondTest", "Excp", "Exit", "MemOp", "OpDef", "OpFlag",
    "PureFn", "eval_cond", "load_extend", "memop_signed", "memop_size", "to_signed", "two_output_values",
]



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


CondTest = Callable[[int, int], bool]
_SIGN = 1 << 63

#: The test of each condition on two unsigned 64-bit values (signed orders compare with the sign bits
#: flipped). The single definition of the conditions: folding, the interpreter and the tests use it,
#: and the wasm emitters' lowering (``backend.emit_core.compare``) is checked against it.
COND_TESTS: dict[Cond, CondTest] = {
    Cond.EQ: operator.eq,
    Cond.NE: operator.ne,
    Cond.LT: lambda a, b: (a ^ _SIGN) < (b ^ _SIGN),
    Cond.GE: lambda a, b: (a ^ _SIGN) >= (b ^ _SIGN),
    Cond.LE: lambda a, b: (a ^ _SIGN) <= (b ^ _SIGN),
    Cond.GT: lambda a, b: (a ^ _SIGN) > (b ^ _SIGN),
    Cond.LTU: operator.lt,
    Cond.GEU: operator.ge,
    Cond.LEU: operator.le,
    Cond.GTU: operator.gt,
    Cond.TSTEQ: lambda a, b: not a & b,
    Cond.TSTNE: lambda a, b: a & b != 0,
}


def eval_cond(cond: int, a: int, b: int) -> bool:
    """Evaluate ``cond`` on two unsigned 64-bit values."""
    test = COND_TESTS.get(cond)  # type: ignore[call-overload]
    if test is None:
        raise ValueError(f"bad condition {cond!r}")
    return bool(test(a, b))


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
    #: A load that checks write permission first and faults as a write: the read of a read-modify-write
    #: instruction (the CPU reports a write fault for ``add [m], r`` on a page it cannot write).
    FOR_WRITE = 8


def memop_for_write(memop: int) -> bool:
    """Whether a load of ``memop`` is the read of a read-modify-write (``MemOp.FOR_WRITE``)."""
    return bool(memop & MemOp.FOR_WRITE)


def memop_size(memop: int) -> int:
    """Access size in bytes."""
    return 1 << (memop & 3)


def memop_signed(memop: int) -> bool:
    """Whether a load of ``memop`` sign-extends (stores ignore it)."""
    return bool(memop & MemOp.SIGN)


def load_extend(raw: int, memop: int) -> int:
    """The 64-bit value a load of ``memop`` gives for the raw little-endian bytes ``raw`` (unsigned)."""
    if not memop & MemOp.SIGN:
        return raw
    sign = 1 << (8 * memop_size(memop) - 1)
    return ((raw ^ sign) - sign) & MASK64


def two_output_values(name: str, inputs: list[int]) -> tuple[int, int]:
    """The two results of ``mulu2_i64``/``muls2_i64`` (lo, hi) or ``divu2_i64``/``divs2_i64`` (q, r).

    Division inputs are (nl, nh, d); the caller guarantees d != 0 and a quotient that fits
    (the front end traps first), as the op table says.
    """
    match name:
        case "mulu2_i64":
            p = inputs[0] * inputs[1]
        case "muls2_i64":
            p = to_signed(inputs[0]) * to_signed(inputs[1])
        case "divu2_i64":
            q, r = divmod((inputs[1] << 64) | inputs[0], inputs[2])
            return q & MASK64, r & MASK64
        case "divs2_i64":
            n = to_signed(inputs[1]) << 64 | inputs[0]
            d = to_signed(inputs[2])
            q = abs(n) // abs(d)
            q = q if (n < 0) == (d < 0) else -q
            return q & MASK64, (n - q * d) & MASK64
        case _:
            raise ValueError(f"{name!r} is not a two-output op")
    return p & MASK64, (p >> 64) & MASK64


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
    constants, all unsigned 64-bit); ``multi`` that of pure ops with several
    outputs (a tuple of ``n_out`` values); ops with neither are executed by
    the interpreter's special cases. Neither kind of op is constant-folded
    through ``multi``.
    """

    name: str
    n_out: int
    n_in: int
    n_const: int
    flags: int = OpFlag.NONE
    fold: PureFn | None = None
    doc: str = ""
    multi: Callable[..., tuple[int, ...]] | None = None

    @property
    def n_args(self) -> int:
        return self.n_out + self.n_in + self.n_const
