"""The common cases of the x87 ops in wasm: functions added to a region module the first time it uses them.

Each function has the signature of the host import ``env.x87`` (op code, seven i64
arguments -> the first output, the others in state.x87_out1...) and computes the
op itself when its operands are in the *fast domain* -- normal values whose
result is normal (so no NaN, infinity, denormal, stack fault, overflow or
underflow rule applies) -- and calls ``env.x87`` (the Python reference) for
everything else. Inside the fast domain the result must be the reference's bit
for bit: ``tests/test_x87_wasm.py`` checks both against each other.

Covered: loads of f32/f64/int16/int32/int64, stores to f32/f64/int16/int32/int64
(rounded or truncated), compares, add/sub/subr/mul/div/divr with every
precision and rounding control (division: restoring, a loop of 64 steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tcg2wasm.abi import STATE_OFFSET, X87_OUTPUTS
from tcg2wasm.backend.bn import I32, I64, NONE, Expr, Exprs, ffi, lib
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.ir import x87_float as xf
from tcg2wasm.ir.ops_x87 import HOST_ARGS
from tcg2wasm.ir.x87_kinds import Arith, MemFormat

BIAS = xf.BIAS
ONE64 = (1 << 64) - 1


class V:
    """A lazily built i64 expression (every use builds fresh nodes: Binaryen nodes are used once)."""

    __slots__ = ("e", "build")

    def __init__(self, e: Exprs, build: Callable[[], Expr]) -> None:
        self.e, self.build = e, build

    def _lift(self, other: V | int) -> V:
        return other if isinstance(other, V) else const(self.e, other)

    def _bin(self, op: int, other: V | int) -> V:
        o = self._lift(other)
        return V(self.e, lambda: self.e.bin(op, self.build(), o.build()))

    def _cmp(self, op: int, other: V | int) -> V:
        o = self._lift(other)
        return V(self.e, lambda: self.e.un(W.EXTU32, self.e.bin(op, self.build(), o.build())))

    def __add__(self, o: V | int) -> V: return self._bin(W.ADD64, o)
    def __sub__(self, o: V | int) -> V: return self._bin(W.SUB64, o)
    def __mul__(self, o: V | int) -> V: return self._bin(W.MUL64, o)
    def __and__(self, o: V | int) -> V: return self._bin(W.AND64, o)
    def __or__(self, o: V | int) -> V: return self._bin(W.OR64, o)
    def __xor__(self, o: V | int) -> V: return self._bin(W.XOR64, o)
    def __lshift__(self, o: V | int) -> V: return self._bin(W.SHL64, o)
    def __rshift__(self, o: V | int) -> V: return self._bin(W.SHRU64, o)
    def eq(self, o: V | int) -> V: return self._cmp(W.EQ64, o)
    def ne(self, o: V | int) -> V: return self._cmp(W.NE64, o)
    def ltu(self, o: V | int) -> V: return self._cmp(W.LTU64, o)
    def leu(self, o: V | int) -> V: return self._cmp(W.LEU64, o)
    def gtu(self, o: V | int) -> V: return self._cmp(W.GTU64, o)
    def geu(self, o: V | int) -> V: return self._cmp(W.GEU64, o)

    def clz(self) -> V:
        return V(self.e, lambda: self.e.un(W.CLZ64, self.build()))

    def is_true(self) -> Expr:
        """i32 condition: this value is not zero."""
        return self.e.bin(W.NE64, self.build(), self.e.c64(0))


def const(e: Exprs, value: int) -> V:
    return V(e, lambda: e.c64(value & ONE64))


def select(c: V, a: V, b: V) -> V:
    e = c.e
    return V(e, lambda: e.select(c.is_true(), a.build(), b.build()))


class Fn:
    """One helper function being built: parameters, named locals, statements."""

    def __init__(self, e: Exprs) -> None:
        self.e = e
        self.types = [I32] + [I64] * HOST_ARGS  # the env.x87 signature
        self.names: dict[str, int] = {}
        self.body: list[Expr] = []

    def arg(self, i: int) -> V:
        return V(self.e, lambda: self.e.get(1 + i))

    def let(self, name: str, value: V) -> V:
        """Assign a local (allocated at first use) and return a reader of it."""
        index = self.names.get(name)
        if index is None:
            index = self.names[name] = len(self.types)
            self.types.append(I64)
        self.body.append(self.e.set(index, value.build()))
        return V(self.e, lambda: self.e.get(index))

    def loop(self, name: bytes, body: Callable[[], None], again: V) -> None:
        """``body`` (statements it adds), repeated while ``again`` (checked after each pass)."""
        outer, self.body = self.body, []
        body()
        self.body.append(self.e.br(name, again.is_true()))
        inner, self.body = self.body, outer
        self.body.append(lib.BinaryenLoop(self.e.m, name, self.e.block(inner, type_=NONE)))

    def slow_unless(self, fast: V) -> None:
        """Leave through env.x87 (the reference) unless ``fast``."""
        e = self.e
        args = [e._get(e.m, 0, I32), *(e.get(1 + i) for i in range(HOST_ARGS))]  # noqa: SLF001
        self.body.append(e.if_(e.un(W.EQZ64, fast.build()), e.ret(e.call(b"x87", args, I64))))

    def result(self, *values: V) -> None:
        self.body.extend(self._returning(values))

    def result_if(self, cond: V, *values: V) -> None:
        """Return ``values`` (as ``result``) when ``cond``; else go on."""
        self.body.append(self.e.if_(cond.is_true(), self.e.block(self._returning(values), type_=NONE)))

    def _returning(self, values: tuple[V, ...]) -> list[Expr]:
        e = self.e
        stores = [e.state_store(STATE_OFFSET[field], value.build())
                  for field, value in zip(X87_OUTPUTS, values[1:], strict=False)]
        return [*stores, e.ret(values[0].build())]

    def add_to(self, module: Any, name: bytes) -> None:
        e = self.e
        params = lib.BinaryenTypeCreate(ffi.new("BinaryenType[]", self.types[:1 + HOST_ARGS]), 1 + HOST_ARGS)
        extra = self.types[1 + HOST_ARGS:]
        body = e.block([*self.body, e.unreachable()], type_=NONE)
        lib.BinaryenAddFunction(module, name, params, I64, ffi.new("BinaryenType[]", extra), len(extra), body)


def _named(f: Fn, e: Exprs, name: str) -> V:
    """The local ``name`` of ``f``, read afresh each time the value is used (it changes in loops)."""
    return V(e, lambda: e.get(f.names[name]))


def _normal(lo: V, hi: V) -> V:
    """J set and a biased exponent in 1..0x7ffe."""
    exp = hi & 0x7FFF
    return (lo >> 63) & (exp - 1).ltu(0x7FFE)


def _zero(lo: V, hi: V) -> V:
    """A true zero (either sign): exponent and significand 0."""
    return lo.eq(0) & (hi & 0x7FFF).eq(0)


def _signed_zero_if(f: Fn, cond: V, sign: V) -> None:
    """Return the zero of ``sign``, exact (no flag, C1 clear), when ``cond``."""
    zero = const(f.e, 0)
    f.result_if(cond, zero, sign << 15, zero)


# -- rounding a significand held in (hi, lo, sticky) to the precision of the control word -------------
def round_to_precision(f: Fn, sign: V, hi: V, lo: V, sticky: V, cw: V, drop: V) -> tuple[V, V, V]:
    """(kept << drop, carry, flags) of hi (64 bits, J set) rounded to 64 - ``drop`` bits by cw's RC.

    lo holds the 64 bits below hi, ``sticky`` whether anything nonzero lies below those.
    """
    rc = f.let("rc", (cw >> 10) & 3)
    kept = f.let("kept", hi >> drop)
    round_bit = f.let("round", select(drop.eq(0), lo >> 63, (hi >> (drop - 1)) & 1))
    below = select(drop.eq(0), lo << 1, (hi & ((const(f.e, 1) << (drop - 1)) - 1)) | lo)
    rest = f.let("rest", below.ne(0) | sticky)
    inexact = f.let("inexact", round_bit | rest)
    nearest = round_bit & (rest | (kept & 1))
    directed = select(rc.eq(1), inexact & sign, select(rc.eq(2), inexact & (sign ^ 1), const(f.e, 0)))
    up = f.let("up", select(rc.eq(0), nearest, directed))
    rounded = f.let("rounded", kept + up)
    carry = f.let("carry", (rounded >> (const(f.e, 64) - drop)).ne(0) & drop.ne(0) | (rounded.eq(0) & up))
    # 64-bit precision carries out of the register (kept all ones + 1 == 0): the value is 2**64
    significand = select(carry, const(f.e, 1 << 63), rounded << drop)
    flags = (inexact * xf.PE) | (up * xf.C1)
    return significand, carry, flags


def precision_drop(f: Fn, cw: V) -> V:
    """64 - precision bits: PC 0 -> 40 (24 bits), 2 -> 11 (53 bits), 1 and 3 -> 0 (64 bits)."""
    pc = f.let("pc", (cw >> 8) & 3)
    return f.let("drop", select(pc.eq(0), const(f.e, 40), select(pc.eq(2), const(f.e, 11), const(f.e, 0))))


# -- the functions ---------------------------------------------------------------------------------------
def _mul(f: Fn) -> None:
    a_lo, a_hi, b_lo, b_hi, cw, empty = (f.arg(i) for i in range(6))
    exps = f.let("exps", (a_hi & 0x7FFF) + (b_hi & 0x7FFF))
    sign = f.let("sign", ((a_hi ^ b_hi) >> 15) & 1)
    za, zb = f.let("za", _zero(a_lo, a_hi)), f.let("zb", _zero(b_lo, b_hi))
    # a zero times a zero or a normal number: the signed zero (a zero times infinity, NaN or a denormal: slow)
    _signed_zero_if(f, empty.eq(0) & ((za & (zb | _normal(b_lo, b_hi))) | (zb & _normal(a_lo, a_hi))), sign)
    f.slow_unless(empty.eq(0) & _normal(a_lo, a_hi) & _normal(b_lo, b_hi)
                  & exps.geu(BIAS + 1) & exps.leu(BIAS + 0x7FFC))
    hi, lo = _mul128(f, a_lo, b_lo)
    top = f.let("top", hi >> 63)
    hi = f.let("nhi", select(top, hi, (hi << 1) | (lo >> 63)))
    lo = f.let("nlo", select(top, lo, lo << 1))
    significand, carry, flags = round_to_precision(f, sign, hi, lo, const(f.e, 0), cw, precision_drop(f, cw))
    exp = exps - BIAS + top + carry
    f.result(significand, (sign << 15) | exp, flags)


def _mul128(f: Fn, a: V, b: V) -> tuple[V, V]:
    """(hi, lo) of the unsigned 128-bit product, from 32-bit halves."""
    m32 = 0xFFFF_FFFF
    a0, a1 = f.let("a0", a & m32), f.let("a1", a >> 32)
    b0, b1 = f.let("b0", b & m32), f.let("b1", b >> 32)
    t = f.let("t", a0 * b0)
    t = f.let("t2", a1 * b0 + (t >> 32))
    u = f.let("u", a0 * b1 + (t & m32))
    hi = f.let("phi", a1 * b1 + (t >> 32) + (u >> 32))
    lo = f.let("plo", a * b)
    return hi, lo


def _div(f: Fn, reverse: bool) -> None:
    """a / b (b / a with ``reverse``) by restoring division: the quotient's 64 bits, a round bit, a sticky bit."""
    e = f.e
    a_lo, a_hi, b_lo, b_hi, cw, empty = (f.arg(i) for i in range(6))
    if reverse:
        a_lo, a_hi, b_lo, b_hi = b_lo, b_hi, a_lo, a_hi
    diff = f.let("diff", (a_hi & 0x7FFF) - (b_hi & 0x7FFF) + BIAS)  # wraps when negative: fails the test
    sign = f.let("sign", ((a_hi ^ b_hi) >> 15) & 1)
    _signed_zero_if(f, empty.eq(0) & _zero(a_lo, a_hi) & _normal(b_lo, b_hi), sign)  # 0 / x
    f.slow_unless(empty.eq(0) & _normal(a_lo, a_hi) & _normal(b_lo, b_hi) & (diff - 2).ltu(0x7FFD - 1))
    ge = f.let("ge", a_lo.geu(b_lo))  # the quotient's integer bit
    f.let("r", select(ge, a_lo - b_lo, a_lo))  # invariant: r < b
    f.let("q", ge)
    r, q = (_named(f, e, n) for n in ("r", "q"))

    def step(store: bool) -> V:
        doubled = f.let("doubled", r << 1)
        bit = f.let("bit", (r >> 63) | doubled.geu(b_lo))  # a 65-bit 2r is always >= b
        f.let("r", select(bit, doubled - b_lo, doubled))
        if store:
            f.let("q", (q << 1) | bit)
        return bit

    def divide_step() -> None:
        step(True)

    f.loop(b"divide", divide_step, (q >> 63).eq(0))
    round_bit = f.let("round_bit", step(False))
    significand, carry, flags = round_to_precision(f, sign, q, round_bit << 63, r.ne(0), cw, precision_drop(f, cw))
    exp = diff - (ge ^ 1) + carry
    f.result(significand, (sign << 15) | exp, flags)


