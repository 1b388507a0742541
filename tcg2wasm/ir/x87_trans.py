"""x87 transcendentals: f2xm1, fyl2x, fyl2xp1, fpatan, fsin, fcos, fsincos, fptan.

Each result is computed with mpmath at ``WORKING_BITS`` bits of precision and
rounded once to 64 bits by RC: the *correctly rounded* result (precision
control does not apply to these instructions). Special operands (zeros,
infinities, NaNs, out-of-range arguments of fsin & co) follow the SDM's tables
and were checked on the CPU. The CPU's own results are not always the
correctly rounded ones: ``tests/test_x87_trans.py`` measures how often they
differ (by one unit in the last place) per instruction, and docs/x87.md gives
the figures; where they differ, this reference gives the correctly rounded
value.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath

import tcg2wasm.ir.x87_float as xf
from tcg2wasm.ir.x87_float import (
    C2,
    IE,
    INFINITY,
    PE,
    ZE,
    ZERO,
    Result,
    Value,
    classify,
    finite_parts,
    infinity,
    invalid,
    round_to_extended,
    sign_of,
    with_write_rule,
    zero,
)
from tcg2wasm.ir.x87_kinds import Arith, Unary, Unary2

WORKING_BITS = 320
_CTX = mpmath.MPContext()
_CTX.prec = WORKING_BITS
ONE_VALUE: Value = (xf.J_BIT, xf.BIAS)
_PC64 = 0x300  # the precision-control bits, forced to 64-bit precision


def _mpf(a: Value) -> mpmath.mpf:
    sign, m, e = finite_parts(*a)
    return _CTX.ldexp(_CTX.mpf(-m if sign else m), e)


def _rounded(compute: Callable[[], mpmath.mpf], cw: int, flags: int, c1: bool = True) -> Result:
    """An inexact result (never exactly representable) rounded to 64 bits by RC; PE raised.

    ``compute`` runs at the context's precision, within an ulp or two of it: the result is
    accepted when both ends of that error interval round the same way, else the precision
    doubles (Ziv's strategy; cos of a tiny x needs more than twice the exponent's bits). ``c1``:
    report C1 (rounded up); the CPU leaves it clear for fyl2x, fyl2xp1 and fpatan (measured).
    """
    prec = WORKING_BITS
    while True:
        with _CTX.workprec(prec):
            sign, man, exp, _ = _CTX.mpf(compute())._mpf_
        if man == 0:
            return *zero(0), flags | PE
        low = round_to_extended(int(sign), int(man) - 2, int(exp), True, cw | _PC64, xf.EXTENDED)
        high = round_to_extended(int(sign), int(man) + 1, int(exp), True, cw | _PC64, xf.EXTENDED)
        if low == high or prec > 1 << 16:
            lo, hi, more = high
            return lo, hi, flags | (more if c1 else more & ~xf.C1) | PE
        prec *= 2


def _exact(sign: int, m: int, e: int, cw: int, flags: int) -> Result:
    lo, hi, more = round_to_extended(sign, m, e, False, cw | _PC64, xf.EXTENDED)
    return lo, hi, flags | more


def _screen(values: tuple[Value, ...], cw: int, empty: int) -> tuple[Result | None, int]:
    done, flags = xf.screen_operands(values, empty)
    if done is not None:
        return with_write_rule(*done, cw), 0
    abort = xf.denormal_abort(flags, cw)
    if abort is not None:
        return abort, 0
    return None, flags


# -- one operand -----------------------------------------------------------------------------------
def f2xm1(a: Value, cw: int, empty: int) -> Result:
    """2**x - 1 (the SDM defines it for -1 <= x <= 1; the same formula is used beyond)."""
    done, flags = _screen((a,), cw, empty)
    if done is not None:
        return done
    kind, sign = classify(*a), sign_of(a[1])
    if kind == ZERO:
        return *a, flags
    if kind == INFINITY:
        return (*xf.encode_extended(1, 1, 0), flags) if sign else (*a, flags)
    s, m, e = finite_parts(*a)
    if e + m.bit_length() > 15:  # |x| >= 2**14: 2**x overflows or is -1 to any precision
        return with_write_rule(*(infinity(0) + (xf.OE | PE,) if not s else (*xf.encode_extended(1, 1, 0), PE)), cw)
    if m == 1 << (m.bit_length() - 1) and e + m.bit_length() - 1 == 0:  # x = +-1: exactly 1 or -1/2
        return (*xf.encode_extended(0, 1, 0), flags) if not s else (*xf.encode_extended(1, 1, -1), flags)
    return _rounded(lambda: _CTX.expm1(_mpf(a) * _CTX.ln2), cw, flags)


def sin_cos(a: Value, cw: int, empty: int, want: str) -> tuple[Result, Result | None]:
    """fsin/fcos/fptan/fsincos: (result, second result); C2 with NO_WRITE when |x| >= 2**63."""
    done, flags = _screen((a,), cw, empty)
    if done is not None:
        return done, done
    kind = classify(*a)
    if kind == INFINITY:
        r = with_write_rule(*invalid(), cw)
        return r, r
    one = (*ONE_VALUE, flags)
    if kind == ZERO:
        results = {"sin": ((*a, flags), None), "cos": (one, None), "tan": ((*a, flags), one),
                   "sincos": ((*a, flags), one)}
        return results[want]
    _, m, e = finite_parts(*a)
    if e + m.bit_length() > 63:
        skip = (0, 0, C2 | xf.NO_WRITE)
        return skip, skip
    r, quadrant = _reduced(a)
    sin = [lambda: _CTX.sin(r), lambda: _CTX.cos(r), lambda: -_CTX.sin(r), lambda: -_CTX.cos(r)][quadrant]
    cos = [lambda: _CTX.cos(r), lambda: -_CTX.sin(r), lambda: -_CTX.cos(r), lambda: _CTX.sin(r)][quadrant]
    if want == "sin":
        return _rounded(sin, cw, flags), None
    if want == "cos":
        return _rounded(cos, cw, flags), None
    if want == "tan":
        return _rounded(lambda: sin() / cos(), cw, flags), one
    return _rounded(sin, cw, flags), _rounded(cos, cw, flags)


#: The pi the CPU reduces fsin/fcos/fsincos/fptan arguments with: pi rounded to 66 bits (measured:
#: results of large arguments match a reduction by it, not by pi itself).
PI66 = 0x3_243F_6A88_85A3_08D3  # round(pi * 2**64)


def _reduced(a: Value) -> tuple[mpmath.mpf, int]:
    """x - k * PI66/2 (exact) and k mod 4, for k the integer nearest to x / (PI66/2)."""
    with _CTX.workprec(WORKING_BITS):
        x = _mpf(a)
        half_pi = _CTX.ldexp(_CTX.mpf(PI66), -65)
        k = int(_CTX.nint(x / half_pi))
        return x - k * half_pi, k % 4


def unary(kind: int, a: Value, cw: int, empty: int) -> Result:
    if kind == Unary.F2XM1:
        return f2xm1(a, cw, empty)
    first, _ = sin_cos(a, cw, empty, "sin" if kind == Unary.SIN else "cos")
    return first


def unary2(kind: int, a: Value, cw: int, empty: int) -> tuple[int, int, int, int, int]:
    """fsincos: (sin, cos); fptan: (tan, 1.0): the first goes to st1, the second to st0."""
    first, second = sin_cos(a, cw, empty, "sincos" if kind == Unary2.SINCOS else "tan")
    assert second is not None
    return first[0], first[1], second[0], second[1], first[2] | second[2]


# -- two operands: st0 = a, st1 = b ------------------------------------------------------------------
def _is_power_of_two(a: Value) -> int | None:
    _, m, e = finite_parts(*a)
    return e + m.bit_length() - 1 if m & (m - 1) == 0 else None


def yl2x(a: Value, b: Value, cw: int, empty: int) -> Result:
    """st1 * log2(st0)."""
    done, flags = _screen((a, b), cw, empty)
    if done is not None:
        return done
    ka, kb = classify(*a), classify(*b)
    sa, sb = sign_of(a[1]), sign_of(b[1])
    if sa and ka != ZERO:
        return with_write_rule(*invalid(), cw)
    if ka == ZERO:
        if kb == ZERO:
            return with_write_rule(*invalid(), cw)
        return with_write_rule(*infinity(1 - sb), flags | ZE, cw)
    if ka == INFINITY:
        return with_write_rule(*(invalid() if kb == ZERO else (*infinity(sb), flags)), cw)
    power = _is_power_of_two(a)
    if kb == INFINITY:
        if power == 0:
            return with_write_rule(*invalid(), cw)
        above_one = power is None and _mpf(a) > 1 or power is not None and power > 0
        return with_write_rule(*infinity(sb if above_one else 1 - sb), flags, cw)
    if kb == ZERO or power == 0:
        log_negative = power is None and _mpf(a) < 1 or power is not None and power < 0
        return with_write_rule(*zero(sb ^ int(log_negative)), flags, cw)
    if power is not None:  # log2 is the integer ``power``: an exact product, rounded once
        _, mb, eb = finite_parts(*b)
        return with_write_rule(*_exact(sb ^ int(power < 0), mb * abs(power), eb, cw, flags), cw)
    return with_write_rule(*_rounded(lambda: _mpf(b) * _CTX.log(_mpf(a), 2), cw, flags, c1=False), cw)


def yl2xp1(a: Value, b: Value, cw: int, empty: int) -> Result:
    """st1 * log2(st0 + 1) (the SDM defines it for |st0| < 1 - sqrt(2)/2)."""
    done, flags = _screen((a, b), cw, empty)
    if done is not None:
        return done
    ka, kb = classify(*a), classify(*b)
    sa, sb = sign_of(a[1]), sign_of(b[1])
    if ka == INFINITY or (ka != ZERO and sa and _mpf(a) <= -1):
        return with_write_rule(*invalid(), cw)
    if ka == ZERO:
        return with_write_rule(*(invalid() if kb == INFINITY else (*zero(sa ^ sb), flags)), cw)
    if kb == INFINITY:
        return with_write_rule(*infinity(sb ^ sa), flags, cw)
    if kb == ZERO:
        return with_write_rule(*zero(sa ^ sb), flags, cw)
    value = lambda: _mpf(b) * _CTX.log1p(_mpf(a)) / _CTX.ln2  # noqa: E731
    return with_write_rule(*_rounded(value, cw, flags, c1=False), cw)


def patan(a: Value, b: Value, cw: int, empty: int) -> Result:
    """atan2(st1, st0): a = st0 = x, b = st1 = y."""
    done, flags = _screen((a, b), cw, empty)
    if done is not None:
        return done
    kx, ky = classify(*a), classify(*b)
    sx, sy = sign_of(a[1]), sign_of(b[1])
    if ky == ZERO and (kx != ZERO and not sx or kx == ZERO and not sx):
        return with_write_rule(*zero(sy), flags, cw)
    if kx == INFINITY and not sx and ky != INFINITY:
        return with_write_rule(*zero(sy), flags, cw)
    if ky == ZERO or (kx == INFINITY and ky != INFINITY):
        quarters = 4
    elif ky == INFINITY:
        quarters = (3 if sx else 1) if kx == INFINITY else 2
    elif kx == ZERO:
        quarters = 2
    else:
        return with_write_rule(*_rounded(lambda: _CTX.atan2(_mpf(b), _mpf(a)), cw, flags, c1=False), cw)
    signed = -quarters if sy else quarters
    return with_write_rule(*_rounded(lambda: signed * _CTX.pi / 4, cw, flags, c1=False), cw)


def binary(kind: int, a: Value, b: Value, cw: int, empty: int) -> Result:
    if kind == Arith.PATAN:
        return patan(a, b, cw, empty)
    if kind == Arith.YL2XP1:
        return yl2xp1(a, b, cw, empty)
    return yl2x(a, b, cw, empty)


__all__ = ["IE", "binary", "unary", "unary2"]
