"""Lifted x87 code against the host CPU: random instruction sequences on special values, every mode.

Each snippet starts with ``fninit; fldcw`` (a random control word: every precision, rounding
mode and exception mask), runs random x87 instructions (loads of special values in every
format, arithmetic, compares, stack and status instructions, stores) and ends with
``fnstenv; fldenv; fxsave``, so the data area holds the whole x87 state as the CPU writes it.
The native run (tests/native/snippet_runner.c) and our engines must agree on the registers,
rflags and the data area; the 80-bit slots fxsave writes for *empty* registers are masked
(their contents are whatever an earlier run left there). Unicorn is not consulted: its x87
status and tag words, flags and NaN rules differ from the CPU (docs/x87.md).
"""

from __future__ import annotations

import random
import struct

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, ENGINES, EXAMPLES, Outcome
from native import run_native_many

FXSAVE_AT = 0x1D00
ENV_AT = 0x1F00
CW_AT = 0x1FF0
M32_AT, M64_AT, M80_AT, INT_AT, BCD_AT, OUT_AT = 0x000, 0x100, 0x200, 0x400, 0x500, 0x800
N_SLOTS = 16
CONTROL_WORDS = [0x037F, 0x077F, 0x0B7F, 0x0F7F, 0x007F, 0x027F, 0x047F, 0x0E7F, 0x037E, 0x037B, 0x0377,
                 0x036F, 0x035F, 0x033F, 0x0360, 0x1F7F]

SPECIAL80 = [(0, 0), (0, 0x8000), (1 << 63, 0x3FFF), (1 << 63, 0xBFFF), (1 << 63, 0x7FFF), (1 << 63, 0xFFFF),
             (0xC000_0000_0000_0000, 0x7FFF), (0xA000_0000_0000_0001, 0x7FFF), (0xC000_0000_0000_0000, 0xFFFF),
             (1, 0), (0x8000_0000_0000_0001, 0), (0x4000_0000_0000_0000, 0x3FFF), (2**64 - 1, 0x7FFE),
             (1 << 63, 1), (2**64 - 1, 0x403E), (1 << 63, 0x403E), (0x8000_0000_0000_0800, 0x3FFF),
             (0xFFFF_FFFF_FFFF_F800, 0x3FFE), (0x8000_0000_0000_0000, 0x3C00), (0x8000_0000_0000_0400, 0x43FE)]


def _random80(rng: random.Random) -> tuple[int, int]:
    r = rng.random()
    if r < 0.3:
        return rng.choice(SPECIAL80)
    sign = rng.getrandbits(1) << 15
    if r < 0.4:
        return rng.getrandbits(64), sign | rng.choice([0, 1, 0x7FFF, 0x7FFE])
    if r < 0.55:
        return (1 << 63) | rng.getrandbits(63), sign | rng.choice([0x3F80, 0x3C01, 0x43FE, 0x407E, 0x3FFE, 0x403E])
    return (1 << 63) | (rng.getrandbits(63) & ~((1 << rng.randint(0, 60)) - 1)), sign | rng.randint(0x3FF0, 0x4040)