def _add(f: Fn, negate_b: bool, reverse: bool) -> None:
    """a + b, a - b (negate_b) or b - a (reverse as well)."""
    a_lo, a_hi, b_lo, b_hi, cw, empty = (f.arg(i) for i in range(6))
    if reverse:
        a_lo, a_hi, b_lo, b_hi = b_lo, b_hi, a_lo, a_hi
    ea, eb = f.let("ea", a_hi & 0x7FFF), f.let("eb", b_hi & 0x7FFF)
    a_big = f.let("a_big", eb.ltu(ea) | (ea.eq(eb) & b_lo.leu(a_lo)))
    top_exp = f.let("top_exp", select(a_big, ea, eb))
    # one operand may be a zero (the other is then the bigger, rounded to the precision; it adds nothing)
    a_ok = _normal(a_lo, a_hi) | (_zero(a_lo, a_hi) & _normal(b_lo, b_hi))
    b_ok = _normal(b_lo, b_hi) | (_zero(b_lo, b_hi) & _normal(a_lo, a_hi))
    f.slow_unless(empty.eq(0) & a_ok & b_ok & top_exp.geu(66) & top_exp.leu(0x7FFC))
    sa = f.let("sa", (a_hi >> 15) & 1)
    sb = f.let("sb", ((b_hi >> 15) & 1) ^ int(negate_b))
    big_m, small_m = f.let("big_m", select(a_big, a_lo, b_lo)), f.let("small_m", select(a_big, b_lo, a_lo))
    sign = f.let("sign", select(a_big, sa, sb))
    d = f.let("d", select(a_big, ea - eb, eb - ea))
    hi_b, lo_b, sticky = _shift_right(f, small_m, d)
    subtract = f.let("subtract", sa ^ sb)
    hi, lo, exp, sticky = _add_or_subtract(f, big_m, hi_b, lo_b, sticky, subtract, top_exp)
    rc = (cw >> 10) & 3
    zero = f.let("zero", (hi | lo | sticky).eq(0))
    n = f.let("n", select(hi.eq(0), const(f.e, 64) + lo.clz(), hi.clz()))
    nhi = f.let("nhi", select(n.eq(0), hi, select(n.ltu(64), (hi << n) | (lo >> (const(f.e, 64) - n)), lo << (n - 64))))
    nlo = f.let("nlo", select(n.ltu(64), lo << n, const(f.e, 0)))
    significand, carry, flags = round_to_precision(f, sign, nhi, nlo, sticky, cw, precision_drop(f, cw))
    result_hi = (sign << 15) | (exp - n + carry)
    f.result(select(zero, const(f.e, 0), significand), select(zero, rc.eq(1) << 15, result_hi),
             select(zero, const(f.e, 0), flags))


