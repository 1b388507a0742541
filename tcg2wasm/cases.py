"""Running state cases on an engine (the format itself is ``tcg2wasm.casefile``, re-exported here).

``run_case(case, engine)`` runs a case on "wasm", "interp" or "unicorn" and gives the
same :class:`RunResult` whatever the engine; ``check_result`` compares it with the
case's expected final state.
"""

from __future__ import annotations

from typing import Any

from tcg2wasm.casefile import (
    CASE_REGS,
    RESULT_REGS,
    RFLAGS_MODELED,
    VECTOR_REGS,
    Case,
    MemoryExpect,
    MemoryRegion,
    RunResult,
    Stop,
    case_fetch,
    case_to_json,
    check_result,
    load_case,
    load_cases,
    parse_case,
    parse_cases,
    stats_to_json,
    stop_to_json,
)
from tcg2wasm.errors import CaseError, Tcg2WasmError
from tcg2wasm.machine import Machine

__all__ = [
    "CASE_REGS", "RESULT_REGS", "RFLAGS_MODELED", "VECTOR_REGS", "Case", "MemoryExpect", "MemoryRegion", "RunResult",
    "Stop",
    "build_machine", "case_fetch", "case_to_json", "check_result", "load_case", "load_cases", "machine_result",
    "parse_case", "parse_cases", "run_case", "stats_to_json", "stop_to_json",
]


# -- running a case in the Machine ----------------------------------------------------------


def build_machine(case: Case, engine: str = "wasm") -> Machine:
    """A ``tcg2wasm.Machine`` holding the case's initial memory and registers.

    Cases compile every block at its first miss (no interpreted warm-up), so a
    case exercises the wasm path it names.
    """
    machine = Machine(engine=engine, hot_threshold=1)
    for region in case.memory:
        try:
            machine.mem_map(region.addr, region.size, region.perms)
        except Tcg2WasmError as e:  # out of guest memory: say which file and case (found by fuzz files)
            raise CaseError(f"{case.source}: case {case.name!r}: cannot map 0x{region.size:x} bytes at "
                            f"0x{region.addr:x}: {e}") from None
        if region.data:
            machine.mem_write(region.addr, region.data)
    for name, value in case.regs.items():
        machine.reg_write(name, value)
    return machine


def machine_result(case: Case, machine: Any, stop: Any, engine: str) -> RunResult:
    return RunResult(
        name=case.name,
        engine=engine,
        regs={name: machine.reg_read(name) for name in RESULT_REGS + VECTOR_REGS},
        memory=[(r.addr, machine.mem_read(r.addr, r.size)) for r in case.memory if "w" in r.perms],
        stop=stop_to_json(stop),
        stats=stats_to_json(machine.stats),
    )


def run_case(case: Case, engine: str = "wasm", *, capture: bool = False) -> RunResult:
    """Run ``case`` to its stop condition on ``engine``: "wasm", "interp" or "unicorn".

    ``capture``: first run the case in Unicorn recording the blocks it executes, and let the
    Machine's regions grow only along those (Unicorn's capture role).
    """
    if engine == "unicorn":
        from tcg2wasm.oracle.unicorn_ref import run_unicorn  # imports Unicorn: only when asked for

        return run_unicorn(case)
    machine = build_machine(case, engine)
    if capture:
        from tcg2wasm.oracle.capture import capture_blocks

        machine.seed_profile(capture_blocks(case).pcs())
    stop = machine.run(case.entry, until=case.stop.until, count=case.stop.count)
    return machine_result(case, machine, stop, engine)