def _data(seed: int) -> bytes:
    rng = random.Random(seed)
    buf = bytearray(0x2000)
    for k in range(N_SLOTS):
        lo, hi = _random80(rng)
        buf[M80_AT + 16 * k:M80_AT + 16 * k + 10] = lo.to_bytes(8, "little") + hi.to_bytes(2, "little")
        plain64 = struct.unpack("<Q", struct.pack("<d", rng.uniform(-1e6, 1e6)))[0]
        f64 = rng.choice([rng.getrandbits(64), 0x7FF0_0000_0000_0001, 0x7FF8_0000_0000_0000, 1, 0x8000_0000_0000_0000,
                          0x3FF0_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF, plain64])
        buf[M64_AT + 8 * k:M64_AT + 8 * k + 8] = f64.to_bytes(8, "little")
        f32 = rng.choice([rng.getrandbits(32), 0x7F80_0001, 0x7FC0_0000, 1, 0x8000_0000, 0x3F80_0000,
                          struct.unpack("<I", struct.pack("<f", rng.uniform(-1e4, 1e4)))[0]])
        buf[M32_AT + 4 * k:M32_AT + 4 * k + 4] = f32.to_bytes(4, "little")
        buf[INT_AT + 8 * k:INT_AT + 8 * k + 8] = rng.choice([rng.getrandbits(64), rng.getrandbits(16), 2**63, 0,
                                                            2**64 - 1, 12345]).to_bytes(8, "little")
        digits = sum(rng.randint(0, 9) << (4 * i) for i in range(18))
        buf[BCD_AT + 16 * k:BCD_AT + 16 * k + 10] = digits.to_bytes(9, "little") + bytes([rng.choice([0, 0x80])])
    return bytes(buf)


FCMOVS = ["fcmovb", "fcmove", "fcmovbe", "fcmovu", "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"]


def _slot(rng: random.Random) -> int:
    return rng.randrange(N_SLOTS)


def _instruction(rng: random.Random) -> str:
    i, k = rng.randint(0, 7), _slot(rng)
    arith = rng.choice(["fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr"])
    choices = [
        lambda: f"fld tbyte ptr [rdi+{M80_AT + 16 * k}]",
        lambda: f"fld qword ptr [rdi+{M64_AT + 8 * k}]",
        lambda: f"fld dword ptr [rdi+{M32_AT + 4 * k}]",
        lambda: f"fild {rng.choice(['word', 'dword', 'qword'])} ptr [rdi+{INT_AT + 8 * k}]",
        lambda: f"fbld tbyte ptr [rdi+{BCD_AT + 16 * k}]",
        lambda: f"fld st({i})",
        lambda: rng.choice(["fld1", "fldz", "fldpi", "fldl2e", "fldl2t", "fldlg2", "fldln2"]),
        lambda: f"{arith} st, st({i})",
        lambda: f"{arith} st({i}), st",
        lambda: f"{arith}p st({i}), st",
        lambda: f"{arith} {rng.choice(['dword', 'qword'])} ptr [rdi+{M64_AT + 8 * k}]",
        lambda: f"fi{arith[1:]} {rng.choice(['word', 'dword'])} ptr [rdi+{INT_AT + 8 * k}]",
        lambda: f"fxch st({i})",
        lambda: rng.choice(["fchs", "fabs", "fsqrt", "frndint", "fscale", "fxtract", "fprem", "fprem1", "ftst",
                            "fxam", "fincstp", "fdecstp", "fnop", "fnclex"]),
        lambda: f"{rng.choice(['fcom', 'fcomp', 'fucom', 'fucomp'])} st({i})",
        lambda: rng.choice(["fcompp", "fucompp"]),
        lambda: f"{rng.choice(['fcom', 'fcomp'])} {rng.choice(['dword', 'qword'])} ptr [rdi+{M64_AT + 8 * k}]",
        lambda: f"{rng.choice(['fcomi', 'fcomip', 'fucomi', 'fucomip'])} st, st({i})",
        lambda: f"{rng.choice(FCMOVS)} st, st({i})",
        lambda: f"{rng.choice(['fst', 'fstp'])} {rng.choice(['dword', 'qword'])} ptr [rdi+{OUT_AT + 8 * k}]",
        lambda: f"fstp tbyte ptr [rdi+{OUT_AT + 0x100 + 16 * k}]",
        lambda: f"{rng.choice(['fist', 'fistp'])} {rng.choice(['word', 'dword'])} ptr [rdi+{OUT_AT + 8 * k}]",
        lambda: f"{rng.choice(['fistp', 'fisttp'])} {rng.choice(['word', 'dword', 'qword'])} ptr [rdi+{OUT_AT + k}]",
        lambda: f"fbstp tbyte ptr [rdi+{OUT_AT + 0x200 + 16 * k}]",
        lambda: f"{rng.choice(['fst', 'fstp'])} st({i})",
        lambda: f"ffree st({i})",
        lambda: "fnstsw ax",
        lambda: f"fnstsw word ptr [rdi+{OUT_AT + 0x300 + 2 * k}]",
    ]
    return rng.choice(choices)()


