"""Case files: loading, validation messages, checking results, the bundled examples."""

from __future__ import annotations

import copy
import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import CODE_ADDR, DATA_ADDR, case_obj

from tcg2wasm.cases import (
    RunResult,
    case_fetch,
    case_to_json,
    check_result,
    load_case,
    load_cases,
    parse_case,
    parse_cases,
    run_case,
)
from tcg2wasm.errors import CaseError, GuestFault, Tcg2WasmError
from tcg2wasm.ir.ops import Excp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import mkcase  # noqa: E402

BASE: dict[str, Any] = {
    "name": "add/1",
    "initial": {
        "regs": {"rax": 1, "rbx": 2, "rsp": 0x11F00, "rip": 0x10000, "rflags": 0x202},
        "memory": [{"addr": 0x10000, "size": 0x2000, "perms": "rwx", "data": "4801d8"}],
    },
    "stop": {"until": 0x10003},
    "final": {"regs": {"rax": 3}},
}


def mutated(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (list indices as numbers) replaced; ``...`` deletes it."""
    obj = copy.deepcopy(BASE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = obj
    for p in parents:
        target = target[p]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return obj


def test_valid_case_round_trips():
    case = parse_case(BASE, "base.json")
    assert case.name == "add/1" and case.entry == 0x10000
    assert case.memory[0].data == bytes.fromhex("4801d8") and case.memory[0].perms == "rwx"
    assert case.stop.until == 0x10003 and case.stop.count is None
    assert case.final_regs == {"rax": 3}
    assert parse_case(case_to_json(case), "again.json") == parse_case(BASE, "again.json")


BAD_CASES = [
    ("initial", ..., r"missing key 'initial'"),
    ("stop", ..., r"missing key 'stop'"),
    ("initial.regs", ..., r"initial: missing key 'regs'"),
    ("initial.regs.rip", ..., r"initial.regs: missing key 'rip'"),
    ("initial.regs.rax", -1, r"initial.regs.rax: negative value -1"),
    ("initial.regs.rax", 1 << 64, r"initial.regs.rax: value 0x10000000000000000 does not fit in 64 bits"),
    ("initial.regs.rax", "1", r"initial.regs.rax: expected an unsigned 64-bit integer, got str"),
    ("initial.regs.rax", True, r"initial.regs.rax: expected an unsigned 64-bit integer, got bool"),
    ("initial.regs.rax", 1.5, r"initial.regs.rax: expected an unsigned 64-bit integer, got float"),
    ("initial.regs.xmm16", 1, r"initial.regs.xmm16: unknown register"),
    ("initial.regs.fpcw", 0x10000, r"initial.regs.fpcw: value 0x10000 does not fit in 16 bits"),
    ("initial.regs.xmm3", 1 << 128, r"initial.regs.xmm3: value 0x1(0{32}) does not fit in 128 bits"),
    ("initial.memory.0.data", "48zz", r"initial.memory\[0\].data: bad hex digit 'z'"),
    ("initial.memory.0.data", "480", r"initial.memory\[0\].data: odd number of hex digits"),
    ("initial.memory.0.perms", "rwq", r"initial.memory\[0\].perms: expected a subset of 'rwx'"),
    ("initial.memory.0.perms", "rr", r"initial.memory\[0\].perms"),
    ("initial.memory.0.addr", 0x10001, r"initial.memory\[0\].addr: 0x10001 is not aligned"),
    ("initial.memory.0.size", 0x1001, r"initial.memory\[0\].size: 0x1001 is not a positive multiple"),
    ("initial.memory.0.size", 0, r"initial.memory\[0\].size"),
    ("initial.memory.0.addr", (1 << 64) - 0x1000, r"initial.memory\[0\]: .* runs past the end"),
    ("initial.memory.0.size", 0x1000, None),  # data still fits: valid
    ("initial.memory.0", "x", r"initial.memory\[0\]: expected an object, got str"),
    ("initial.memory", {}, r"initial.memory: expected a list"),
    ("stop", {}, r"stop: expected exactly one of"),
    ("stop", {"until": 1, "count": 2}, r"stop: expected exactly one of"),
    ("stop", {"count": 0}, r"stop.count: must be at least 1"),
    ("stop", {"until": 1, "after": 2}, r"stop: unknown key\(s\) 'after'"),
    ("stop.until", -5, r"stop.until: negative value"),
    ("final.regs.rax", "3", r"final.regs.rax: expected an unsigned 64-bit integer"),
    ("final.memory", [{"addr": 0x50000, "data": "00"}], r"final.memory\[0\]: 0x50000..0x50001 is not inside"),
    ("final.memory", [{"addr": 0x10000}], r"final.memory\[0\]: missing key 'data'"),
    ("name", "", r"name: expected a non-empty string"),
    ("extra", 1, r"unknown key\(s\) 'extra'"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_CASES)
def test_bad_case_names_file_and_field(path: str, value: Any, message: str | None):
    obj = mutated(path, value)
    if message is None:
        parse_case(obj, "case.json")
        return
    with pytest.raises(CaseError) as err:
        parse_case(obj, "dir/case.json")
    text = str(err.value)
    assert text.startswith("dir/case.json: ")
    assert re.search(message, text), text
    assert isinstance(err.value, Tcg2WasmError)


def test_overlapping_regions_are_rejected():
    obj = copy.deepcopy(BASE)
    obj["initial"]["memory"].append({"addr": 0x11000, "size": 0x1000, "perms": "rw"})
    with pytest.raises(CaseError, match=r"initial.memory\[1\]: overlaps initial.memory\[0\]"):
        parse_case(obj, "c.json")


def test_data_longer_than_region():
    with pytest.raises(CaseError, match=r"initial.memory\[0\].data: 4097 bytes do not fit"):
        parse_case(mutated("initial.memory.0", {"addr": 0, "size": 0x1000, "data": "00" * 4097}), "c.json")


def test_malformed_json_names_line(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "initial": }')
    with pytest.raises(CaseError, match=r"broken.json: line 2 column \d+: malformed JSON"):
        load_cases(path)


def test_missing_file_and_list_files(tmp_path: Path):
    with pytest.raises(CaseError, match="nope.json: cannot read case file"):
        load_cases(tmp_path / "nope.json")
    with pytest.raises(CaseError, match="the list of cases is empty"):
        parse_cases("[]", "l.json")
    many = parse_cases(json.dumps([BASE, mutated("name", "second")]), "l.json")
    assert [c.name for c in many] == ["add/1", "second"]
    unnamed = mutated("initial.regs.rip", "x")
    del unnamed["name"]
    with pytest.raises(CaseError, match=r"l.json: case '\[1\]': initial.regs.rip: expected an unsigned"):
        parse_cases(json.dumps([BASE, unnamed]), "l.json")
    path = tmp_path / "two.json"
    path.write_text(json.dumps([BASE, BASE]))
    with pytest.raises(CaseError, match="expected one case, found 2"):
        load_case(path)


def _result(regs: dict[str, int], memory: list[tuple[int, bytes]]) -> RunResult:
    return RunResult("t", "test", regs, memory, {"kind": "until", "pc": 0}, {"guest_insns": 1})


def test_check_result_reports_each_difference():
    case = parse_case(mutated("final", {"regs": {"rax": 3, "rflags": 0x246},
                                        "memory": [{"addr": 0x10000, "data": "4801"}]}), "c.json")
    good = _result({"rax": 3, "rflags": 0x246 | 0x10000}, [(0x10000, b"\x48\x01\xd8")])  # RF bit not modeled
    assert check_result(case, good) == []
    bad = _result({"rax": 4, "rflags": 0x202}, [(0x10000, b"\x48\x02")])
    problems = check_result(case, bad)
    assert problems == ["rax: expected 0x3, got 0x4", "rflags: expected 0x246, got 0x202",
                        "memory 0x10001: expected 01, got 02"]
    assert check_result(case, _result({"rax": 3, "rflags": 0x246}, [])) == [
        "memory 0x10000: not in a writable region reported by test"]


def test_case_fetch_follows_executable_mappings():
    obj = case_obj("nop", data=b"\x90")
    obj["initial"]["memory"].append({"addr": CODE_ADDR + 0x1000, "size": 0x1000, "perms": "rx", "data": "c3"})
    fetch = case_fetch(parse_case(obj))
    assert fetch(CODE_ADDR, 1) == b"\x90"
    assert fetch(CODE_ADDR + 0xFFF, 2) == b"\x00\xc3"  # runs on into the adjacent executable page
    with pytest.raises(GuestFault) as err:
        fetch(DATA_ADDR, 4)
    assert err.value.kind == Excp.FETCH_PROT
    with pytest.raises(GuestFault) as err:
        fetch(0x90000, 4)
    assert err.value.kind == Excp.FETCH_UNMAPPED


# -- bundled examples: expected results computed here, independently of tools/mkcase.py ----------


def primes_below_by_trial_division(n: int) -> int:
    return sum(1 for k in range(2, n) if all(k % d for d in range(2, int(k**0.5) + 1)))


def lcg_buffer(length: int) -> bytes:
    seed, out = 12345, bytearray()
    for _ in range(length):
        seed = (seed * 1103515245 + 12345) % 2**31
        out.append(seed >> 16 & 0xFF)
    return bytes(out)


def expected_rax(name: str) -> int:
    params = mkcase.EXAMPLES[name].params
    if name == "crc32":
        return zlib.crc32(lcg_buffer(params["LEN"]))
    return primes_below_by_trial_division(params["N"])


@pytest.mark.parametrize("name", ["sieve", "crc32"])
@pytest.mark.parametrize("engine", ["wasm", "unicorn"])
def test_example_computes_the_right_result(name: str, engine: str):
    case = load_case(ROOT / "tcg2wasm" / "examples" / f"{name}.json")
    want = expected_rax(name)
    assert case.final_regs is not None and case.final_regs["rax"] == want
    result = run_case(case, engine)
    assert result.stop["kind"] == "until" and result.regs["rip"] == case.stop.until
    assert result.regs["rax"] == want
    assert check_result(case, result) == []


def test_bench_case_is_loop_heavy():
    case = load_case(ROOT / "tcg2wasm" / "examples" / "bench_sieve.json")
    params = mkcase.EXAMPLES["bench_sieve"].params
    assert case.final_regs is not None and case.final_regs["rax"] == primes_below_by_trial_division(params["N"])
    # the count loop alone runs >= 5 instructions per candidate per repeat
    assert params["N"] * params["REPEAT"] * 5 >= 10**7 and params["REPEAT"] >= 100


def test_committed_example_json_matches_sources(tmp_path: Path):
    """The JSON in tcg2wasm/examples/ is what tools/mkcase.py makes from examples/*.py today."""
    for name, example in mkcase.EXAMPLES.items():
        committed = json.loads((ROOT / "tcg2wasm" / "examples" / f"{name}.json").read_text())
        assert mkcase.make_case(example) == committed, f"tcg2wasm/examples/{name}.json is stale: run `make examples`"


def test_assemble_helper_caches_and_reports_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import asm

    monkeypatch.setattr(asm, "_CACHE_DIR", tmp_path)
    code = asm.assemble("jmp target\nnop\ntarget: ret", 0x40000)
    assert code == bytes.fromhex("eb0190c3")
    assert len(list(tmp_path.iterdir())) == 1 and asm.assemble("jmp target\nnop\ntarget: ret", 0x40000) == code
    assert asm.assemble("lea rax, [rip]", 0x40000) == bytes.fromhex("488d0500000000")
    with pytest.raises(asm.AssemblerError, match="no such instruction"):
        asm.assemble("frobnicate rax")
