"""The constants that select what an x87 op computes (its last constant argument)."""

from __future__ import annotations

from enum import IntEnum


class Arith(IntEnum):
    ADD = 0
    SUB = 1  # a - b
    MUL = 2
    DIV = 3  # a / b
    SCALE = 4  # a * 2**trunc(b)
    PREM = 5  # partial remainder of a / b, truncated quotient
    PREM1 = 6  # IEEE partial remainder
    YL2X = 7  # b * log2(a)
    YL2XP1 = 8  # b * log2(a + 1)
    PATAN = 9  # atan(b / a)
    SUBR = 10  # b - a
    DIVR = 11  # b / a


class Unary(IntEnum):
    SQRT = 0
    RNDINT = 1
    F2XM1 = 2
    SIN = 3
    COS = 4


class Unary2(IntEnum):
    """Unary ops with two results: (st1 result, st0 result) after a push."""

    XTRACT = 0  # (exponent, significand)
    SINCOS = 1  # (sin, cos)
    PTAN = 2  # (tan, 1.0)


class MemFormat(IntEnum):
    F32 = 0
    F64 = 1
    I16 = 2
    I32 = 3
    I64 = 4
    BCD = 5
    I16_TRUNC = 6  # fisttp
    I32_TRUNC = 7
    I64_TRUNC = 8
    F32_OPERAND = 9  # the memory operand of an arithmetic/compare instruction (x87_float.load_binary)
    F64_OPERAND = 10


class Constant(IntEnum):
    PI = 0
    L2E = 1
    L2T = 2
    LG2 = 3
    LN2 = 4
