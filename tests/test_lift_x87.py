"""The x87 control word: fnstcw and fldcw against Unicorn, and rounding by the control word fldcw set.

Unicorn keeps all 16 bits fldcw loads; the CPU reads bit 6 as 1 and bits 7 and
13-15 as 0 (``abi.fpcw_as_loaded``). The differential tests draw control words
on which the two agree; the reserved-bit rule is checked on the engines alone,
against values measured on a real CPU.
"""

from __future__ import annotations

import struct

import lift_harness
import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st
from lift_harness import CODE_ADDR, DATA_ADDR, ENGINES, EXAMPLES, STACK_TOP, Outcome, compare, run_unicorn, states

from tcg2wasm import Machine, RegisterError
from tcg2wasm.abi import FPCW_DEFAULT, fpcw_as_loaded

LIFT_ENGINES = ["interp", "wasm"]  # lift_harness runners: front end + IR interpreter; the whole pipeline
MACHINE_ENGINES = ["interp", "wasm"]  # Machine engines (with the fallback)
RC_NEAREST, RC_DOWN, RC_UP, RC_TRUNCATE = 0x037F, 0x077F, 0x0B7F, 0x0F7F

#: fldcw value -> what fnstcw stores afterwards, measured on an AMD EPYC (fldcw; fnstcw in a C program).
CPU_FPCW = {0x0000: 0x0040, 0x037F: 0x037F, 0xFFFF: 0x1F7F, 0x1234: 0x1274, 0xF0C0: 0x1040, 0x0C00: 0x0C40,
            0x0080: 0x0040, 0xE000: 0x0040, 0x1000: 0x1040}


def run_machine(code: bytes, regs: dict[str, int], data: bytes = b"", engine: str = "wasm") -> tuple[Outcome, int]:
    """``lift_harness.run_machine`` and the instructions that went to the fallback in this run.

    The harness reuses a Machine per snippet, so its counters add up over runs.
    """
    before = lift_harness.machine_for(code, engine).stats.fallback_insns
    out = lift_harness.run_machine(code, regs, data, engine)
    return out, out.extra["stats"].fallback_insns - before


def control_words() -> st.SearchStrategy[int]:
    """Control words on which Unicorn and the CPU agree (reserved bits as the CPU reads them)."""
    return st.one_of(st.integers(0, 0xFFFF).map(fpcw_as_loaded),
                     st.sampled_from([FPCW_DEFAULT, RC_DOWN, RC_UP, RC_TRUNCATE, 0x0040, 0x1F7F, 0x027F]))


def _at(addr: int, body: bytes) -> bytes:
    """Data area contents with ``body`` at guest address ``addr``."""
    return bytes(addr - DATA_ADDR) + body


@pytest.mark.parametrize("engine", LIFT_ENGINES)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_fnstcw_fldcw(engine: str, data: st.DataObject) -> None:
    """Store the initial word, load two words in turn and store each: memory, registers and flags match."""
    regs = data.draw(states(pointers={"rdi": DATA_ADDR}))
    regs["fpcw"] = data.draw(control_words())
    words = [data.draw(control_words()) for _ in range(2)]
    body = b"".join(w.to_bytes(2, "little") for w in words)
    code = assemble("fnstcw word ptr [rdi+0x200]\nfldcw [rdi]\nfnstcw word ptr [rsp-0x1a]\n"
                    "fldcw word ptr [rdi+2]\nfnstcw [rdi+0x204]")
    compare(code, regs, _at(regs["rdi"], body), engine=engine)


@pytest.mark.parametrize("engine", LIFT_ENGINES)
@pytest.mark.parametrize("src, regs", [
    ("fldcw [rax]", {"rax": 0x50000}),
    ("fnstcw [rax]", {"rax": 0x50000}),
    ("fnstcw [rax]", {"rax": CODE_ADDR}),
    ("mov rbx, 7\nfldcw [rax+0xffe]", {"rax": 0x21001}),  # the last byte of the data area and one past it
])
def test_faults_are_precise(engine: str, src: str, regs: dict[str, int]) -> None:
    compare(assemble(src), {"rsp": STACK_TOP, **regs}, engine=engine)


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("loaded, stored", sorted(CPU_FPCW.items()))
def test_reserved_bits_read_as_on_the_cpu(engine: str, loaded: int, stored: int) -> None:
    code = assemble("fldcw [rdi]\nfnstcw [rdi+2]")
    out = ENGINES[engine](code, {"rdi": DATA_ADDR}, loaded.to_bytes(2, "little"))
    assert out.stop == "end" and out.regs["fpcw"] == stored
    assert int.from_bytes(out.memory[DATA_ADDR][2:4], "little") == stored


def test_control_word_instructions_are_lifted() -> None:
    """glibc's conversions run `fnstcw [rsp+26h]` per number: it must not go to the fallback."""
    code = assemble("fnstcw word ptr [rsp+0x26]\nfldcw [rdi]\nfnstcw [rdi+2]")
    out, fallbacks = run_machine(code, {"rdi": DATA_ADDR, "rsp": STACK_TOP - 0x40}, RC_TRUNCATE.to_bytes(2, "little"))
    assert out.stop == "end" and fallbacks == 0


# -- x87 arithmetic rounds by the lifted control word (all lifted: tests/test_x87_native.py is the CPU check) --
def _compare_machine(code: bytes, regs: dict[str, int], data: bytes, engine: str) -> tuple[bytes, int]:
    """Run a snippet on a Machine and in Unicorn; return our data area and the fallback count."""
    want = run_unicorn(code, regs, data)
    got, fallbacks = run_machine(code, regs, data, engine)
    assert (got.stop, got.stop_pc) == (want.stop, want.stop_pc)
    assert got.regs == want.regs
    assert got.memory == want.memory
    return got.memory[DATA_ADDR], fallbacks


