"""x87 80-bit extended precision, exactly as the CPU computes it: the reference the x87 ops are defined by.

A value is a pair of ints ``(lo, hi)``: ``lo`` the 64-bit significand (bit 63
the explicit integer bit J), ``hi`` the sign (bit 15) and the biased exponent
(bits 0-14), as fstp m80 stores them. Every function here is pure and returns
the result value(s) and the status-word bits the operation raises
(``IE DE ZE OE UE PE`` in bits 0-5, ``SF``, ``C1``; ``C0 C2 C3`` for the
compares and fprem). Results are computed exactly with Python integers and
rounded once, by the precision and rounding control of the control word.

The rules below were measured on the host CPU (an AMD EPYC) with
``tests/native/x87oracle.c`` and are checked against it by ``tests/test_x87_float.py``:

* NaN operands: an SNaN raises IE and is quieted; of two NaNs the QNaN wins
  over an SNaN, else the one with the larger significand, and of two with
  equal significands the positive one.
* Unsupported encodings (pseudo-NaN, pseudo-infinity, unnormal: a nonzero
  exponent with J clear) are invalid operands: IE and the real indefinite.
* A denormal operand (or pseudo-denormal: exponent 0 with J set, worth as
  much as exponent 1) raises DE, also next to an infinity.
* Underflow: tininess is detected *after* rounding (to the precision, exponent
  unbounded); masked, UE is raised only
  when the result is also inexact; unmasked, the result is rounded to the
  precision with the exponent range unbounded, its exponent raised by 24576,
  and UE raised (exact or not). Overflow unmasked: the exponent lowered by 24576.
* C1 is set when a result was rounded up in magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

M64 = (1 << 64) - 1
J_BIT = 1 << 63
EXP_MASK = 0x7FFF
SIGN_BIT = 0x8000
BIAS = 16383
EMIN = 1 - BIAS  # exponent of the smallest normal value (its J bit has weight 2**EMIN)
EMAX = EXP_MASK - 1 - BIAS
BIAS_ADJUST = 24576  # exponent wrap of the unmasked overflow/underflow responses

IE, DE, ZE, OE, UE, PE = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
SF = 0x40
ES = 0x80
C0, C1, C2, C3 = 0x100, 0x200, 0x400, 0x4000
BUSY = 0x8000
EXCEPTIONS = IE | DE | ZE | OE | UE | PE
#: Not a status bit: the instruction's result must not be written (an unmasked IE, DE or ZE).
NO_WRITE = 1 << 16
#: Not a status bit: C0 and C3 keep their old values, C1 and C2 are cleared (fprem on NaNs, invalid
#: operands, empty registers: measured).
KEEP_CODES = 1 << 17
#: In an op's ``empty`` argument (bits 0-7: register operand i is empty): the memory operand
#: the front end converted was a denormal (it raises DE although its extended form is normal).
DENORMAL_SOURCE = 1 << 8

#: The real indefinite: the default NaN of an invalid operation.
INDEFINITE = (0xC000_0000_0000_0000, 0xFFFF)
QUIET = 1 << 62

# rounding control (control word bits 10-11)
RC_NEAREST, RC_DOWN, RC_UP, RC_ZERO = 0, 1, 2, 3
#: precision control (bits 8-9) -> significand bits; 1 is reserved and acts as 64 (measured).
PRECISION = {0: 24, 1: 64, 2: 53, 3: 64}


@dataclass(frozen=True, slots=True)
class Format:
    """A binary format results are rounded to: precision, exponent range (unbiased)."""

    precision: int
    emin: int
    emax: int


EXTENDED = Format(64, EMIN, EMAX)
DOUBLE = Format(53, -1022, 1023)
SINGLE = Format(24, -126, 127)


def rounding(cw: int) -> int:
    return (cw >> 10) & 3


def precision_format(cw: int) -> Format:
    """The format arithmetic rounds to: the extended exponent range, PC's precision."""
    return Format(PRECISION[(cw >> 8) & 3], EMIN, EMAX)


# -- classification ------------------------------------------------------------------------
ZERO, NORMAL, DENORMAL, INFINITY, QNAN, SNAN, UNSUPPORTED = range(7)


def classify(lo: int, hi: int) -> int:
    exp = hi & EXP_MASK
    if exp == 0:
        return ZERO if lo == 0 else DENORMAL  # J set: a pseudo-denormal, a denormal operand too
    if not lo & J_BIT:
        return UNSUPPORTED  # unnormal, pseudo-infinity, pseudo-NaN
    if exp == EXP_MASK:
        if lo == J_BIT:
            return INFINITY
        return QNAN if lo & QUIET else SNAN
    return NORMAL


def is_nan_kind(kind: int) -> bool:
    return kind in (QNAN, SNAN)


def sign_of(hi: int) -> int:
    return (hi >> 15) & 1