def _shift_right(f: Fn, m: V, d: V) -> tuple[V, V, V]:
    """(hi, lo, sticky) of m * 2**-d as a 128-bit value, and whether bits below it were lost."""
    e = f.e
    hi = f.let("bhi", select(d.ltu(64), m >> d, const(e, 0)))
    lo = f.let("blo", select(d.eq(0), const(e, 0), select(d.ltu(64), m << (const(e, 64) - d),
                                                         select(d.ltu(128), m >> (d - 64), const(e, 0)))))
    lost = select(d.leu(64), const(e, 0), select(d.ltu(128), m & ((const(e, 1) << (d - 64)) - 1), m))
    return hi, lo, f.let("sticky", lost.ne(0))


def _add_or_subtract(f: Fn, big: V, hi_b: V, lo_b: V, sticky: V, subtract: V, top_exp: V) -> tuple[V, V, V, V]:
    """(hi, lo, exponent, sticky) of big +- (hi_b, lo_b, sticky), big >= the other in magnitude."""
    e = f.e
    sum_hi = f.let("sum_hi", big + hi_b)
    carry = f.let("carry_out", sum_hi.ltu(big))
    add_hi = select(carry, (sum_hi >> 1) | (const(e, 1) << 63), sum_hi)
    add_lo = select(carry, (lo_b >> 1) | (sum_hi << 63), lo_b)
    add_sticky = sticky | (carry & (lo_b & 1))
    # subtraction: (big, 0) - (hi_b, lo_b) - (sticky ? one unit below lo : 0), as (x - 1) + sticky
    sub_lo0 = const(e, 0) - lo_b
    borrow = lo_b.ne(0)
    sub_lo = f.let("sub_lo", sub_lo0 - sticky)
    borrow2 = borrow | (sticky & lo_b.eq(0))
    sub_hi = big - hi_b - borrow2
    hi = f.let("r_hi", select(subtract, sub_hi, add_hi))
    lo = f.let("r_lo", select(subtract, sub_lo, add_lo))
    new_sticky = f.let("r_sticky", select(subtract, sticky, add_sticky))
    exp = f.let("r_exp", top_exp + select(subtract, const(e, 0), carry))
    return hi, lo, exp, new_sticky


