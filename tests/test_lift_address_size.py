"""The address-size (0x67) and operand-size (0x66) forms of the implicit-operand instructions.

``enter`` at every nesting level (0-31) in both operand sizes, ``loop``/``loope``/
``loopne``/``jrcxz`` with rcx and, under 0x67, ecx as the counter, and the string
instructions with esi/edi/ecx: each against Unicorn on random states, none falling
back. Where Unicorn differs from the CPU (a 16-bit ``enter`` writes only BP; Unicorn
writes all of rbp) the states keep the two equal and the CPU's rule is checked on
our engines alone, against the values a native run printed (``CPU_ENTERW``).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import DATA_ADDR, ENGINES, EXAMPLES, compare, states, values64

LIFT_ENGINES = ["interp", "wasm"]
FEW = max(1, EXAMPLES // 5)  # per immediate form: 32 levels x 2 sizes x 2 engines
HIGH = 0xABCD_0000_0000_0000  # upper bits a 32-bit address (or a BP write) must drop (or keep)


def _stack_data() -> bytes:
    return b"".join(struct.pack("<Q", 0x1111_0000_0000_0000 + i) for i in range(0x2000 // 8))


@pytest.mark.parametrize("engine", LIFT_ENGINES)
@pytest.mark.parametrize("prefix", ["", "66"])
@pytest.mark.parametrize("level", range(32))
@settings(max_examples=FEW, deadline=None)
@given(data=st.data())
def test_enter_every_level(engine: str, prefix: str, level: int, data: st.DataObject) -> None:
    """enter imm16, level: the copied frame pointers, the new frame and rsp (rbp and rsp in the data area)."""
    size = data.draw(st.sampled_from([0, 8, 0x18, 0x1000 - 8]))
    code = bytes.fromhex(prefix) + bytes([0xC8, size & 0xFF, size >> 8, level])
    regs = data.draw(states())
    regs["rsp"] = DATA_ADDR + 0x1800 - 8 * data.draw(st.integers(0, 16))
    regs["rbp"] = DATA_ADDR + 0x1900 + 2 * data.draw(st.integers(0, 64))
    compare(code, regs, _stack_data(), engine=engine)


def test_enter_levels_above_31_wrap() -> None:
    """The level operand is taken modulo 32: level 33 copies as level 1 does."""
    regs = {"rsp": DATA_ADDR + 0x1800, "rbp": DATA_ADDR + 0x1900}
    for engine in LIFT_ENGINES:
        compare(bytes.fromhex("c8080021"), regs, _stack_data(), engine=engine)


#: 66 c8 08 00 00 with rsp = 0x4a6470, rbp = 0x123456789abcdef0 on the CPU (AMD EPYC, a static C probe):
#: rsp 0x4a6466, rbp 0x123456789abc646e (only BP written), pushed word 0xdef0.
CPU_ENTERW = {"rsp_in": 0x21470, "rbp_in": 0x1234_5678_9ABC_DEF0, "rsp": 0x21466, "rbp": 0x1234_5678_9ABC_146E}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_enter16_writes_only_bp(engine: str) -> None:
    code = bytes.fromhex("66c8080000")
    out = ENGINES[engine](code, {"rsp": CPU_ENTERW["rsp_in"], "rbp": CPU_ENTERW["rbp_in"]})
    assert out.stop == "end"
    assert (out.regs["rsp"], out.regs["rbp"]) == (CPU_ENTERW["rsp"], CPU_ENTERW["rbp"])
    frame = CPU_ENTERW["rsp_in"] - 2 - DATA_ADDR
    assert int.from_bytes(out.memory[DATA_ADDR][frame:frame + 2], "little") == CPU_ENTERW["rbp_in"] & 0xFFFF


# -- loop / jrcxz -----------------------------------------------------------------------------
LOOPS = ["e2", "e1", "e0", "e3"]  # loop, loope, loopne, jrcxz


@st.composite
def counters(draw: st.DrawFn) -> int:
    return draw(st.one_of(values64(), st.sampled_from([0x1_0000_0000, 0x1_0000_0001, 0x1_0000_0002, 1, 2]),
                          st.integers(0, 3).map(lambda low: HIGH | low)))


@pytest.mark.parametrize("engine", LIFT_ENGINES)
@pytest.mark.parametrize("prefix", ["", "67"])
@pytest.mark.parametrize("opcode", LOOPS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_loop_counter(engine: str, prefix: str, opcode: str, data: st.DataObject) -> None:
    """Branch over a marker: the counter (rcx or ecx), its write-back and the branch decision."""
    code = bytes.fromhex(prefix + opcode + "06") + bytes.fromhex("41b801000000") + bytes.fromhex("90")  # mov r8d, 1
    regs = data.draw(states())
    regs["rcx"] = data.draw(counters())
    regs["r8"] = 0
    compare(code, regs, engine=engine)


# -- string instructions with 32-bit addresses ------------------------------------------------
STRINGS = [
    *(f"{rep}{op}{w}" for rep in ("", "f3") for op in ("a4", "aa", "ac") for w in ("",)),
    *(f"{rep}{op}" for rep in ("", "f3", "f2") for op in ("a6", "ae")),
    "f3a5", "f348a5", "f3ab", "f348ad", "f2a7", "f348a7", "f3af",
]


@pytest.mark.parametrize("engine", LIFT_ENGINES)
@pytest.mark.parametrize("opcodes", STRINGS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_string_with_32bit_addresses(engine: str, opcodes: str, data: st.DataObject) -> None:
    """67 + movs/stos/lods/cmps/scas: esi/edi/ecx addresses and counts, upper halves cleared by the updates."""
    code = bytes.fromhex("67" + opcodes)
    regs = data.draw(states())
    for name in ("rsi", "rdi"):
        regs[name] = data.draw(st.sampled_from([0, HIGH, 0xFFFF_FFFF_0000_0000])) | (
            DATA_ADDR + 0x800 + data.draw(st.integers(0, 0x100)))
    regs["rcx"] = data.draw(st.sampled_from([0, HIGH, 0x1_0000_0000])) | data.draw(st.integers(0, 20))
    seed = data.draw(st.integers(0, 2**32 - 1))
    payload = bytes((seed >> (i % 29)) & 3 for i in range(0x1000))  # small values: repe/repne run on and stop
    compare(code, regs, payload, engine=engine)


def test_32bit_forms_are_lifted() -> None:
    """None of these go to the fallback any more."""
    from tcg2wasm.frontend.x86_64.translate import translate_block
    for hexcode in ("67e2fe", "67e1fe", "67e0fe", "67e3fe", "67f3a4", "67f3a6", "67aa", "66c8080005"):
        code = bytes.fromhex(hexcode)
        end = frozenset({0x1000 + len(code)})
        tb = translate_block(lambda addr, n, c=code: c[addr - 0x1000:][:n], 0x1000, stop_pcs=end)
        assert tb.fallback_insns == 0, hexcode