def finite_parts(lo: int, hi: int) -> tuple[int, int, int]:
    """(sign, m, e) with value (-1)**sign * m * 2**e, for zeros, normals and (pseudo-)denormals."""
    exp = hi & EXP_MASK
    return sign_of(hi), lo, max(exp, 1) - BIAS - 63


def infinity(sign: int) -> tuple[int, int]:
    return J_BIT, (sign << 15) | EXP_MASK


def zero(sign: int) -> tuple[int, int]:
    return 0, sign << 15


def quiet(lo: int, hi: int) -> tuple[int, int]:
    return lo | QUIET, hi


def pick_nan(a: tuple[int, int], b: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """The NaN result of two operands at least one of which is a NaN, and IE if one is signaling."""
    ka, kb = classify(*a), classify(*b)
    flags = IE if SNAN in (ka, kb) else 0
    if not is_nan_kind(kb):
        return quiet(*a), flags
    if not is_nan_kind(ka):
        return quiet(*b), flags
    if ka != kb:  # one quiet, one signaling: the quiet one
        return (a if ka == QNAN else b), flags
    if a[0] != b[0]:
        return quiet(*(a if a[0] > b[0] else b)), flags
    return quiet(*(a if not sign_of(a[1]) else b)), flags


# -- rounding ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rounded:
    """A value rounded to a format: kept * 2**q, and what rounding found."""

    sign: int
    kept: int
    q: int
    flags: int  # PE, UE, OE, C1
    overflow_to: str = ""  # "inf" / "max" when the result overflowed (masked response)


def round_value(sign: int, m: int, e: int, sticky: bool, fmt: Format, rc: int, masked_under: bool = True) -> Rounded:
    """Round (-1)**sign * (m + (sticky ? a little : 0)) * 2**e, m > 0, to ``fmt`` by ``rc``.

    ``masked_under``: denormalize tiny results (the masked underflow response);
    else round to the precision with an unbounded exponent (the unmasked one).
    """
    top = e + m.bit_length() - 1  # exponent of the leading bit
    tiny = top < fmt.emin and not _rounds_to_normal(sign, m, e, sticky, fmt, rc)
    q = top - fmt.precision + 1
    if tiny and masked_under:
        q = max(q, fmt.emin - fmt.precision + 1)
    shift = q - e
    if shift > 0:
        kept, rest = m >> shift, m & ((1 << shift) - 1)
        half = 1 << (shift - 1)
    else:  # exact at this quantum (only the sticky part, below half of it, is lost)
        kept, rest, half = m << -shift, 0, 1
    inexact = rest != 0 or sticky
    up = _rounds_up(sign, kept, rest, half, sticky, rc) if inexact else False
    if up:
        kept += 1
    flags = PE if inexact else 0
    if up:
        flags |= C1
    if tiny and (inexact or not masked_under):
        flags |= UE
    if kept.bit_length() > fmt.precision:  # carried into a new leading bit
        kept >>= 1
        q += 1
    return Rounded(sign, kept, q, flags)


def _rounds_to_normal(sign: int, m: int, e: int, sticky: bool, fmt: Format, rc: int) -> bool:
    """Whether a value just below 2**emin rounds up to it at the precision with an unbounded exponent.

    Tininess is detected *after* rounding in that sense (IEEE 754's second option): measured, a
    product just below the smallest normal that rounds to it at 24 or 53 bits raises no UE.
    """
    top = e + m.bit_length() - 1
    if top != fmt.emin - 1:
        return False
    shift = top - fmt.precision + 1 - e
    if shift <= 0:
        return False
    kept, rest = m >> shift, m & ((1 << shift) - 1)
    if not (rest or sticky) or not _rounds_up(sign, kept, rest, 1 << (shift - 1), sticky, rc):
        return False
    return (kept + 1).bit_length() > fmt.precision


def _rounds_up(sign: int, kept: int, rest: int, half: int, sticky: bool, rc: int) -> bool:
    """Whether the magnitude rounds up; ``rest`` is below ``2 * half``, sticky adds a little to it."""
    if rc == RC_NEAREST:
        if rest > half or (rest == half and sticky):
            return True
        return rest == half and not sticky and bool(kept & 1)
    if rc == RC_ZERO:
        return False
    return (rc == RC_UP) != bool(sign)  # up for positive values, down for negative ones


def overflowed(r: Rounded, fmt: Format) -> bool:
    return r.kept != 0 and r.q + r.kept.bit_length() - 1 > fmt.emax


def overflow_response(sign: int, rc: int) -> str:
    """Masked overflow: infinity, or the largest finite value when rounding goes toward zero."""
    if rc == RC_NEAREST or (rc == RC_UP and not sign) or (rc == RC_DOWN and sign):
        return "inf"
    return "max"


def encode_extended(sign: int, kept: int, q: int) -> tuple[int, int]:
    """kept * 2**q (in the extended range, possibly denormal) as (lo, hi)."""
    if kept == 0:
        return zero(sign)
    extra = kept.bit_length() - 64
    if extra > 0:  # an exact value with trailing zeros beyond 64 bits
        kept, q = kept >> extra, q + extra
    top = q + kept.bit_length() - 1
    if top < EMIN:  # denormal: the significand's unit is 2**(EMIN - 63)
        shift = q - (EMIN - 63)
        return ((kept << shift) if shift >= 0 else (kept >> -shift)) & M64, sign << 15
    lo = (kept << (63 - kept.bit_length() + 1)) & M64
    return lo, (sign << 15) | ((top + BIAS) & EXP_MASK)


def _largest(fmt: Format) -> tuple[int, int]:
    """(kept, q) of the largest finite value of ``fmt``."""
    return (1 << fmt.precision) - 1, fmt.emax - fmt.precision + 1


def round_to_extended(sign: int, m: int, e: int, sticky: bool, cw: int,
                      fmt: Format | None = None) -> tuple[int, int, int]:
    """An exact result rounded into a register by the control word: (lo, hi, flags).

    Masked overflow gives infinity or the largest value; unmasked overflow or underflow
    give the result with its exponent moved by 24576 (the CPU's bias adjust).
    """
    fmt = fmt or precision_format(cw)
    rc = rounding(cw)
    if m == 0:
        return *zero(sign), (PE if sticky else 0)
    under_masked = bool(cw & UE)
    r = round_value(sign, m, e, sticky, fmt, rc, masked_under=under_masked)
    flags = r.flags
    top = r.q + r.kept.bit_length() - 1
    if overflowed(r, fmt):
        if cw & OE or top - BIAS_ADJUST > EMAX:  # masked, or beyond what the bias adjust can bring back
            flags |= OE | PE
            if overflow_response(sign, rc) == "inf":
                return *infinity(sign), flags | C1
            kept, q = _largest(fmt)
            return *encode_extended(sign, kept, q), flags & ~C1
        lo, hi = encode_extended(sign, r.kept, r.q - BIAS_ADJUST)
        return lo, hi, flags | OE
    if flags & UE and not under_masked:
        if top + BIAS_ADJUST >= EMIN:
            lo, hi = encode_extended(sign, r.kept, r.q + BIAS_ADJUST)
            return lo, hi, flags
        r = round_value(sign, m, e, sticky, fmt, rc, masked_under=True)  # too tiny even so: as if masked
        flags = r.flags | UE
    lo, hi = encode_extended(sign, r.kept, r.q)
    return lo, hi, flags


def invalid(flags: int = 0) -> tuple[int, int, int]:
    """The masked response to an invalid operation: the real indefinite and IE."""
    return *INDEFINITE, flags | IE


def with_write_rule(lo: int, hi: int, flags: int, cw: int) -> tuple[int, int, int]:
    """Mark results of unmasked IE, DE or ZE as not to be written (the CPU leaves the destination)."""
    if flags & ~cw & (IE | DE | ZE):
        flags |= NO_WRITE
    return lo, hi, flags


# -- operand checks shared by the arithmetic -------------------------------------------------
Value = tuple[int, int]
Result = tuple[int, int, int]  # lo, hi, flags


def screen_operands(values: tuple[Value, ...], empty: int) -> tuple[Result | None, int]:
    """The checks before any arithmetic: stack underflow, unsupported encodings, NaNs, denormals.

    ``empty`` has bit i set when operand i is an empty register. Returns (final result or None,
    flags so far: DE when an operand is denormal).
    """
    if empty & 0xFF:
        return invalid(SF), 0
    kinds = [classify(*v) for v in values]
    if UNSUPPORTED in kinds:
        return invalid(), 0
    if any(is_nan_kind(k) for k in kinds):
        if len(values) == 1:
            return (*quiet(*values[0]), IE if kinds[0] == SNAN else 0), 0
        nan, flags = pick_nan(values[0], values[1])
        return (*nan, flags), 0
    return None, DE if DENORMAL in kinds or empty & DENORMAL_SOURCE else 0


def denormal_abort(flags: int, cw: int) -> Result | None:
    """An unmasked denormal-operand exception stops the instruction before it computes anything."""
    if flags & DE and not cw & DE:
        return 0, 0, DE | NO_WRITE
    return None


def _sum(sa: int, ma: int, ea: int, sb: int, mb: int, eb: int) -> tuple[int, int, int, bool]:
    """Exact a + b of two finite nonzero values as (sign, m, e, sticky); m may be 0 (exact cancellation).

    An operand far below the other only matters as a sticky bit: it is replaced by a stand-in
    far below the other's lowest bit, which rounds the same way.
    """
    top_a, top_b = ea + ma.bit_length(), eb + mb.bit_length()
    if top_a - top_b > 200:
        mb, eb = 1, top_a - 300
    elif top_b - top_a > 200:
        ma, ea = 1, top_b - 300
    e = min(ea, eb)
    total = (-1 if sa else 1) * (ma << (ea - e)) + (-1 if sb else 1) * (mb << (eb - e))
    return int(total < 0), abs(total), e, False


def add(a: Value, b: Value, cw: int, empty: int = 0, negate_b: bool = False) -> Result:
    """a + b (a - b with ``negate_b``), rounded by the control word."""
    done, flags = screen_operands((a, b), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    ka, kb = classify(*a), classify(*b)
    sa, sb = sign_of(a[1]), sign_of(b[1]) ^ int(negate_b)
    rc = rounding(cw)
    if ka == INFINITY and kb == INFINITY and sa != sb:
        return with_write_rule(*invalid(), cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    if ka == INFINITY or kb == INFINITY:
        return with_write_rule(*infinity(sa if ka == INFINITY else sb), flags, cw)
    if ka == ZERO and kb == ZERO:
        same = sa if sa == sb else int(rc == RC_DOWN)
        return with_write_rule(*zero(same), flags, cw)
    if ka == ZERO or kb == ZERO:
        s, m, e = finite_parts(*(b if ka == ZERO else a))
        s = sb if ka == ZERO else sa
        lo, hi, more = round_to_extended(s, m, e, False, cw)
        return with_write_rule(lo, hi, flags | more, cw)
    _, ma, ea = finite_parts(*a)
    _, mb, eb = finite_parts(*b)
    s, m, e, sticky = _sum(sa, ma, ea, sb, mb, eb)
    if m == 0:
        return with_write_rule(*zero(int(rc == RC_DOWN)), flags, cw)
    lo, hi, more = round_to_extended(s, m, e, sticky, cw)
    return with_write_rule(lo, hi, flags | more, cw)


def mul(a: Value, b: Value, cw: int, empty: int = 0) -> Result:
    done, flags = screen_operands((a, b), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    ka, kb = classify(*a), classify(*b)
    s = sign_of(a[1]) ^ sign_of(b[1])
    if INFINITY in (ka, kb) and ZERO in (ka, kb):
        return with_write_rule(*invalid(), cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    if INFINITY in (ka, kb):
        return with_write_rule(*infinity(s), flags, cw)
    if ZERO in (ka, kb):
        return with_write_rule(*zero(s), flags, cw)
    _, ma, ea = finite_parts(*a)
    _, mb, eb = finite_parts(*b)
    lo, hi, more = round_to_extended(s, ma * mb, ea + eb, False, cw)
    return with_write_rule(lo, hi, flags | more, cw)


def div(a: Value, b: Value, cw: int, empty: int = 0) -> Result:
    """a / b."""
    done, flags = screen_operands((a, b), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    ka, kb = classify(*a), classify(*b)
    s = sign_of(a[1]) ^ sign_of(b[1])
    if (ka, kb) in ((INFINITY, INFINITY), (ZERO, ZERO)):
        return with_write_rule(*invalid(), cw)
    if kb == ZERO and ka != INFINITY:  # x / 0 raises ZE only, even for a denormal x
        return with_write_rule(*infinity(s), ZE, cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    if ka == INFINITY:
        return with_write_rule(*infinity(s), flags, cw)
    if kb == INFINITY:
        return with_write_rule(*zero(s), flags, cw)
    if ka == ZERO:
        return with_write_rule(*zero(s), flags, cw)
    _, ma, ea = finite_parts(*a)
    _, mb, eb = finite_parts(*b)
    k = max(0, 70 + mb.bit_length() - ma.bit_length())
    quotient, remainder = divmod(ma << k, mb)
    lo, hi, more = round_to_extended(s, quotient, ea - eb - k, remainder != 0, cw)
    return with_write_rule(lo, hi, flags | more, cw)


def isqrt_parts(m: int, e: int, bits: int = 140) -> tuple[int, int, bool]:
    """sqrt(m * 2**e) as (root, exponent, sticky) with at least ``bits // 2`` bits in root."""
    if e & 1:
        m, e = m << 1, e - 1
    extra = max(0, bits - m.bit_length())
    extra += extra & 1
    m, e = m << extra, e - extra
    from math import isqrt
    root = isqrt(m)
    return root, e // 2, root * root != m


def sqrt(a: Value, cw: int, empty: int = 0) -> Result:
    done, flags = screen_operands((a,), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    kind, s = classify(*a), sign_of(a[1])
    if s and kind != ZERO:
        return with_write_rule(*invalid(), cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    if kind == ZERO:
        return with_write_rule(*a, flags, cw)
    if kind == INFINITY:
        return with_write_rule(*a, flags, cw)
    _, m, e = finite_parts(*a)
    root, exp, sticky = isqrt_parts(m, e)
    lo, hi, more = round_to_extended(0, root, exp, sticky, cw)
    return with_write_rule(lo, hi, flags | more, cw)


# -- loads: memory formats -> extended (exact) ------------------------------------------------
@dataclass(frozen=True, slots=True)
class BinaryFormat:
    """An IEEE interchange format in memory: its field widths and its default NaN."""

    bits: int
    exp_bits: int
    fmt: Format

    @property
    def frac_bits(self) -> int:
        return self.bits - 1 - self.exp_bits

    @property
    def default_nan(self) -> int:
        return ((1 << (self.exp_bits + 2)) - 1) << (self.frac_bits - 1)


BINARY32 = BinaryFormat(32, 8, SINGLE)
BINARY64 = BinaryFormat(64, 11, DOUBLE)


def load_binary(bits: int, bf: BinaryFormat, as_operand: bool = False) -> Result:
    """fld m32/m64: exact widening; SNaN raises IE and is quieted, a denormal raises DE.

    ``as_operand``: the memory operand of an arithmetic or compare instruction: an SNaN stays
    signaling (the operation raises IE and picks the NaN by the x87 rules) and a denormal
    reports ``DENORMAL_SOURCE`` instead of DE (the operation raises it).
    """
    frac_bits = bf.frac_bits
    sign = (bits >> (bf.bits - 1)) & 1
    exp = (bits >> frac_bits) & ((1 << bf.exp_bits) - 1)
    frac = bits & ((1 << frac_bits) - 1)
    all_ones = (1 << bf.exp_bits) - 1
    if exp == all_ones:
        lo = J_BIT | (frac << (63 - frac_bits))
        if frac == 0:
            return *infinity(sign), 0
        if as_operand:
            return lo, (sign << 15) | EXP_MASK, 0
        flags = 0 if frac >> (frac_bits - 1) else IE
        return lo | QUIET, (sign << 15) | EXP_MASK, flags
    if exp == 0:
        if frac == 0:
            return *zero(sign), 0
        bias = (1 << (bf.exp_bits - 1)) - 1
        lo, hi = encode_extended(sign, frac, 1 - bias - frac_bits)
        return lo, hi, DENORMAL_SOURCE if as_operand else DE
    bias = (1 << (bf.exp_bits - 1)) - 1
    return J_BIT | (frac << (63 - frac_bits)), (sign << 15) | (exp - bias + BIAS), 0


def load_int(value: int, bits: int) -> Result:
    """fild m16/m32/m64: exact."""
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    if value == 0:
        return *zero(0), 0
    lo, hi = encode_extended(int(value < 0), abs(value), 0)
    return lo, hi, 0


def load_bcd(lo: int, hi: int) -> Result:
    """fbld m80: 18 packed decimal digits (bytes 0-8, low digit first) and the sign in bit 79."""
    digits = (lo & M64) | ((hi & 0xFF) << 64)
    value = 0
    for i in range(17, -1, -1):
        value = value * 10 + ((digits >> (4 * i)) & 0xF)
    sign = (hi >> 15) & 1
    if value == 0:
        return *zero(sign), 0
    rlo, rhi = encode_extended(sign, value, 0)
    return rlo, rhi, 0


# -- stores: extended -> memory formats (rounded by RC) -----------------------------------------
def _screen_store(a: Value, empty: int) -> tuple[int, int, int]:
    """(kind, flags, done): stack underflow and unsupported encodings are invalid (done = 1)."""
    if empty:
        return UNSUPPORTED, IE | SF, 1
    kind = classify(*a)
    if kind == UNSUPPORTED:
        return kind, IE, 1
    return kind, 0, 0


def store_binary(a: Value, cw: int, bf: BinaryFormat, empty: int = 0) -> tuple[int, int]:
    """fst m32/m64: (bits, flags); an unmasked IE, OE or UE leaves memory unwritten (NO_WRITE)."""
    kind, flags, done = _screen_store(a, empty)
    frac_bits, sign = bf.frac_bits, sign_of(a[1])
    exp_ones = ((1 << bf.exp_bits) - 1) << frac_bits
    if done:
        return _store_rule(bf.default_nan, flags, cw)
    if kind in (QNAN, SNAN):
        payload = (a[0] >> (63 - frac_bits)) & ((1 << frac_bits) - 1)
        nan = (sign << (bf.bits - 1)) | exp_ones | payload | (1 << (frac_bits - 1))
        return _store_rule(nan, IE if kind == SNAN else 0, cw)
    if kind == INFINITY:
        return (sign << (bf.bits - 1)) | exp_ones, 0
    if kind == ZERO:
        return sign << (bf.bits - 1), 0
    _, m, e = finite_parts(*a)  # a denormal source raises no DE (measured)
    return _store_rule(*_round_binary(sign, m, e, cw, bf, 0), cw)


def _round_binary(sign: int, m: int, e: int, cw: int, bf: BinaryFormat, flags: int) -> tuple[int, int]:
    fmt, rc = bf.fmt, rounding(cw)
    r = round_value(sign, m, e, False, fmt, rc, masked_under=True)
    flags |= r.flags
    if not cw & UE and e + m.bit_length() - 1 < fmt.emin and not _rounds_to_normal(sign, m, e, False, fmt, rc):
        flags |= UE  # unmasked, a tiny result underflows even when exact
    top_bit = sign << (bf.bits - 1)
    if overflowed(r, fmt):
        flags |= OE | PE
        if overflow_response(sign, rc) == "inf":
            return top_bit | (((1 << bf.exp_bits) - 1) << bf.frac_bits), flags | C1
        return top_bit | ((((1 << bf.exp_bits) - 1) << bf.frac_bits) - 1), flags & ~C1
    bias = (1 << (bf.exp_bits - 1)) - 1
    top = r.q + r.kept.bit_length() - 1
    if r.kept == 0:
        return top_bit, flags
    if top < fmt.emin:  # denormal
        return top_bit | (r.kept << (r.q - (fmt.emin - bf.frac_bits))), flags
    frac = (r.kept << (bf.frac_bits + 1 - r.kept.bit_length())) & ((1 << bf.frac_bits) - 1)
    return top_bit | ((top + bias) << bf.frac_bits) | frac, flags


def _store_rule(bits: int, flags: int, cw: int) -> tuple[int, int]:
    """An unmasked IE, OE or UE leaves memory as it was, and raises only that exception (no PE, C1)."""
    unmasked = flags & ~cw & (IE | OE | UE)
    if unmasked:
        return 0, (flags & (IE | SF)) | unmasked | NO_WRITE
    return bits, flags


def round_to_integer(a: Value, rc: int) -> tuple[int, int]:
    """(integer, flags PE/C1) of a finite value rounded by ``rc``."""
    sign, m, e = finite_parts(*a)
    if e >= 0:
        return (-1 if sign else 1) * (m << e), 0
    kept, rest = m >> -e, m & ((1 << -e) - 1)
    if rest == 0:
        return (-1 if sign else 1) * kept, 0
    up = _rounds_up(sign, kept, rest, 1 << (-e - 1), False, rc)
    kept += int(up)
    return (-1 if sign else 1) * kept, PE | (C1 if up else 0)


def store_int(a: Value, cw: int, bits: int, truncate: bool = False, empty: int = 0) -> tuple[int, int]:
    """fist/fistp (rounded by RC) or fisttp (``truncate``): (value, flags); the indefinite when out of range."""
    indefinite = 1 << (bits - 1)
    kind, flags, done = _screen_store(a, empty)
    if done or kind in (QNAN, SNAN, INFINITY):
        return _store_rule(indefinite, flags | IE, cw)
    if kind == ZERO:
        return 0, 0
    value, flags = round_to_integer(a, RC_ZERO if truncate else rounding(cw))  # no DE for a denormal
    if not -indefinite <= value < indefinite:
        return _store_rule(indefinite, IE, cw)
    return value & ((1 << bits) - 1), flags


BCD_INDEFINITE = (0xC000_0000_0000_0000, 0xFFFF)


def store_bcd(a: Value, cw: int, empty: int = 0) -> Result:
    """fbstp m80: (lo, hi, flags) of the value rounded by RC as 18 packed decimal digits."""
    kind, flags, done = _screen_store(a, empty)
    if done or kind in (QNAN, SNAN, INFINITY):
        lo, hi = BCD_INDEFINITE
        return lo, hi, _store_rule(0, flags | IE, cw)[1]
    sign = sign_of(a[1])
    if kind == ZERO:
        return 0, sign << 15, 0
    value, more = round_to_integer(a, rounding(cw))
    if abs(value) >= 10**18:
        lo, hi = BCD_INDEFINITE
        return lo, hi, _store_rule(0, IE, cw)[1]
    digits = 0
    magnitude = abs(value)
    for i in range(18):
        digits |= (magnitude % 10) << (4 * i)
        magnitude //= 10
    return digits & M64, (sign << 15) | (digits >> 64), more


# -- compares -------------------------------------------------------------------------------------
#: Condition codes of a compare: greater, less, equal, unordered (C3 C2 C0 as fcom sets them).
CMP_GT, CMP_LT, CMP_EQ, CMP_UN = 0, C0, C3, C0 | C2 | C3


def compare(a: Value, b: Value, quiet_nans: bool, empty: int = 0) -> int:
    """fcom/fucom/fcomi/ftst: the condition codes (C0 C2 C3) and flags (IE, DE, SF); C1 is 0.

    ``quiet_nans`` (fucom, fucomi): only an SNaN raises IE; fcom raises it for any NaN.
    """
    if empty & 0xFF:
        return CMP_UN | IE | SF
    ka, kb = classify(*a), classify(*b)
    if UNSUPPORTED in (ka, kb):
        return CMP_UN | IE
    if is_nan_kind(ka) or is_nan_kind(kb):
        signaling = SNAN in (ka, kb) or not quiet_nans
        return CMP_UN | (IE if signaling else 0)
    flags = DE if DENORMAL in (ka, kb) or empty & DENORMAL_SOURCE else 0
    x, y = exact_value(a, ka), exact_value(b, kb)
    if x == y:
        return CMP_EQ | flags
    return (CMP_LT if x < y else CMP_GT) | flags


def exact_value(a: Value, kind: int | None = None) -> float | int:
    """A value as a comparable number: infinities as floats, finite values as scaled integers."""
    kind = classify(*a) if kind is None else kind
    if kind == INFINITY:
        return float("-inf") if sign_of(a[1]) else float("inf")
    sign, m, e = finite_parts(*a)
    scaled = m << (e + 16445 + 64)  # every finite extended value is an integer multiple of 2**-16509
    return -scaled if sign else scaled


def examine(a: Value, empty: int) -> int:
    """fxam: C3 C2 C0 give the class, C1 the sign."""
    flags = C1 if sign_of(a[1]) else 0
    if empty:
        return flags | C3 | C0
    kind = classify(*a)
    classes = {UNSUPPORTED: 0, QNAN: C0, SNAN: C0, NORMAL: C2, INFINITY: C2 | C0, ZERO: C3, DENORMAL: C3 | C2}
    if kind == DENORMAL and a[0] & J_BIT:
        return flags | C3 | C2  # a pseudo-denormal is examined as a denormal
    return flags | classes[kind]


# -- frndint -----------------------------------------------------------------------------------
def round_int(a: Value, cw: int, empty: int = 0) -> Result:
    done, flags = screen_operands((a,), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    kind, sign = classify(*a), sign_of(a[1])
    if kind in (ZERO, INFINITY):
        return with_write_rule(*a, flags, cw)
    value, more = round_to_integer(a, rounding(cw))
    if value == 0:
        return with_write_rule(*zero(sign), flags | more, cw)
    lo, hi = encode_extended(sign, abs(value), 0)
    return with_write_rule(lo, hi, flags | more, cw)


# -- constants: fldpi, fldl2e, fldl2t, fldlg2, fldln2 (fld1 and fldz are exact) ---------------------
_CONSTANT_BITS = 192


def _ln2_scaled(bits: int) -> int:
    """floor(ln 2 * 2**bits) (a little below: the sum of atanh(1/3) terms, truncated)."""
    # ln 2 = 2 atanh(1/3) = 2 * sum 1 / ((2k + 1) 3**(2k + 1))
    one = 1 << (bits + 16)
    total, k, power = 0, 0, one // 3
    while power:
        total += power // (2 * k + 1)
        power //= 9
        k += 1
    return (2 * total) >> 16


def _pi_scaled(bits: int) -> int:
    """floor(pi * 2**bits), by Machin's formula in fixed point (16 guard bits)."""
    def arctan_inv(x: int, one: int) -> int:
        total, power, k, sign = 0, one // x, 1, 1
        while power:
            total += sign * (power // k)
            power //= x * x
            k += 2
            sign = -sign
        return total

    one = 1 << (bits + 16)
    return (16 * arctan_inv(5, one) - 4 * arctan_inv(239, one)) >> 16


def constant_value(name: str) -> tuple[int, int]:
    """(m, e): the constant as m * 2**e with _CONSTANT_BITS bits, m truncated (never exact)."""
    bits = _CONSTANT_BITS
    ln2 = _ln2_scaled(bits + 64)  # ln 2 * 2**(bits + 64)
    ln10 = _ln10_scaled(bits + 64)
    scale = 1 << (bits + 64)
    values = {
        "pi": (_pi_scaled(bits), -bits),
        "ln2": (ln2 >> 64, -bits),
        "l2e": ((scale << bits) // ln2, -bits),  # 1 / ln 2
        "l2t": ((ln10 << bits) // ln2, -bits),  # ln 10 / ln 2
        "lg2": ((ln2 << bits) // ln10, -bits),  # ln 2 / ln 10
    }
    return values[name]


def _ln10_scaled(bits: int) -> int:
    """floor(ln 10 * 2**bits): ln 10 = 3 ln 2 + ln(5/4), ln(5/4) = 2 atanh(1/9)."""
    one = 1 << (bits + 16)
    total, k, power = 0, 0, one // 9
    while power:
        total += power // (2 * k + 1)
        power //= 81
        k += 1
    return (3 * (_ln2_scaled(bits + 16)) + 2 * total) >> 16


def load_constant(name: str, cw: int) -> Result:
    """The constant rounded to 64 bits by RC, raising nothing (not even C1: measured)."""
    m, e = constant_value(name)
    r = round_value(0, m, e, True, EXTENDED, rounding(cw))
    lo, hi = encode_extended(0, r.kept, r.q)
    return lo, hi, 0


# -- fscale, fxtract, fprem, fprem1 ------------------------------------------------------------------
def scale(a: Value, b: Value, cw: int, empty: int = 0) -> Result:
    """fscale: st0 * 2**trunc(st1)."""
    done, flags = screen_operands((a, b), empty)
    if done is not None:
        return with_write_rule(*done, cw)
    ka, kb = classify(*a), classify(*b)
    sa, sb = sign_of(a[1]), sign_of(b[1])
    if kb == INFINITY and ((ka == ZERO and not sb) or (ka == INFINITY and sb)):
        return with_write_rule(*invalid(), cw)
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort
    if ka in (ZERO, INFINITY):
        return with_write_rule(*a, flags, cw)
    if kb == INFINITY:
        return with_write_rule(*(infinity(sa) if not sb else zero(sa)), flags, cw)
    n, _ = round_to_integer(b, RC_ZERO) if kb != ZERO else (0, 0)
    n = max(-70000, min(70000, n))
    _, m, e = finite_parts(*a)
    lo, hi, more = round_to_extended(sa, m, e + n, False, cw, EXTENDED)
    return with_write_rule(lo, hi, flags | more, cw)


def extract(a: Value, cw: int, empty: int = 0) -> tuple[int, int, int, int, int]:
    """fxtract: (exponent lo, hi, significand lo, hi, flags); the exponent goes to st1, the significand to st0."""
    done, flags = screen_operands((a,), empty)
    if done is not None:
        lo, hi, f = with_write_rule(*done, cw)
        return lo, hi, lo, hi, f
    kind, sign = classify(*a), sign_of(a[1])
    if kind == ZERO:
        lo, hi, f = with_write_rule(*infinity(1), ZE, cw)
        return lo, hi, a[0], a[1], f
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return 0, 0, 0, 0, abort[2]
    if kind == INFINITY:
        return *infinity(0), *a, flags
    _, m, e = finite_parts(*a)
    top = e + m.bit_length() - 1
    exp_lo, exp_hi, _ = load_int(top, 32)
    sig_lo, sig_hi = encode_extended(sign, m, -(m.bit_length() - 1))
    return exp_lo, exp_hi, sig_lo, sig_hi, flags


def remainder(a: Value, b: Value, cw: int, nearest: bool, empty: int = 0) -> Result:
    """fprem (``nearest`` false: truncated quotient) and fprem1 (IEEE remainder), one partial step.

    The flags carry C2 (the reduction is incomplete) or the quotient's low bits (C0 = q2,
    C3 = q1, C1 = q0).
    """
    done, flags = screen_operands((a, b), empty)
    if done is not None:
        lo, hi, f = with_write_rule(*done, cw)
        return lo, hi, f | KEEP_CODES
    ka, kb = classify(*a), classify(*b)
    if ka == INFINITY or kb == ZERO:
        lo, hi, f = with_write_rule(*invalid(), cw)
        return lo, hi, f | KEEP_CODES
    abort = denormal_abort(flags, cw)
    if abort is not None:
        return abort[0], abort[1], abort[2] | KEEP_CODES
    if ka == ZERO:
        return with_write_rule(*a, flags, cw)
    sa, ma, ea = finite_parts(*a)
    if kb == INFINITY:  # the dividend itself, normalized (a pseudo-denormal gets exponent 1)
        lo, hi, more = _exact_result(sa, ma, ea, cw)
        return with_write_rule(lo, hi, flags | more, cw)
    _, mb, eb = finite_parts(*b)
    diff = (ea + ma.bit_length()) - (eb + mb.bit_length())
    if diff >= 64:  # partial: reduce by a multiple of b * 2**(diff - PARTIAL_BITS)
        shift = diff - partial_bits(diff)
        x, y = ma << max(0, ea - eb - shift), mb << max(0, eb + shift - ea)
        q = x // y
        r_m, r_e = x - q * y, min(ea, eb + shift)
        lo, hi, more = _exact_result(sa, r_m, r_e, cw)
        return with_write_rule(lo, hi, flags | more | C2, cw)
    e = min(ea, eb)
    x, y = ma << (ea - e), mb << (eb - e)
    q, r = divmod(x, y)
    if nearest and (2 * r > y or (2 * r == y and q & 1)):
        q, r = q + 1, r - y
    sign = sa if r >= 0 else 1 - sa
    bits = (C0 if q & 4 else 0) | (C3 if q & 2 else 0) | (C1 if q & 1 else 0)
    lo, hi, more = _exact_result(sign, abs(r), e, cw) if r else (*zero(sa), 0)
    return with_write_rule(lo, hi, flags | more | bits, cw)


def _exact_result(sign: int, m: int, e: int, cw: int) -> Result:
    """An exactly representable result (a remainder): only underflow rules can apply."""
    if m == 0:
        return *zero(sign), 0
    return round_to_extended(sign, m, e, False, cw, EXTENDED)


def partial_bits(diff: int) -> int:
    """How many exponent bits one incomplete fprem step removes (the SDM allows 32..63)."""
    return 32 + (diff - 64) % 32
