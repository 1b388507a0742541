"""The Unicorn oracle: stops, instruction counts, block capture, lockstep comparison, flag masks."""

from __future__ import annotations

from typing import Any

import pytest
from asm import assemble
from conftest import CODE_ADDR, DATA_ADDR, STACK_TOP, case_obj

from tcg2wasm.cases import parse_case, run_case
from tcg2wasm.oracle import flags
from tcg2wasm.oracle.capture import capture_blocks
from tcg2wasm.oracle.lockstep import _Pair, decode_step, lockstep, undefined_after
from tcg2wasm.oracle.unicorn_ref import UnicornRunner, run_unicorn

# (source, stop) -> expected (kind, offset of pc from CODE_ADDR or absolute pc, fault, address)
STOP_CASES: list[tuple[str, dict | None, tuple[str, int, str | None, int | None]]] = [
    ("add rax, 1\nhlt\nnop", None, ("hlt", CODE_ADDR + 5, None, None)),
    ("nop\nsyscall\nnop", None, ("syscall", CODE_ADDR + 3, None, None)),
    ("xor edx, edx\nxor ecx, ecx\ndiv rcx", None, ("fault", CODE_ADDR + 4, "DIVIDE", None)),
    ("nop\nmov rax, [0x50000]", None, ("fault", CODE_ADDR + 1, "READ_UNMAPPED", 0x50000)),
    (f"mov qword ptr [{CODE_ADDR}], rax", None, ("fault", CODE_ADDR, "WRITE_PROT", CODE_ADDR)),
    ("mov rax, 0x60000\njmp rax", None, ("fault", 0x60000, "FETCH_UNMAPPED", 0x60000)),
    (f"mov rax, {DATA_ADDR}\njmp rax", None, ("fault", DATA_ADDR, "FETCH_PROT", DATA_ADDR)),
    ("nop\n.byte 0x0f, 0xff", None, ("fault", CODE_ADDR + 1, "INVALID_OPCODE", None)),
    ("add rax, 1\nadd rax, 2\nadd rax, 3\nhlt", {"count": 2}, ("count", CODE_ADDR + 8, None, None)),
    ("nop\nint3\nnop", None, ("interrupt", CODE_ADDR + 2, None, None)),  # a trap: rip is past it
    ("int 0x80\nnop", None, ("interrupt", CODE_ADDR + 2, None, None)),
]
VECTORS = {"int3": 3, "int 0x80": 0x80}


@pytest.mark.parametrize(("src", "stop", "expected"), STOP_CASES)
def test_unicorn_stops(src: str, stop: dict | None, expected: tuple):
    case = parse_case(case_obj(src, stop=stop or {"count": 50}))
    result = run_unicorn(case)
    got = (result.stop["kind"], result.stop["pc"], result.stop["fault"], result.stop["address"])
    assert got == expected
    assert result.stop["message"].startswith(expected[0])
    if expected[2]:
        assert expected[2] in result.stop["message"]
    assert result.stop["vector"] == next((v for k, v in VECTORS.items() if k in src), None)


@pytest.mark.parametrize(("src", "stop", "expected"), STOP_CASES)
def test_machine_stops_like_unicorn(src: str, stop: dict | None, expected: tuple):
    """The oracle's stop conventions are the Machine's: same kind, pc, fault and address."""
    case = parse_case(case_obj(src, stop=stop or {"count": 50}))
    ours, theirs = run_case(case, "wasm"), run_unicorn(case)
    keys = ("kind", "pc", "fault", "address", "vector")
    assert [ours.stop[k] for k in keys] == [theirs.stop[k] for k in keys]
    if "syscall" in src:  # the CPU saves rip in rcx and rflags in r11, Unicorn does not (known difference
        for name in ("rcx", "r11"):  # unicorn-syscall-rcx-r11; tests/test_fuzz_native.py checks the CPU's)
            ours.regs.pop(name), theirs.regs.pop(name)
    assert ours.regs == theirs.regs


def test_guest_insns_are_exact_even_when_a_block_faults():
    src = "mov ecx, 3\nloop_top: add rax, rcx\ndec ecx\njnz loop_top\nnop\nnop\nmov rax, [0x50000]\nnop"
    result = run_unicorn(parse_case(case_obj(src, stop={"count": 1000})))
    assert result.stop["fault"] == "READ_UNMAPPED"
    assert result.stats["guest_insns"] == 1 + 3 * 3 + 2  # the faulting load does not count


def test_initial_state_like_linux():
    src = "fnstcw word ptr [rsp]\nstmxcsr dword ptr [rsp + 4]\nmov rax, fs:[0]\nhlt"
    case = parse_case(case_obj(src, regs={"fs_base": DATA_ADDR}, data=b"\x2a" + bytes(7)))
    runner = UnicornRunner(case)
    stop = runner.run(case.entry, count=10)
    assert stop["kind"] == "hlt"
    assert runner.read_regs()["rax"] == 0x2A
    top = bytes(runner.uc.mem_read(STACK_TOP, 8))
    assert int.from_bytes(top[:2], "little") == 0x37F and int.from_bytes(top[4:], "little") == 0x1F80


def test_writable_memory_is_reported():
    case = parse_case(case_obj(f"mov qword ptr [{DATA_ADDR + 8}], 0x1234\nhlt"))
    result = run_unicorn(case)
    assert [addr for addr, _ in result.memory] == [DATA_ADDR, STACK_TOP & ~0xFFF]
    assert result.read(DATA_ADDR + 8, 8) == (0x1234).to_bytes(8, "little")


