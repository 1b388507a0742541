"""x87 transcendentals: f2xm1, fyl2x, fyl2xp1, fpatan, fsin, fcos, fsincos, fptan.

Each result is computed in fixed point with ``PRECISION`` bits (Python integers,
every series and reduction exact to well below the last of them), then rounded
once to 64 bits by RC: the *correctly rounded* result. Precision control does
not apply. Where the CPU's result is not the correctly rounded one it differs
from this reference; ``tests/test_x87_float.py`` measures how often, on the host
CPU, per instruction (docs/x87.md has the figures).
"""

from __future__ import annotations

import tcg2wasm.ir.x87_float as xf
from tcg2wasm.ir.x87_float import (
    C2,
    DENORMAL,
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

PRECISION = 256  # bits of the fixed-point intermediate values
ONE = 1 << PRECISION
EXTENDED = xf.EXTENDED


def _fixed(m: int, e: int) -> int:
    """m * 2**e in fixed point (truncated toward zero)."""
    shift = e + PRECISION
    return m << shift if shift >= 0 else (m >> -shift if m >= 0 else -((-m) >> -shift))


def _pi() -> int:
    m, e = xf.constant_value("pi")
    return _fixed(m, e)


def _ln2() -> int:
    m, e = xf.constant_value("ln2")
    return _fixed(m, e)


def _exp_fixed(t: int) -> int:
    """exp(t) - 1 for |t| <= 1 (fixed point), by Taylor series."""
    total, term, k = 0, t, 1
    while term:
        total += term
        k += 1
        term = term * t // ONE // k
    return total


def _atanh_fixed(z: int) -> int:
    """atanh(z) for |z| < 1/2 (fixed point)."""
    total, power, z2, k = 0, z, z * z // ONE, 1
    while power:
        total += power // k
        power = power * z2 // ONE
        k += 2
    return total


def _ln_fixed(m: int, e: int) -> int:
    """ln(m * 2**e) for a positive value (fixed point)."""
    bits = m.bit_length()
    top = e + bits - 1  # value = (m / 2**(bits-1)) * 2**top, the first factor in [1, 2)
    x = _fixed(m, -(bits - 1))  # in [1, 2)
    if x > (3 * ONE) // 2:  # bring x into [0.75, 1.5): ln(x) = ln(x / 2) + ln 2
        x, top = x // 2, top + 1
    z = (x - ONE) * ONE // (x + ONE)
    return 2 * _atanh_fixed(z) + top * _ln2()


def _ln1p_fixed(m: int, e: int, sign: int) -> int:
    """ln(1 + x) for |x| < 1 - sqrt(2)/2 (fixed point), accurate relative to x."""
    x = _fixed(m, e)
    x = -x if sign else x
    return 2 * _atanh_fixed(x * ONE // (2 * ONE + x))


def _atan_fixed(z: int) -> int:
    """atan(z) for 0 <= z <= 1 (fixed point): two halvings, then the Taylor series."""
    from math import isqrt

    for _ in range(2):
        z = z * ONE // (ONE + isqrt(ONE * ONE + z * z))
    total, power, z2, k, sign = 0, z, z * z // ONE, 1, 1
    while power:
        total += sign * (power // k)
        power = power * z2 // ONE
        k += 2
        sign = -sign
    return 4 * total


def _sin_cos_fixed(x: int) -> tuple[int, int]:
    """(sin x, cos x) for |x| <= pi/4 (fixed point)."""
    x2 = x * x // ONE
    s, term, k = 0, x, 1
    while term:
        s += term
        term = -term * x2 // ONE // ((k + 1) * (k + 2))
        k += 2
    c, term, k = 0, ONE, 0
    while term:
        c += term
        term = -term * x2 // ONE // ((k + 1) * (k + 2))
        k += 2
    return s, c


def _rounded(value: int, cw: int, flags: int, exact: bool = False) -> Result:
    """A fixed-point result rounded to extended by RC (64 bits), PE unless ``exact``."""
    if value == 0:
        return *zero(0), flags
    sign = int(value < 0)
    lo, hi, more = round_to_extended(sign, abs(value), -PRECISION, not exact, cw & ~0x300 | 0x300, EXTENDED)
    return lo, hi, flags | more | (0 if exact else PE)


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
    if e + m.bit_length() > 1:  # |x| >= 1: 2**x - 1 exactly where x is an integer in [-1, 1]
        n, _ = xf.round_to_integer(a, xf.RC_ZERO)
        if n in (1, -1) and _is_integer(m, e):
            return (*xf.encode_extended(0, 1, 0), flags) if n == 1 else (*xf.encode_extended(1, 1, -1), flags)
        return _rounded(_exp2m1_general(s, m, e), cw, flags)
    t = _fixed(m, e) * _ln2() // ONE
    return _rounded(_exp_fixed(-t if s else t), cw, flags)


def _is_integer(m: int, e: int) -> bool:
    return e >= 0 or m & ((1 << -e) - 1) == 0


def _exp2m1_general(s: int, m: int, e: int) -> int:
    """2**x - 1 for 1 <= |x| < 2**15 (beyond the SDM's range; fixed point may saturate)."""
    x = _fixed(m, e)
    x = -x if s else x
    n = x >> PRECISION  # floor
    frac = x - (n << PRECISION)
    value = (_exp_fixed(frac * _ln2() // ONE) + ONE)
    value = value << n if n >= 0 else value >> -n
    return value - ONE


def sin_cos(a: Value, cw: int, empty: int, want: str) -> tuple[Result, Result | None]:
    """fsin/fcos/fptan/fsincos: (result, second result); C2 with NO_WRITE when |x| >= 2**63."""
    done, flags = _screen((a,), cw, empty)
    if done is not None:
        return done, done
    kind, _sign = classify(*a), sign_of(a[1])
    if kind == INFINITY:
        r = with_write_rule(*invalid(), cw)
        return r, r
    if kind == ZERO:
        one = (*xf.encode_extended(0, 1, 0), flags)
        results = {"sin": ((*a, flags), None), "cos": (one, None), "tan": ((*a, flags), one),
                   "sincos": ((*a, flags), one)}
        return results[want]
    s, m, e = finite_parts(*a)
    if e + m.bit_length() > 63:
        skip = (0, 0, C2 | xf.NO_WRITE)
        return skip, skip
    x = _fixed(m, e)
    pi = _pi()
    half_pi = pi // 2
    q, r = divmod(x + pi // 4, half_pi)
    r -= pi // 4
    sn, cs = _sin_cos_fixed(r)
    for _ in range(q % 4):
        sn, cs = cs, -sn
    if s:
        sn = -sn
    if want == "sin":
        return _rounded(sn, cw, flags), None
    if want == "cos":
        return _rounded(cs, cw, flags), None
    if want == "tan":
        return _rounded(sn * ONE // cs, cw, flags), (*xf.encode_extended(0, 1, 0), flags)
    return _rounded(sn, cw, flags), _rounded(cs, cw, flags)


def unary(kind: int, a: Value, cw: int, empty: int) -> Result:
    if kind == Unary.F2XM1:
        return f2xm1(a, cw, empty)
    first, _ = sin_cos(a, cw, empty, "sin" if kind == Unary.SIN else "cos")
    return first


def unary2(kind: int, a: Value, cw: int, empty: int) -> tuple[int, int, int, int, int]:
    first, second = sin_cos(a, cw, empty, "sincos" if kind == Unary2.SINCOS else "tan")
    assert second is not None
    return first[0], first[1], second[0], second[1], first[2] | second[2]


# -- two operands: st0 = a, st1 = b ------------------------------------------------------------------
def yl2x(a: Value, b: Value, cw: int, empty: int, plus_one: bool) -> Result:
    """st1 * log2(st0) (fyl2x), st1 * log2(st0 + 1) (fyl2xp1)."""
    done, flags = _screen((a, b), cw, empty)
    if done is not None:
        return done
    ka, kb = classify(*a), classify(*b)
    sa, sb = sign_of(a[1]), sign_of(b[1])
    if plus_one:
        return _yl2xp1(a, b, ka, kb, sa, sb, cw, flags)
    if sa and ka != ZERO:
        return with_write_rule(*invalid(), cw)
    if ka == ZERO:
        if kb == ZERO:
            return with_write_rule(*invalid(), cw)
        return with_write_rule(*infinity(1 - sb), flags | ZE, cw)
    if ka == INFINITY:
        if kb == ZERO:
            return with_write_rule(*invalid(), cw)
        return with_write_rule(*infinity(sb), flags, cw)
    _, ma, ea = finite_parts(*a)
    log_is_zero = ma == 1 << (ma.bit_length() - 1) and ea + ma.bit_length() - 1 == 0
    if kb == INFINITY:
        if log_is_zero:
            return with_write_rule(*invalid(), cw)
        above_one = ea + ma.bit_length() - 1 >= 0
        return with_write_rule(*infinity(sb if above_one else 1 - sb), flags, cw)
    if kb == ZERO or log_is_zero:
        return with_write_rule(*zero(sb ^ int(not log_is_zero and ea + ma.bit_length() - 1 < 0)), flags, cw)
    return _times_log(a, b, cw, flags, _ln_fixed(ma, ea) * ONE // _ln2(), _power_of_two(ma, ea))


def _power_of_two(m: int, e: int) -> int | None:
    return e + m.bit_length() - 1 if m & (m - 1) == 0 else None


def _times_log(a: Value, b: Value, cw: int, flags: int, log2: int, exact_exponent: int | None) -> Result:
    """b * log2, exact when a is a power of two (log2 an integer)."""
    sb, mb, eb = finite_parts(*b)
    if exact_exponent is not None:
        sign = sb ^ int(exact_exponent < 0)
        lo, hi, more = round_to_extended(sign, mb * abs(exact_exponent), eb, False, cw | 0x300, EXTENDED)
        return with_write_rule(lo, hi, flags | more, cw)
    y = _fixed(mb, eb) if eb + PRECISION >= 0 else None
    if y is None or abs(y) < (1 << 80):  # a tiny y: keep its own exponent
        product = mb * log2
        sign = sb ^ int(product < 0)
        lo, hi, more = round_to_extended(sign, abs(product), eb - PRECISION, True, cw | 0x300, EXTENDED)
        return with_write_rule(lo, hi, flags | more | PE, cw)
    value = (-y if sb else y) * log2 // ONE
    return with_write_rule(*_rounded(value, cw, flags), cw)


def _yl2xp1(a: Value, b: Value, ka: int, kb: int, sa: int, sb: int, cw: int, flags: int) -> Result:
    if ka == INFINITY or (ka != ZERO and sa and _at_most_minus_one(a)):
        return with_write_rule(*invalid(), cw)
    if ka == ZERO:
        if kb == INFINITY:
            return with_write_rule(*invalid(), cw)
        return with_write_rule(*zero(sa ^ sb), flags, cw)
    if kb == INFINITY:
        return with_write_rule(*infinity(sb ^ sa), flags, cw)
    if kb == ZERO:
        return with_write_rule(*zero(sa ^ sb), flags, cw)
    _, ma, ea = finite_parts(*a)
    log2 = _ln1p_fixed(ma, ea, sa) * ONE // _ln2()
    return _times_log(a, b, cw, flags, log2, None)


def _at_most_minus_one(a: Value) -> bool:
    _, m, e = finite_parts(*a)
    return e + m.bit_length() - 1 >= 0


def patan(a: Value, b: Value, cw: int, empty: int) -> Result:
    """atan2(st1, st0): a = st0 = x, b = st1 = y."""
    done, flags = _screen((a, b), cw, empty)
    if done is not None:
        return done
    kx, ky = classify(*a), classify(*b)
    sx, sy = sign_of(a[1]), sign_of(b[1])
    pi = _pi()
    if ky in (ZERO, INFINITY) or kx in (ZERO, INFINITY):
        angle = _special_atan2(kx, ky, sx, pi)
        if angle == 0:
            return with_write_rule(*zero(sy), flags, cw)
        return with_write_rule(*_rounded(-angle if sy else angle, cw, flags), cw)
    _, mx, ex = finite_parts(*a)
    _, my, ey = finite_parts(*b)
    x, y = _ratio(mx, ex, my, ey)
    angle = _atan_fixed(y * ONE // x) if y <= x else pi // 2 - _atan_fixed(x * ONE // y)
    if sx:
        angle = pi - angle
    if _tiny_quotient(mx, ex, my, ey) and not sx:
        return _tiny_atan(b, a, cw, flags)
    return with_write_rule(*_rounded(-angle if sy else angle, cw, flags), cw)


def _special_atan2(kx: int, ky: int, sx: int, pi: int) -> int:
    """|atan2(y, x)| when y or x is zero or infinite (in fixed point)."""
    if ky == ZERO:
        return pi if sx else 0
    if ky == INFINITY:
        if kx == INFINITY:
            return 3 * pi // 4 if sx else pi // 4
        return pi // 2
    if kx == ZERO:
        return pi // 2
    return pi if sx else 0  # x infinite, y finite


def _ratio(mx: int, ex: int, my: int, ey: int) -> tuple[int, int]:
    """Two integers in the ratio x : y."""
    e = min(ex, ey)
    x, y = mx << (ex - e), my << (ey - e)
    return x, y


def _tiny_quotient(mx: int, ex: int, my: int, ey: int) -> bool:
    return (ey + my.bit_length()) - (ex + mx.bit_length()) < -PRECISION // 2


def _tiny_atan(y: Value, x: Value, cw: int, flags: int) -> Result:
    """atan(y/x) for y/x below 2**-128: y/x itself (atan z = z - z**3/3, rounded)."""
    sy, my, ey = finite_parts(*y)
    _, mx, ex = finite_parts(*x)
    k = 2 * PRECISION
    quotient = (my << k) // mx
    lo, hi, more = round_to_extended(sy, quotient, ey - ex - k, True, cw | 0x300, EXTENDED)
    # z - z**3/3 is a hair below z: rounding toward zero or down for positive values sees it
    return with_write_rule(lo, hi, flags | more | PE, cw)


def binary(kind: int, a: Value, b: Value, cw: int, empty: int) -> Result:
    if kind == Arith.PATAN:
        return patan(a, b, cw, empty)
    return yl2x(a, b, cw, empty, plus_one=kind == Arith.YL2XP1)


__all__ = ["DENORMAL", "IE", "binary", "unary", "unary2"]