ROUNDED = {  # value -> fistp result under (nearest, down, up, toward zero)
    2.5: (2, 2, 3, 2), 3.5: (4, 3, 4, 3), -2.5: (-2, -3, -2, -2), 2.7: (3, 2, 3, 2), -3.5: (-4, -4, -3, -3),
}


@pytest.mark.parametrize("engine", MACHINE_ENGINES)
@pytest.mark.parametrize("mode", range(4))
def test_fistp_rounds_by_the_lifted_fldcw(engine: str, mode: int) -> None:
    """fldcw then fld/fistp: each value is rounded by the mode fldcw set, as in Unicorn; nothing falls back."""
    words = (RC_NEAREST, RC_DOWN, RC_UP, RC_TRUNCATE)
    loads = "\n".join(f"fld qword ptr [rdi+{16 + 8 * i}]\nfistp dword ptr [rdi+{64 + 4 * i}]" for i in range(5))
    code = assemble(f"fldcw [rdi]\n{loads}\nfnstcw [rdi+2]")
    data = words[mode].to_bytes(2, "little").ljust(16, b"\0") + b"".join(struct.pack("<d", v) for v in ROUNDED)
    for start in (FPCW_DEFAULT, RC_TRUNCATE):  # the mode before fldcw must not matter
        memory, fallbacks = _compare_machine(code, {"rdi": DATA_ADDR, "fpcw": start}, data, engine)
        results = struct.unpack("<5i", memory[64:84])
        assert results == tuple(r[mode] for r in ROUNDED.values())
        assert fallbacks == 0


@pytest.mark.parametrize("engine", MACHINE_ENGINES)
def test_control_word_reset_by_fninit(engine: str) -> None:
    """fninit resets the word fldcw set; the next fnstcw sees 0x037F."""
    code = assemble("fldcw [rdi]\nfnstcw [rdi+2]\nfninit\nfnstcw [rdi+4]")
    memory, fallbacks = _compare_machine(code, {"rdi": DATA_ADDR}, RC_TRUNCATE.to_bytes(2, "little"), engine)
    assert struct.unpack("<3H", memory[:6]) == (RC_TRUNCATE, RC_TRUNCATE, FPCW_DEFAULT) and fallbacks == 0


@pytest.mark.parametrize("engine", MACHINE_ENGINES)
def test_reserved_bits_loaded_by_fldenv_read_as_on_the_cpu(engine: str) -> None:
    """fldenv of a word with reserved bits: the engines keep them as the CPU does (Unicorn keeps all)."""
    code = assemble("fnstenv [rdi]\nmov word ptr [rdi], 0xffff\nfldenv [rdi]\nfnstcw [rdi+0x40]")
    out, fallbacks = run_machine(code, {"rdi": DATA_ADDR}, engine=engine)
    assert out.stop == "end" and out.regs["fpcw"] == CPU_FPCW[0xFFFF] and fallbacks == 0
    assert int.from_bytes(out.memory[DATA_ADDR][0x40:0x42], "little") == CPU_FPCW[0xFFFF]
    assert run_unicorn(code, {"rdi": DATA_ADDR}).regs["fpcw"] == 0xFFFF


def test_fstcw_is_wait_then_fnstcw() -> None:
    """iced-x86 decodes fstcw as two instructions, wait and fnstcw; both are lifted."""
    code = assemble("fstcw [rdi]")
    assert code[:1] == b"\x9b"
    out, fallbacks = run_machine(code, {"rdi": DATA_ADDR, "fpcw": RC_UP})
    assert out.stop == "end" and int.from_bytes(out.memory[DATA_ADDR][:2], "little") == RC_UP and fallbacks == 0


# -- Machine API -------------------------------------------------------------------------------------
def test_machine_fpcw_register() -> None:
    m = Machine()
    assert m.reg_read("fpcw") == FPCW_DEFAULT and m.regs(["fpcw"]) == {"fpcw": FPCW_DEFAULT}
    m.reg_write("fpcw", RC_TRUNCATE)
    assert m.reg_read("FPCW") == RC_TRUNCATE
    with pytest.raises(RegisterError, match="16 bits"):
        m.reg_write("fpcw", 0x1_0000)


def test_machine_x87_registers() -> None:
    """st0-st7 by stack position (80 bits), the status and tag words and the last-instruction pointer."""
    code = assemble("fld1\nfldpi\nfaddp\nfld1")
    m = Machine()
    m.mem_map(CODE_ADDR, 0x1000, "rx")
    m.mem_write(CODE_ADDR, code)
    assert m.run(CODE_ADDR, until=CODE_ADDR + len(code)).kind == "until"
    assert m.reg_read("st0") == 0x3FFF_8000_0000_0000_0000  # 1.0
    assert m.reg_read("st1") == 0x4001_8487_ED51_10B4_611A  # pi + 1
    assert (m.reg_read("fpsw"), m.reg_read("fptag")) == (0x3020, 0b11)  # TOP 6, PE
    assert m.reg_read("fpip") == CODE_ADDR + len(code) - 2
    m.reg_write("st1", 0x4000_C90F_DAA2_2168_C235)
    assert m.reg_read("ST1") == 0x4000_C90F_DAA2_2168_C235
    with pytest.raises(RegisterError, match="80 bits"):
        m.reg_write("st0", 1 << 80)
    assert "st0" not in m.regs()  # the default snapshot is what Unicorn holds too