def _load_binary(f: Fn, frac_bits: int, exp_bits: int) -> None:
    raw = f.arg(0) & ((1 << (1 + exp_bits + frac_bits)) - 1)
    bits = f.let("bits", raw)
    exp = f.let("exp", (bits >> frac_bits) & ((1 << exp_bits) - 1))
    f.slow_unless((exp - 1).ltu((1 << exp_bits) - 2))
    bias = (1 << (exp_bits - 1)) - 1
    lo = (bits << (63 - frac_bits)) | (1 << 63)
    hi = ((bits >> (frac_bits + exp_bits)) << 15) | (exp + (BIAS - bias))
    f.result(lo, hi, const(f.e, 0))


def _load_int(f: Fn, bits: int) -> None:
    e = f.e
    raw = f.arg(0)
    value = f.let("value", V(e, lambda: e.un(W.EXT16S64 if bits == 16 else W.EXT32S64, raw.build()))
                  if bits < 64 else raw)
    sign = f.let("sign", value >> 63)
    magnitude = f.let("mag", select(sign, const(e, 0) - value, value))
    n = f.let("n", magnitude.clz())
    zero = f.let("zero", magnitude.eq(0))
    f.result(select(zero, const(e, 0), magnitude << n),
             select(zero, const(e, 0), (sign << 15) | (const(e, BIAS + 63) - n)), const(e, 0))


