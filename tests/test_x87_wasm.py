"""The x87 ops' wasm fast paths (tcg2wasm/backend/x87_wasm.py) against their semantics, bit for bit.

Each op of ``x87_wasm.FAST`` runs in a one-op region on many operands -- mostly inside the fast
domain (normal values, every precision and rounding control, cancellations, carries, the
exponent edges) and some outside it (where the helper hands over to env.x87) -- and its
outputs must equal the IR interpreter's (the op table's semantics, ``x87_float``).
"""

from __future__ import annotations

import random

import pytest
from backend_harness import Harness
from lift_harness import EXAMPLES

from tcg2wasm.backend import compile_region
from tcg2wasm.backend.x87_wasm import FAST
from tcg2wasm.cfg import Region
from tcg2wasm.ir import GLOBALS, GuestInsn, IRBuilder, TranslationBlock
from tcg2wasm.ir.core import N_GLOBALS
from tcg2wasm.ir.ops import OPS
from tcg2wasm.ir.x87_float import BIAS, J_BIT

N = max(100, EXAMPLES * 5)  # operands per op (1000 at the full 200 examples)
INPUTS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi")
CONTROL_WORDS = [0x037F, 0x077F, 0x0B7F, 0x0F7F, 0x007F, 0x027F, 0x047F, 0x0E7F, 0x0A7F, 0x0C7F, 0x017F]


@pytest.fixture
def harness() -> Harness:
    return Harness([(0x10000, "rw", True)])


def _tb(name: str, kind: int) -> TranslationBlock:
    d = OPS[name]
    b = IRBuilder()
    b.insn_start(0x1000)
    outs = [GLOBALS[n] for n in ("r8", "r9", "r10", "r11", "r12")[: d.n_out]]
    consts = [kind] if d.n_const else []
    b.emit(name, *outs, *(GLOBALS[n] for n in INPUTS[: d.n_in]), *consts)
    b.goto_tb(0x2000)
    return b.finish(0x1000, 4, [GuestInsn(0x1000, b"\x90", "x87 op")])


def _significand(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.2:
        return J_BIT | (rng.getrandbits(63) & ~((1 << rng.randint(0, 62)) - 1))  # trailing zeros
    if r < 0.3:
        return rng.choice([J_BIT, 2**64 - 1, J_BIT | 1, 2**64 - 2, J_BIT | (1 << 10), J_BIT | (1 << 39)])
    if r < 0.35:
        return rng.getrandbits(64)  # J maybe clear: unnormals (slow path)
    return J_BIT | rng.getrandbits(63)


def _exponent(rng: random.Random, near: int | None = None) -> int:
    r = rng.random()
    if near is not None and r < 0.5:
        return max(0, min(0x7FFF, near + rng.randint(-3, 3) if r < 0.3 else near + rng.randint(-70, 70)))
    if r < 0.7:
        return rng.randint(BIAS - 80, BIAS + 80)
    if r < 0.8:
        return rng.choice([1, 2, 65, 66, 67, 0x7FFC, 0x7FFD, 0x7FFE, BIAS - 1022, BIAS + 1023, BIAS - 126, BIAS + 127])
    if r < 0.85:
        return rng.choice([0, 0x7FFF])  # zeros, denormals, infinities, NaNs: the slow path
    return rng.randint(1, 0x7FFE)


def _operands(rng: random.Random, name: str, kind: int) -> list[int]:
    a_lo, b_lo = _significand(rng), _significand(rng)
    a_exp = _exponent(rng)
    b_exp = _exponent(rng, a_exp if rng.random() < 0.6 else None)
    if name == "x87_arith" and kind == 2:  # mul: exponents that keep the product in range
        b_exp = max(0, min(0x7FFF, BIAS + rng.randint(-100, 100) if rng.random() < 0.8 else b_exp))
    a_hi = a_exp | (rng.getrandbits(1) << 15)
    b_hi = b_exp | (rng.getrandbits(1) << 15)
    if rng.random() < 0.1:
        b_lo, b_hi = a_lo, a_hi ^ rng.choice([0, 0x8000])  # equal or opposite
    if rng.random() < 0.15:  # a true zero (either sign) as one operand or both
        which = rng.choice([0, 1, 2])
        if which != 1:
            a_lo, a_hi = 0, a_hi & 0x8000
        if which != 0:
            b_lo, b_hi = 0, b_hi & 0x8000
    cw = rng.choice(CONTROL_WORDS)
    empty = 0 if rng.random() < 0.95 else rng.choice([1, 2, 0x100])
    if name == "x87_arith":
        return [a_lo, a_hi, b_lo, b_hi, cw, empty]
    if name == "x87_compare":
        return [a_lo, a_hi, b_lo, b_hi, empty]
    if name == "x87_store":
        if kind in (2, 3, 4, 6, 7, 8) and rng.random() < 0.8:  # integers: |x| in range
            a_hi = (a_hi & 0x8000) | rng.randint(BIAS - 2, BIAS + {2: 16, 6: 16, 3: 32, 7: 32}.get(kind, 64))
        return [a_lo, a_hi, cw, empty]
    raw = rng.getrandbits(64) if rng.random() < 0.7 else rng.choice([0, 1, 2**63, 2**64 - 1, 0x7FF0 << 48, 2**31])
    return [raw, 0, cw]


@pytest.mark.parametrize("name, kind", sorted(FAST), ids=lambda v: str(v))
def test_fast_path_matches_the_reference(harness: Harness, name: str, kind: int) -> None:
    region = Region(0x1000, {0x1000: _tb(name, kind)})
    compiled = compile_region(region)
    rng = random.Random(f"{name}-{kind}")
    for _ in range(N):
        values = [0] * N_GLOBALS
        for global_name, value in zip(INPUTS, _operands(rng, name, kind), strict=False):
            values[list(GLOBALS).index(global_name)] = value
        got = harness.run(compiled, values)
        want = harness.reference(region, values)
        assert got == want, f"{name} {kind}: {[hex(v) for v in _operands(random.Random(0), name, kind)]}"
