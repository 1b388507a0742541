"""The tcg2wasm command: exec, show, diff, demo; exit codes; bad input without tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CODE_ADDR, DATA_ADDR, case_obj

from tcg2wasm.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
ADD_SRC = "add rax, rbx\nmov qword ptr [0x20010], rax"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exec_json_reports_regs_memory_stop_stats(capsys, write_case):
    path = write_case(case_obj(ADD_SRC, regs={"rax": 40, "rbx": 2}, final={"regs": {"rax": 42}}))
    code, out, _ = run_cli(capsys, "exec", "--json", path)
    assert code == EXIT_OK
    (line,) = out.splitlines()
    obj = json.loads(line)
    assert obj["name"] == "t" and obj["status"] == "ok" and obj["mismatches"] == []
    assert list(obj["regs"])[:4] == ["rax", "rcx", "rdx", "rbx"] and len(obj["regs"]) == 18
    assert obj["regs"]["rax"] == 42
    assert obj["stop"]["kind"] == "until" and obj["stop"]["pc"] == obj["regs"]["rip"]
    assert obj["stats"]["guest_insns"] == 2 and "fallback_insns" in obj["stats"]
    data = {m["addr"]: bytes.fromhex(m["data"]) for m in obj["memory"]}
    assert sorted(data) == [DATA_ADDR, 0x30000]
    assert data[DATA_ADDR][0x10:0x18] == (42).to_bytes(8, "little")


@pytest.mark.parametrize("engine", ["wasm", "interp", "unicorn"])
def test_exec_engines_agree(capsys, write_case, engine):
    path = write_case(case_obj(ADD_SRC, regs={"rax": 5, "rbx": 7}, final={"regs": {"rax": 12}}))
    code, out, _ = run_cli(capsys, "exec", "--json", "--engine", engine, path)
    assert code == EXIT_OK
    assert json.loads(out)["regs"]["rax"] == 12 and json.loads(out)["engine"] == engine


def test_exec_mismatch_exits_1_and_names_the_register(capsys, write_case):
    path = write_case(case_obj(ADD_SRC, regs={"rax": 1, "rbx": 1}, final={"regs": {"rax": 3}}))
    code, out, _ = run_cli(capsys, "exec", path)
    assert code == EXIT_FAILED
    assert "MISMATCH" in out and "rax: expected 0x3, got 0x2" in out


def test_exec_several_files_one_line_each(capsys, write_case):
    a = write_case(case_obj("nop", name="a"), "a.json")
    b = write_case([case_obj("nop", name="b1"), case_obj("nop\nnop", name="b2")], "b.json")
    code, out, _ = run_cli(capsys, "exec", "--json", a, b)
    assert code == EXIT_OK
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["a", "b1", "b2"]


BAD_INPUT = [
    ('{"name": "x", ', r"malformed JSON"),
    ({"name": "x", "initial": {"regs": {"rip": 0}}}, r"missing key 'stop'"),
    ({"name": "x", "initial": {"regs": {"rip": 0}, "memory": [{"addr": 0, "size": 4096, "data": "4g"}]},
      "stop": {"count": 1}}, r"initial.memory\[0\].data: bad hex digit 'g'"),
    ({"name": "x", "initial": {"regs": {"rip": 0, "eflags": 2}}, "stop": {"count": 1}},
     r"initial.regs.eflags: unknown register"),
]


@pytest.mark.parametrize(("content", "message"), BAD_INPUT)
@pytest.mark.parametrize("command", ["exec", "diff", "show"])
def test_bad_case_file_exits_2_with_one_line(capsys, write_case, content, message, command):
    path = write_case(content, "bad.json")
    code, out, err = run_cli(capsys, command, path)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith(f"tcg2wasm {command}: error: {path}") and err.count("\n") == 1
    assert re.search(message, err)


def test_missing_file_and_bad_arguments(capsys, tmp_path):
    code, _, err = run_cli(capsys, "exec", tmp_path / "none.json")
    assert code == EXIT_USAGE and "none.json: cannot read case file" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["exec", "--engine", "qemu", "x.json"])
    assert exit_info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == EXIT_USAGE


GUEST_FAULTS = [
    ("nop\n.byte 0x0f, 0xff", "INVALID_OPCODE", CODE_ADDR + 1),
    ("mov rax, 0x70000\njmp rax", "FETCH_UNMAPPED", 0x70000),
    (f"mov qword ptr [{CODE_ADDR}], rax", "WRITE_PROT", CODE_ADDR),
    ("mov rax, [0x90000]", "READ_UNMAPPED", CODE_ADDR),
]


@pytest.mark.parametrize(("src", "fault", "pc"), GUEST_FAULTS)
def test_guest_fault_is_a_stop_not_a_crash(capsys, write_case, src, fault, pc):
    path = write_case(case_obj(src, stop={"count": 20}))
    code, out, err = run_cli(capsys, "exec", "--json", path)
    assert code == EXIT_FAILED and err == ""
    obj = json.loads(out)
    assert obj["status"] == "fault"
    assert (obj["stop"]["kind"], obj["stop"]["fault"], obj["stop"]["pc"]) == ("fault", fault, pc)
    assert obj["stop"]["message"]


def test_show_prints_asm_ops_counts_and_wat(capsys, write_case):
    path = write_case(case_obj("mov eax, 1\nadd rax, rbx\ncmp rax, 3\njne skip\nnop\nskip: nop"))
    code, out, _ = run_cli(capsys, "show", path)
    assert code == EXIT_OK
    assert f"== block 0x{CODE_ADDR:x}" in out
    assert "mov eax,1" in out and "add rax,rbx" in out
    assert "-- ops before optimization (" in out and "-- ops after optimization (" in out
    assert "-- op counts " in out
    assert "(module" in out and "(func" in out
    code, out_no_wat, _ = run_cli(capsys, "show", "--no-wat", "--max-blocks", "1", path)
    assert code == EXIT_OK and "(module" not in out_no_wat and out_no_wat.count("== block") == 1


def test_show_unmapped_entry_is_a_usage_error(capsys, write_case):
    path = write_case(case_obj("nop"))
    code, _, err = run_cli(capsys, "show", "--pc", "0x70000", path)
    assert code == EXIT_USAGE and "0x70000" in err


def test_diff_agreeing_run(capsys, write_case):
    path = write_case(case_obj("mov ecx, 4\ntop: imul rax, rcx\ndec ecx\njnz top", regs={"rax": 1}))
    code, out, _ = run_cli(capsys, "diff", "--engine", "interp", path)
    assert code == EXIT_OK and "same state for 13 instructions" in out


def test_demo_runs_the_examples(capsys):
    code, out, _ = run_cli(capsys, "demo")
    assert code == EXIT_OK
    assert "result rax = 1229" in out  # primes below 10000
    assert out.count(": OK") == 2 and "guest_insns=" in out


def test_installed_command_runs_without_traceback(write_case):
    """`python -m tcg2wasm` (what the console script calls) on bad input: exit 2, no traceback."""
    path = write_case("[1, 2", "bad.json")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tcg2wasm", "exec", str(path)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr and "malformed JSON" in proc.stderr


def test_diff_divergence_exits_1_and_names_register(capsys, write_case, monkeypatch):
    from tcg2wasm.oracle.lockstep import _Pair

    real_run = _Pair.run

    def wrong_rdx(self: _Pair, pc: int, until: int | None, count: int) -> tuple[dict, dict]:
        stops = real_run(self, pc, until, count)
        self.machine.reg_write("rdx", 0xBAD)
        return stops

    monkeypatch.setattr(_Pair, "run", wrong_rdx)
    path = write_case(case_obj("add rax, 1\nnop"))
    code, out, _ = run_cli(capsys, "diff", "--engine", "interp", path)
    assert code == EXIT_FAILED
    assert f"at pc 0x{CODE_ADDR:x}" in out and "add rax,1" in out and "rdx: machine 0xbad, unicorn 0x0" in out