def _store_binary(f: Fn, frac_bits: int, exp_bits: int) -> None:
    """fst m32/m64 of a normal value whose result is normal: round the significand by RC."""
    e = f.e
    a_lo, a_hi, cw, empty = (f.arg(i) for i in range(4))
    exp = f.let("exp", a_hi & 0x7FFF)
    bias = (1 << (exp_bits - 1)) - 1
    f.slow_unless(empty.eq(0) & _normal(a_lo, a_hi) & exp.geu(BIAS - bias + 1) & exp.leu(BIAS + bias - 1))
    sign = f.let("sign", (a_hi >> 15) & 1)
    drop = const(e, 63 - frac_bits)
    significand, carry, flags = round_to_precision(f, sign, a_lo, const(e, 0), const(e, 0), cw, drop)
    frac = (significand >> (63 - frac_bits)) & ((1 << frac_bits) - 1)
    biased = exp - (BIAS - bias) + carry
    f.result((sign << (exp_bits + frac_bits)) | (biased << frac_bits) | frac, const(e, 0), flags)


def _store_int(f: Fn, bits: int, truncate: bool) -> None:
    """fist/fistp/fisttp of 1 <= |x| < 2**(bits - 2) (no rounding into the indefinite)."""
    e = f.e
    a_lo, a_hi, cw, empty = (f.arg(i) for i in range(4))
    exp = f.let("exp", a_hi & 0x7FFF)
    f.slow_unless(empty.eq(0) & _normal(a_lo, a_hi) & exp.geu(BIAS) & exp.leu(BIAS + bits - 3))
    sign = f.let("sign", (a_hi >> 15) & 1)
    shift = f.let("shift", const(e, 63 + BIAS) - exp)  # 1 .. 63
    kept = f.let("kept", a_lo >> shift)
    round_bit = f.let("round", (a_lo >> (shift - 1)) & 1)
    rest = f.let("rest", (a_lo & ((const(e, 1) << (shift - 1)) - 1)).ne(0))
    inexact = f.let("inexact", round_bit | rest)
    if truncate:
        up = const(e, 0)
    else:
        rc = f.let("rc", (cw >> 10) & 3)
        directed = select(rc.eq(1), inexact & sign, select(rc.eq(2), inexact & (sign ^ 1), const(e, 0)))
        up = f.let("up", select(rc.eq(0), round_bit & (rest | (kept & 1)), directed))
    magnitude = f.let("mag", kept + up)
    value = select(sign, const(e, 0) - magnitude, magnitude) & ((1 << bits) - 1)
    f.result(value, const(e, 0), (inexact * xf.PE) | (up * xf.C1))


