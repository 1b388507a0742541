"""x87 code never runs in Unicorn as the cold tier: its state is the lifter's (runtime/x87_pages.py).

Unicorn keeps an x87 state of its own, which translated code never sees; a
block of x87 code run by the Unicorn tier would compute on a stale register
stack. The pages holding x87 instructions are not executable in Unicorn's
mapping, so the machine runs that code itself.
"""

from __future__ import annotations

from tcg2wasm import Machine
from tcg2wasm.asm import Assembler, qword, rcx, rdi, st0, st1
from tcg2wasm.runtime.x87_pages import x87_pages

CODE, DATA, STACK_TOP = 0x10000, 0x20000, 0x7F000
PAGE = 0x1000


def test_the_sweep_finds_the_pages_of_x87_instructions() -> None:
    a = Assembler(base=CODE + PAGE - 1)
    a.fadd(st0, st1)  # d8 c1: crosses into the next page
    a.add(rcx, 1)
    code = b"\x90" * (PAGE - 1) + a.assemble()  # nops up to it
    assert x87_pages(code, CODE) == {0x10, 0x11}
    assert x87_pages(code[:PAGE - 1], CODE) == set()
    b = Assembler(base=CODE)
    b.mov(rcx, rdi)
    b.add(rcx, 0xD9)  # an x87 opcode byte inside another instruction is not an x87 instruction
    assert x87_pages(b.assemble(), CODE) == set()


def _counting_program(calls: int) -> bytes:
    """A loop on page 0 calls, ``calls`` times, a function on page 1 that adds st1 (1.0) to st0;
    the x87 stack lives across the calls; at the end st0 is also stored as an integer at DATA."""
    a = Assembler(base=CODE)
    top, add_one = a.label(), a.label("add_one")
    a.call(a.label("setup"))
    a.mov(rcx, calls)
    a.bind(top)
    a.call(add_one)
    a.dec(rcx)
    a.jnz(top)
    a.call(a.label("store"))
    a.hlt()
    a.align(PAGE)
    a.bind("setup")
    a.fld1()
    a.fldz()
    a.ret()
    a.bind(add_one)
    a.fadd(st0, st1)
    a.ret()
    a.bind("store")
    a.mov(rdi, DATA)
    a.fistp(qword[rdi])
    a.fild(qword[rdi])
    a.ret()
    return a.assemble()


def _extended(n: int) -> int:
    """The 80-bit extended encoding of the positive integer ``n``."""
    e = n.bit_length() - 1
    return ((16383 + e) << 64) | (n << (63 - e))


def _run(code: bytes, tier: str) -> Machine:
    m = Machine(cold_tier=tier)
    m.mem_map(CODE, 2 * PAGE, "rx")
    m.mem_write(CODE, code)
    m.mem_map(DATA, PAGE, "rw")
    m.mem_map(STACK_TOP - 0xF000, 0x10000, "rw")
    m.reg_write("rsp", STACK_TOP)
    assert m.run(CODE).kind == "hlt"
    return m


def test_x87_state_lives_across_the_unicorn_tier() -> None:
    calls = 3000
    code = _counting_program(calls)
    for tier in ("interp", "unicorn"):
        m = _run(code, tier)
        assert int.from_bytes(m.mem_read(DATA, 8), "little") == calls, tier
        assert m.reg_read("st0") == _extended(calls), tier  # the lifter's x87 state holds it
        assert m.stats.fallback_insns == 0, tier
    assert m.stats.unicorn_slices >= 1  # the loop page did run in Unicorn
