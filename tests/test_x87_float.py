"""The x87 reference (tcg2wasm/ir/x87_float.py, x87_trans.py) against the host CPU, one operation at a time.

tests/native/x87oracle.c runs each operation natively (st0 = a, st1 = b after fninit and fldcw)
and prints st0, st1 and the status word. Arithmetic, conversions, compares and the other exact
operations must agree on every bit for random operands of every class (zeros, denormals,
pseudo-denormals, unnormals, infinities, NaNs, pseudo-NaNs) under every control word. The
transcendentals are correctly rounded here and the CPU's are not always: their test measures
how often the two differ (and that they differ by one unit in the last place at most).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from lift_harness import EXAMPLES
from native import oracle

from tcg2wasm.ir import x87_float as xf
from tcg2wasm.ir import x87_trans as xt
from tcg2wasm.ir.x87_kinds import Arith, Unary

N = max(200, EXAMPLES * 25)  # operations per test (one native process each)
CONTROL_WORDS = [0x37F, 0x77F, 0xB7F, 0xF7F, 0x07F, 0x27F, 0x17F, 0x360, 0x340, 0x372, 0x37E, 0x37B, 0x377, 0x36F,
                 0x35F]
Value = tuple[int, int]


def random80(rng: random.Random) -> Value:
    r = rng.random()
    sign = rng.getrandbits(1) << 15
    if r < 0.05:
        return rng.choice([0, xf.J_BIT]), sign | rng.choice([0, 0x7FFF])
    if r < 0.15:
        return rng.getrandbits(64) & ~xf.J_BIT if rng.random() < 0.5 else rng.getrandbits(64), sign
    if r < 0.22:
        return xf.J_BIT | rng.getrandbits(63), sign | 0x7FFF
    if r < 0.25:
        return rng.getrandbits(64), sign | rng.getrandbits(15)
    if r < 0.35:
        exp = rng.choice([1, 2, 0x7FFE, 0x7FFD, rng.randint(1, 70), 0x7FFE - rng.randint(0, 70)])
        return xf.J_BIT | rng.getrandbits(63), sign | exp
    if r < 0.5:
        return xf.J_BIT | (rng.getrandbits(63) & ~((1 << rng.randint(0, 62)) - 1)), sign | rng.randint(0x3FF0, 0x400F)
    return xf.J_BIT | rng.getrandbits(63), sign | rng.randint(0x3F00, 0x40FF)


def hex80(v: Value) -> str:
    return f"{v[1]:04x}{v[0]:016x}"


def status(flags: int, cw: int, top: int = 6) -> str:
    sw = (flags & 0x7FFF & ~xf.ES) | (top << 11)
    if flags & ~cw & 0x3F:
        sw |= xf.ES | xf.BUSY
    return f"{sw:04x}"


Reference = Callable[[Value, Value, int], tuple[str, ...]]


def _arith(fn: Callable[[Value, Value, int], xf.Result]) -> Reference:
    def ref(a: Value, b: Value, cw: int) -> tuple[str, ...]:
        lo, hi, flags = fn(a, b, cw)
        if flags & xf.NO_WRITE:
            lo, hi = a
        return hex80((lo, hi)), status(flags, cw)

    return ref


def _store(fn: Callable[[Value, int], tuple[int, int]], pops: bool) -> Reference:
    def ref(a: Value, b: Value, cw: int) -> tuple[str, ...]:
        bits, flags = fn(a, cw)
        written = not flags & xf.NO_WRITE
        return status(flags, cw, 7 if pops and written else 6), f"{bits:x}" if written else "0"

    return ref


def _compare(quiet: bool, to_eflags: bool = False) -> Reference:
    def ref(a: Value, b: Value, cw: int) -> tuple[str, ...]:
        flags = xf.compare(a, b, quiet)
        if not to_eflags:
            return (status(flags, cw),)
        eflags = (1 if flags & xf.C0 else 0) | (4 if flags & xf.C2 else 0) | (0x40 if flags & xf.C3 else 0)
        return status(flags & ~(xf.C0 | xf.C2 | xf.C3), cw), f"{eflags:x}"

    return ref


EXACT: dict[str, Reference] = {
    "add": _arith(lambda a, b, cw: xf.add(a, b, cw)),
    "sub": _arith(lambda a, b, cw: xf.add(a, b, cw, negate_b=True)),
    "subr": _arith(lambda a, b, cw: xf.add(b, a, cw, negate_b=True)),
    "mul": _arith(lambda a, b, cw: xf.mul(a, b, cw)),
    "div": _arith(lambda a, b, cw: xf.div(a, b, cw)),
    "divr": _arith(lambda a, b, cw: xf.div(b, a, cw)),
    "sqrt": _arith(lambda a, b, cw: xf.sqrt(a, cw)),
    "rndint": _arith(lambda a, b, cw: xf.round_int(a, cw)),
    "scale": _arith(lambda a, b, cw: xf.scale(a, b, cw)),
    "prem": _arith(lambda a, b, cw: xf.remainder(a, b, cw, False)),
    "prem1": _arith(lambda a, b, cw: xf.remainder(a, b, cw, True)),
    "st32": _store(lambda a, cw: xf.store_binary(a, cw, xf.BINARY32), False),
    "st64": _store(lambda a, cw: xf.store_binary(a, cw, xf.BINARY64), False),
    "ist16": _store(lambda a, cw: xf.store_int(a, cw, 16), False),
    "ist32": _store(lambda a, cw: xf.store_int(a, cw, 32), False),
    "ist64": _store(lambda a, cw: xf.store_int(a, cw, 64), True),
    "istt16": _store(lambda a, cw: xf.store_int(a, cw, 16, True), True),
    "istt32": _store(lambda a, cw: xf.store_int(a, cw, 32, True), True),
    "istt64": _store(lambda a, cw: xf.store_int(a, cw, 64, True), True),
    "com": _compare(False),
    "ucom": _compare(True),
    "comi": _compare(False, True),
    "ucomi": _compare(True, True),
    "tst": lambda a, b, cw: (status(xf.compare(a, (0, 0), False), cw),),
    "xam": lambda a, b, cw: (status(xf.examine(a, 0), cw),),
}
#: Which fields of the oracle's answer each kind of reference gives (st0, st1, status, extra...).
_FIELDS = {"arith": (0, 2), "store": (2, -1), "compare": (2,), "eflags": (2, 3)}


def _fields(op: str) -> tuple[int, ...]:
    if op.startswith(("st", "ist")):
        return _FIELDS["store"]
    if op in ("comi", "ucomi"):
        return _FIELDS["eflags"]
    if op in ("com", "ucom", "tst", "xam"):
        return _FIELDS["compare"]
    return _FIELDS["arith"]


def _operands(rng: random.Random, op: str) -> tuple[Value, Value]:
    a, b = random80(rng), random80(rng)
    if op in ("prem", "prem1", "scale") and rng.random() < 0.6:  # exponents close enough to finish
        b = (b[0], (b[1] & 0x8000) | max(1, min(0x7FFE, (a[1] & 0x7FFF) - rng.randint(-5, 100))))
    if op.startswith("ist") and rng.random() < 0.7:
        a = (a[0], (a[1] & 0x8000) | rng.randint(0x3FF0, 0x403F))
    if op in ("com", "ucom", "comi", "ucomi") and rng.random() < 0.3:
        b = a
    return a, b


@pytest.mark.parametrize("op", sorted(EXACT))
def test_exact_operations_match_the_cpu(op: str) -> None:
    rng = random.Random(f"x87-{op}")
    cases = [(rng.choice(CONTROL_WORDS), *_operands(rng, op)) for _ in range(N)]
    answers = oracle().ask([f"{op} {cw:x} {hex80(a)} {hex80(b)}\n" for cw, a, b in cases])
    bad = []
    for (cw, a, b), answer in zip(cases, answers, strict=True):
        fields = answer.split()
        want = tuple(fields[i] for i in _fields(op))
        got = EXACT[op](a, b, cw)
        if got != want:
            bad.append(f"{op} cw={cw:#x} a={hex80(a)} b={hex80(b)}: cpu {want}, reference {got}")
    assert not bad, f"{len(bad)} of {N} differ:\n" + "\n".join(bad[:10])


@pytest.mark.parametrize("name", ["pi", "l2e", "l2t", "lg2", "ln2"])
def test_constants_match_the_cpu(name: str) -> None:
    words = [(pc << 8) | (rc << 10) | 0x7F for rc in range(4) for pc in (0, 2, 3)]
    answers = oracle().ask([f"ld{name} {cw:x} 3fff8000000000000000 3fff8000000000000000\n" for cw in words])
    for cw, answer in zip(words, answers, strict=True):
        lo, hi, flags = xf.load_constant(name, cw)
        assert (hex80((lo, hi)), status(flags, cw, 5)) == (answer.split()[0], answer.split()[2]), hex(cw)


# -- transcendentals: correctly rounded here; how often the CPU is not --------------------------------
def _in_range(rng: random.Random, op: str) -> tuple[Value, Value]:
    sign_a, sign_b = rng.getrandbits(1) << 15, rng.getrandbits(1) << 15
    a = (xf.J_BIT | rng.getrandbits(63), sign_a | rng.randint(0x3FE0, 0x3FFE))
    b = (xf.J_BIT | rng.getrandbits(63), sign_b | rng.randint(0x3FF0, 0x4005))
    if op == "yl2x":
        a = (a[0], a[1] & 0x7FFF)
    if op == "yl2xp1":
        a = (a[0], sign_a | rng.randint(0x3FE0, 0x3FFC))
    if op in ("sin", "cos") and rng.random() < 0.5:
        a = (a[0], sign_a | rng.randint(0x3FFF, 0x4030))
    return a, b


TRANSCENDENTAL: dict[str, Callable[[Value, Value, int], xf.Result]] = {
    "f2xm1": lambda a, b, cw: xt.unary(Unary.F2XM1, a, cw, 0),
    "sin": lambda a, b, cw: xt.unary(Unary.SIN, a, cw, 0),
    "cos": lambda a, b, cw: xt.unary(Unary.COS, a, cw, 0),
    "yl2x": lambda a, b, cw: xt.binary(Arith.YL2X, a, b, cw, 0),
    "yl2xp1": lambda a, b, cw: xt.binary(Arith.YL2XP1, a, b, cw, 0),
    "patan": lambda a, b, cw: xt.binary(Arith.PATAN, a, b, cw, 0),
}
#: Largest share of in-range operands on which the CPU's result is not the correctly rounded one
#: (measured on an AMD EPYC, 2000 operands each, these generators: f2xm1 3.35%, sin 0.30%, cos 0.40%,
#: yl2x 1.80%, yl2xp1 3.10%, patan 1.70%; every difference one unit in the last place).
MAX_NOT_CORRECTLY_ROUNDED = 0.05


@pytest.mark.parametrize("op", sorted(TRANSCENDENTAL))
def test_transcendentals_are_within_an_ulp_of_the_cpu(op: str) -> None:
    rng = random.Random(f"x87-{op}")
    n = 2000  # a rate: always the sample the bound was measured on
    cases = [(rng.choice([0x37F, 0x77F, 0xB7F, 0xF7F]), *_in_range(rng, op)) for _ in range(n)]
    answers = oracle().ask([f"{op} {cw:x} {hex80(a)} {hex80(b)}\n" for cw, a, b in cases])
    differ = 0
    for (cw, a, b), answer in zip(cases, answers, strict=True):
        lo, hi, flags = TRANSCENDENTAL[op](a, b, cw)
        want = answer.split()[0]
        if hex80((lo, hi)) != want:
            differ += 1
            assert want[:4] == f"{hi:04x}" and abs(int(want[4:], 16) - lo) <= 1, (op, hex80(a), hex80(b), want)
    assert differ <= MAX_NOT_CORRECTLY_ROUNDED * n, f"{op}: {differ} of {n} not correctly rounded by the CPU"