def snippet(seed: int, length: int) -> str:
    rng = random.Random(seed)
    body = [f"fld tbyte ptr [rdi+{M80_AT + 16 * _slot(rng)}]" for _ in range(rng.randint(0, 4))]
    body += [_instruction(rng) for _ in range(length)]
    return "\n".join(["fninit", f"fldcw word ptr [rdi+{CW_AT}]", *body,
                      f"fnstenv [rdi+{ENV_AT}]", f"fldenv [rdi+{ENV_AT}]", f"fxsave [rdi+{FXSAVE_AT}]"])


def _masked(out: Outcome) -> Outcome:
    """Blank the fxsave slots of empty registers (TOP and the abridged tag from the image itself)."""
    mem = bytearray(out.memory[DATA_ADDR])
    fsw = int.from_bytes(mem[FXSAVE_AT + 2:FXSAVE_AT + 4], "little")
    tags = mem[FXSAVE_AT + 4]
    top = (fsw >> 11) & 7
    for i in range(8):
        if not tags >> ((top + i) & 7) & 1:
            mem[FXSAVE_AT + 32 + 16 * i:FXSAVE_AT + 48 + 16 * i] = bytes(16)
    return Outcome(out.regs, {DATA_ADDR: bytes(mem)}, out.stop, out.stop_pc, out.extra)


def _compare(native: Outcome, got: Outcome, src: str) -> None:
    if native.stop.startswith("signal"):
        assert native.stop == "signal 8" and got.stop == "X87_FPE", f"{native.stop} vs {got.stop}\n{src}"
        return
    assert got.stop == "end", f"stop {got.stop} at {got.stop_pc:#x}\n{src}"
    regs = {k: (hex(got.regs[k]), hex(v)) for k, v in native.regs.items() if k in got.regs and got.regs[k] != v}
    assert not regs, f"registers (got, cpu): {regs}\n{src}"
    a, b = _masked(got).memory[DATA_ADDR], _masked(native).memory[DATA_ADDR]
    if a != b:
        first = next(i for i in range(len(a)) if a[i] != b[i])
        raise AssertionError(f"data differs at +{first:#x}: got {a[first & ~15:(first & ~15) + 16].hex()} "
                             f"cpu {b[first & ~15:(first & ~15) + 16].hex()}\n{src}")


def _run_batch(seeds: list[int], length: int, engine: str) -> None:
    cases = []
    for seed in seeds:
        src = snippet(seed, length)
        data = bytearray(_data(seed))
        data[CW_AT:CW_AT + 2] = random.Random(seed).choice(CONTROL_WORDS).to_bytes(2, "little")
        regs = {"rdi": DATA_ADDR, "rsp": 0x31000, "rax": 0, "rflags": 0x202, "mxcsr": 0x1F80}
        cases.append((assemble(src), regs, bytes(data), src))
    natives = run_native_many([(c, r, d) for c, r, d, _ in cases])
    for (code, regs, data, src), native in zip(cases, natives, strict=True):
        got = ENGINES[engine](code, regs, data)
        assert got.extra.get("fallback_insns", 0) == 0, f"fallback in\n{src}"
        _compare(native, got, src)


@pytest.mark.parametrize("engine", ["interp", "wasm"])
@settings(max_examples=max(2, EXAMPLES // 4), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_x87_sequences(engine: str, seed: int) -> None:
    _run_batch([seed * 8 + k for k in range(8)], 12, engine)