def _compare(f: Fn) -> None:
    """fcom/fucom of two normal values or zeros: C0 (less), C3 (equal), nothing (greater)."""
    e = f.e
    a_lo, a_hi, b_lo, b_hi, empty = (f.arg(i) for i in range(5))

    def zero(lo: V, hi: V) -> V:
        return (hi & 0x7FFF).eq(0) & lo.eq(0)

    az, bz = f.let("az", zero(a_lo, a_hi)), f.let("bz", zero(b_lo, b_hi))
    f.slow_unless(empty.eq(0) & (_normal(a_lo, a_hi) | az) & (_normal(b_lo, b_hi) | bz))
    sa = f.let("sa", select(az, const(e, 0), (a_hi >> 15) & 1))
    sb = f.let("sb", select(bz, const(e, 0), (b_hi >> 15) & 1))
    ea, eb = f.let("ea", a_hi & 0x7FFF), f.let("eb", b_hi & 0x7FFF)
    equal = f.let("equal", (az & bz) | (sa.eq(sb) & ea.eq(eb) & a_lo.eq(b_lo)))
    mag_less = f.let("mag_less", ea.ltu(eb) | (ea.eq(eb) & a_lo.ltu(b_lo)))
    less = select(sa.ne(sb), sa, select(sa, (mag_less | equal) ^ 1, mag_less))
    f.result(select(equal, const(e, xf.C3), select(less, const(e, xf.C0), const(e, 0))))


FAST: dict[tuple[str, int], Callable[[Fn], None]] = {
    ("x87_arith", Arith.ADD): lambda f: _add(f, False, False),
    ("x87_arith", Arith.SUB): lambda f: _add(f, True, False),
    ("x87_arith", Arith.SUBR): lambda f: _add(f, True, True),
    ("x87_arith", Arith.MUL): _mul,
    ("x87_arith", Arith.DIV): lambda f: _div(f, False),
    ("x87_arith", Arith.DIVR): lambda f: _div(f, True),
    ("x87_load", MemFormat.F32): lambda f: _load_binary(f, 23, 8),
    ("x87_load", MemFormat.F64): lambda f: _load_binary(f, 52, 11),
    ("x87_load", MemFormat.F32_OPERAND): lambda f: _load_binary(f, 23, 8),
    ("x87_load", MemFormat.F64_OPERAND): lambda f: _load_binary(f, 52, 11),
    ("x87_load", MemFormat.I16): lambda f: _load_int(f, 16),
    ("x87_load", MemFormat.I32): lambda f: _load_int(f, 32),
    ("x87_load", MemFormat.I64): lambda f: _load_int(f, 64),
    ("x87_store", MemFormat.F32): lambda f: _store_binary(f, 23, 8),
    ("x87_store", MemFormat.F64): lambda f: _store_binary(f, 52, 11),
    ("x87_store", MemFormat.I16): lambda f: _store_int(f, 16, False),
    ("x87_store", MemFormat.I32): lambda f: _store_int(f, 32, False),
    ("x87_store", MemFormat.I64): lambda f: _store_int(f, 64, False),
    ("x87_store", MemFormat.I16_TRUNC): lambda f: _store_int(f, 16, True),
    ("x87_store", MemFormat.I32_TRUNC): lambda f: _store_int(f, 32, True),
    ("x87_store", MemFormat.I64_TRUNC): lambda f: _store_int(f, 64, True),
    ("x87_compare", 0): _compare,
    ("x87_compare", 1): _compare,
}


def helper_for(module: Any, e: Exprs, op: str, kind: int) -> bytes:
    """The function computing ``op`` with constant ``kind``: a fast helper (added once per module) or env.x87."""
    make = FAST.get((op, kind))
    if make is None:
        return b"x87"
    name = f"{op}_{kind}".encode()
    if lib.BinaryenGetFunction(module, name) == ffi.NULL:
        f = Fn(e)
        make(f)
        f.add_to(module, name)
    return name


__all__ = ["FAST", "helper_for"]