def test_capture_records_blocks_edges_and_counts():
    src = "mov ecx, 5\ntop: add rax, rcx\ndec ecx\njnz top\nhlt"
    code = assemble(src, CODE_ADDR)
    graph = capture_blocks(parse_case(case_obj(src, stop={"count": 100})))
    loop, hlt = CODE_ADDR + 5, CODE_ADDR + len(code) - 1
    assert graph.stop["kind"] == "hlt" and not graph.truncated
    # Unicorn's blocks end at control transfers only: the first one runs into the first iteration
    assert graph.blocks[CODE_ADDR].size == len(code) - 1 and graph.blocks[CODE_ADDR].count == 1
    assert graph.blocks[loop].count == 4 and graph.blocks[hlt].count == 1
    assert graph.pcs() == [loop, CODE_ADDR, hlt]
    assert graph.edges == {(CODE_ADDR, loop): 1, (loop, loop): 3, (loop, hlt): 1}
    assert graph.successors(loop) == [loop, hlt]
    assert graph.hot_edges()[0] == (loop, loop, 3)


def test_capture_limit_truncates():
    graph = capture_blocks(parse_case(case_obj("top: jmp top", stop={"count": 10**6})), max_blocks=50)
    assert graph.truncated and graph.blocks[CODE_ADDR].count == 50


def test_decode_step_ends_at_control_transfer():
    code = assemble("add rax, rbx\nnop\njz skip\nnop\nskip: ret")
    insns = decode_step(code, CODE_ADDR)
    assert [i.mnemonic for i in insns] == ["add", "nop", "je"]
    assert insns[0].asm == "add rax,rbx" and insns[2].pc == CODE_ADDR + 4


LOOP_SRC = """
    mov ecx, 20
top:
    imul rax, rcx
    add rbx, rax
    and rbx, 0xffff
    mov qword ptr [rsp - 8], rbx
    dec ecx
    jnz top
"""
LOOP_INSNS = 1 + 20 * 6


@pytest.mark.parametrize("engine", ["wasm", "interp"])
def test_lockstep_agrees_on_a_correct_run(engine: str):
    report = lockstep(parse_case(case_obj(LOOP_SRC, regs={"rax": 3})), engine=engine)
    assert report.ok, report.divergence and report.divergence.describe()
    assert report.guest_insns == LOOP_INSNS and report.stop["kind"] == "until"

    report = lockstep(parse_case(case_obj(LOOP_SRC, regs={"rax": 3}, stop={"count": 50})), engine=engine)
    assert report.ok and report.guest_insns == 50 and report.stop["kind"] == "count"


def _corrupt_after(monkeypatch: pytest.MonkeyPatch, pc: int, change: Any) -> None:
    """Make the Machine go wrong: after a step that ran the instruction at ``pc``, apply ``change``."""
    real_run = _Pair.run

    def run(self: _Pair, start: int, until: int | None, count: int) -> tuple[dict, dict]:
        stops = real_run(self, start, until, count)
        ran = decode_step(self.code_at(start), start, count)
        if any(i.pc == pc for i in ran):
            change(self.machine)
        return stops

    monkeypatch.setattr(_Pair, "run", run)


def test_lockstep_names_the_diverging_instruction(monkeypatch: pytest.MonkeyPatch):
    store_pc = CODE_ADDR + len(assemble("mov ecx, 20\nimul rax, rcx\nadd rbx, rax\nand rbx, 0xffff"))
    _corrupt_after(monkeypatch, store_pc, lambda m: m.mem_write(STACK_TOP - 8, b"\xee"))
    case = parse_case(case_obj(LOOP_SRC, regs={"rax": 3}))
    report = lockstep(case, engine="interp")
    div = report.divergence
    assert div is not None
    assert div.pc == store_pc and [i.mnemonic for i in div.insns] == ["mov"]
    assert div.guest_insns_before == 4
    assert len(div.differences) == 1 and div.differences[0].startswith(f"memory 0x{STACK_TOP - 8:x}: machine ee")
    assert "0x10013: mov [rsp-8],rbx" in div.describe()


def test_lockstep_masks_undefined_flags_only(monkeypatch: pytest.MonkeyPatch):
    src = "add rax, 1\nand rax, 0xff\njmp next\nnext: nop"
    case = parse_case(case_obj(src, regs={"rax": 0x41}))
    and_pc = CODE_ADDR + 4
    _corrupt_after(monkeypatch, and_pc, lambda m: m.reg_write("rflags", m.reg_read("rflags") ^ flags.AF))
    assert lockstep(case, engine="interp").ok  # AF is undefined after `and`: not a divergence

    monkeypatch.undo()
    _corrupt_after(monkeypatch, and_pc, lambda m: m.reg_write("rflags", m.reg_read("rflags") ^ flags.ZF))
    div = lockstep(case, engine="interp").divergence
    assert div is not None and div.pc == CODE_ADDR + 4 and "differ in ZF" in div.differences[0]


def test_undefined_flags_of_a_step_follow_the_last_writer():
    imul_then_and = decode_step(assemble("imul rax, rcx\nand rbx, 1\nret"), CODE_ADDR)
    assert undefined_after(imul_then_and) == flags.AF  # and redefines SF, ZF, PF; leaves AF undefined
    assert undefined_after(imul_then_and[:1]) & flags.ZF
    assert undefined_after(decode_step(assemble("shl rax, cl\nret"), CODE_ADDR)) & flags.OF


def test_undefined_flag_table():
    assert flags.UNDEFINED_FLAGS["mul"] == flags.SF | flags.ZF | flags.AF | flags.PF
    assert flags.UNDEFINED_FLAGS["div"] == flags.STATUS_FLAGS
    assert flags.UNDEFINED_FLAGS["bsf"] & flags.ZF == 0
    assert flags.undefined_mask(["add", "xor", "MUL"]) == flags.AF | flags.UNDEFINED_FLAGS["mul"]
    assert flags.undefined_mask(["add", "sub"]) == 0
