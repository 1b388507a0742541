"""Regression cases: a fuzzer's minimized case with the CPU's final state as its expectation.

The file is an ordinary state case (docs/cases.md): ``final.regs`` and ``final.memory`` are what
the CPU computed, ``final.stop`` where it stopped; ``tcg2wasm exec`` checks an engine against it,
and ``tests/test_regressions.py`` runs every file in ``tests/regressions/`` (against the CPU too).
Results the CPU leaves undefined are left out: rflags when any flag may be undefined at the stop,
MXCSR (its exception flags are not modelled), and the fault name and address of a #GP (the model
reports a non-canonical data address as an unmapped access: docs/testing.md, model differences).
"""

from __future__ import annotations

from typing import Any

from tcg2wasm.cases import Case, RunResult, case_to_json
from tcg2wasm.fuzz.compare import undefined_flags

_FINAL_REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
               "r14", "r15", "rip") + tuple(f"xmm{i}" for i in range(16)) + ("fpcw",)
_GAP = 16


def changed_ranges(before: bytes, after: bytes) -> list[tuple[int, int]]:
    """(start, end) offsets where ``after`` differs from ``before``, gaps under 16 bytes merged."""
    out: list[tuple[int, int]] = []
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a != b:
            if out and i - out[-1][1] < _GAP:
                out[-1] = (out[-1][0], i + 1)
            else:
                out.append((i, i + 1))
    return out


def expected_stop(stop: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": stop["kind"], "pc": stop["pc"]}
    if stop["kind"] == "fault" and stop["fault"] not in ("GP", "SS"):
        out["fault"] = stop["fault"]
        if stop["address"] is not None:
            out["address"] = stop["address"]
    if stop.get("vector") is not None:
        out["vector"] = stop["vector"]
    return out


def regression_case(case: Case, native: RunResult | None, detail: list[str]) -> dict[str, Any]:
    """The JSON of ``case`` with the CPU's result (``native``) as its ``final``; ``detail`` goes in the description."""
    obj = case_to_json(case)
    obj["description"] = " | ".join([case.description, *detail]) if case.description else " | ".join(detail)
    if native is None:
        return obj
    regs = {name: native.regs[name] for name in _FINAL_REGS if name in native.regs}
    if not undefined_flags(case, native.stop["pc"]):
        regs["rflags"] = native.regs["rflags"]
    memory = []
    initial = {r.addr: r.data + bytes(r.size - len(r.data)) for r in case.memory}
    for addr, data in native.memory:
        for start, end in changed_ranges(initial[addr], data):
            memory.append({"addr": addr + start, "data": data[start:end].hex()})
    obj["final"] = {"regs": regs, "memory": memory, "stop": expected_stop(native.stop)}
    return obj
