"""Engines that run many cases of one memory layout cheaply: Machines, Unicorn and the CPU, reused.

Creating a ``Machine`` costs milliseconds and, done per case, grew a worker to gigabytes of RSS
(issue 14); creating a ``Uc`` costs about as much as running a short case. So each engine here
keeps one instance per memory layout and only rewrites memory and registers between cases: the
Machine's own invalidation drops the translations of the rewritten code page, Unicorn's
translation cache is flushed. Every engine runs a case until its stop address or ``limit``
instructions (streams end by construction; the limit only bounds a bug), with the same result
structure (``tcg2wasm.cases.RunResult``).
"""

from __future__ import annotations

from typing import Any

from tcg2wasm.abi import FPCW_DEFAULT, GPR_NAMES, MXCSR_DEFAULT, SEG_BASE_NAMES, XMM_NAMES
from tcg2wasm.cases import Case, RunResult, machine_result

LIMIT = 20_000
_RESET_REGS = GPR_NAMES + SEG_BASE_NAMES + XMM_NAMES


def layout_of(case: Case) -> tuple[tuple[int, int, str], ...]:
    return tuple((r.addr, r.size, r.perms) for r in case.memory)


class MachineEngine:
    """A ``tcg2wasm.Machine`` (engine "wasm" or "interp") reused across cases of one layout."""

    def __init__(self, engine: str, *, hot_threshold: int = 1, limit: int = LIMIT) -> None:
        self.engine = engine
        self.hot_threshold = hot_threshold
        self.limit = limit
        self.machine: Any = None
        self._layout: tuple[tuple[int, int, str], ...] | None = None
        self.machines_created = 0

    def _fresh(self, case: Case) -> Any:
        from tcg2wasm.machine import Machine

        machine = Machine(engine=self.engine, hot_threshold=self.hot_threshold)
        for r in case.memory:
            machine.mem_map(r.addr, r.size, r.perms)
        self.machines_created += 1
        self._layout = layout_of(case)
        return machine

    def prepare(self, case: Case) -> Any:
        if self.machine is None or layout_of(case) != self._layout:
            self.machine = None
            self.machine = self._fresh(case)
        m = self.machine
        for r in case.memory:
            m.mem_write(r.addr, r.data + bytes(r.size - len(r.data)))
        for name in _RESET_REGS:
            m.reg_write(name, case.regs.get(name, 0))
        m.reg_write("rflags", case.regs.get("rflags", 0x2))
        m.reg_write("mxcsr", case.regs.get("mxcsr", MXCSR_DEFAULT))
        m.reg_write("fpcw", case.regs.get("fpcw", FPCW_DEFAULT))
        return m

    def run(self, case: Case) -> RunResult:
        m = self.prepare(case)
        count = case.stop.count if case.stop.count is not None else self.limit
        stop = m.run(case.entry, until=case.stop.until, count=count)
        if stop.kind == "fault" and stop.fault == "UNSUPPORTED":
            self.machine = None
        return machine_result(case, m, stop, self.engine)


class UnicornEngine:
    """Unicorn, reused across cases of one layout (``UnicornRunner.reload``)."""

    engine = "unicorn"

    def __init__(self, *, limit: int = LIMIT) -> None:
        self.limit = limit
        self.runner: Any = None
        self.created = 0

    def run(self, case: Case) -> RunResult:
        from tcg2wasm.oracle.unicorn_ref import UnicornRunner

        if self.runner is None or layout_of(self.runner.case) != layout_of(case):
            self.runner = UnicornRunner(case, count_insns=False, reusable=True)
            self.created += 1
        else:
            self.runner.reload(case)
        count = case.stop.count if case.stop.count is not None else self.limit
        stop = self.runner.run(case.entry, until=case.stop.until, count=count)
        if stop["kind"] == "fault" and stop["fault"] == "UNICORN_ERROR":
            self.runner = None  # start from a fresh instance after an internal error
            runner_regs, memory = {}, []
        else:
            runner_regs, memory = self.runner.read_regs(), self.runner.writable_memory()
        return RunResult(case.name, "unicorn", runner_regs, memory, stop, {"fallback_insns": 0})


class NativeEngine:
    """The host CPU (``tcg2wasm.fuzz.native.NativeRunner``)."""

    engine = "native"

    def __init__(self, *, timeout_ms: int = 200) -> None:
        from tcg2wasm.fuzz.native import NativeRunner

        self.runner = NativeRunner(timeout_ms=timeout_ms)

    def run(self, case: Case) -> RunResult:
        return self.runner.run(case)

    def close(self) -> None:
        self.runner.close()
