"""The engines that run guest code, behind one interface, over the one state block and guest memory.

``enter(pc)`` runs from ``pc`` until something needs the host and returns
``(exit code, pc)``: the pc to continue at (or the faulting instruction,
the miss, the stop). ``run_block(tb)`` runs exactly one TB the way a region
function would (instruction budget charged at its head, globals through the
state block) -- what the tiers use for a cold block and for a count stop cut
inside a block.

- ``WasmEngine``: the in-wasm dispatcher over the jump cache and the region functions.
- ``InterpEngine``: the same loop in Python over the optimized TBs the translator holds,
  run by the IR interpreter -- the reference engine (``Machine(engine="interp")``).
"""

from __future__ import annotations

from typing import Protocol

from tcg2wasm.abi import Exit
from tcg2wasm.cfg.region import Region
from tcg2wasm.errors import TranslationError
from tcg2wasm.ir.core import TranslationBlock
from tcg2wasm.ir.interp import TBResult, run_tb
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.registers import RegisterFile
from tcg2wasm.runtime.stops import Stats
from tcg2wasm.runtime.translator import Translator
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["Engine", "InterpEngine", "WasmEngine", "interpret_block"]


class Engine(Protocol):
    def enter(self, pc: int) -> tuple[Exit, int]: ...

    def run_block(self, tb: TranslationBlock, max_insns: int | None = None) -> tuple[Exit, int]: ...


class WasmEngine:
    """Translated code: the dispatcher loop in wasm, region functions in the shared table."""

    def __init__(self, rt: WasmRuntime, translator: Translator, stats: Stats) -> None:
        self._rt = rt
        self._translator = translator
        self._stats = stats

    def enter(self, pc: int) -> tuple[Exit, int]:
        rt = self._rt
        rt.state_write("rip", pc)
        try:
            code = rt.dispatch()
        except Exception as e:  # a trap in translated code or an exception raised by a host helper
            raise TranslationError(f"translated code trapped near rip {rt.state_read('rip'):#x}: {e}") from e
        return Exit(code), rt.state_read("rip")

    def run_block(self, tb: TranslationBlock, max_insns: int | None = None) -> tuple[Exit, int]:
        """Compile ``tb`` as a one-block region and run it once (count stops exercise wasm too).

        Compiled code cannot stop inside a TB: a count stop passes a TB lifted with at most the
        instructions left (``Translator.translate(pc, max_insns=...)``), so ``max_insns`` must not cut it.
        """
        if max_insns is not None and max_insns < tb.n_insns:
            raise TranslationError(f"run_block: the TB at 0x{tb.pc:x} has more than {max_insns} instructions")
        wasm = self._translator.compile(Region(tb.pc, {tb.pc: tb}))
        func = self._rt.instantiate_region(wasm)
        self._stats.modules += 1
        self._rt.state_write("rip", tb.pc)
        self._rt.state_write("exit_pending", 0)
        return Exit(func(self._rt.store)), self._rt.state_read("rip")


class InterpEngine:
    """The dispatcher loop in Python over cached optimized TBs, run by the IR interpreter."""

    def __init__(self, rt: WasmRuntime, regs: RegisterFile, memory: GuestMemory, translator: Translator) -> None:
        self._rt = rt
        self._regs = regs
        self._memory = memory
        self._translator = translator

    def enter(self, pc: int) -> tuple[Exit, int]:
        """Chain TBs while they continue; globals, rip and the budget stay in Python variables meanwhile."""
        rt = self._rt
        stop_pc = rt.state_read("stop_pc")
        values = self._regs.load_globals()
        left = rt.state_read("icount_left")
        code, result = Exit.CONTINUE, None
        while code == Exit.CONTINUE:
            if pc == stop_pc:
                code = Exit.STOP
                break
            tb = self._translator.cached_optimized(pc)
            if tb is None:
                code = Exit.MISS
                break
            if left < tb.n_insns:
                code = Exit.ICOUNT
                break
            left -= tb.n_insns
            result = run_tb(tb, values, self._memory)
            pc, code = result.pc, result.exit
            if code != Exit.CONTINUE:
                left += tb.unexecuted_from(pc)
        self._regs.store_globals(values)
        rt.state_write("rip", pc)
        rt.state_write("icount_left", left)
        if code == Exit.FAULT and result is not None:
            _record_fault(rt, result)
        return code, pc

    def run_block(self, tb: TranslationBlock, max_insns: int | None = None) -> tuple[Exit, int]:
        return interpret_block(self._rt, self._regs, self._memory, tb, max_insns)


def interpret_block(rt: WasmRuntime, regs: RegisterFile, memory: GuestMemory, tb: TranslationBlock,
                    max_insns: int | None = None) -> tuple[Exit, int]:
    """Run one TB in the IR interpreter like a region function would.

    ``max_insns`` cuts a lifted TB after that many instructions (exact count stops).
    """
    left = rt.state_read("icount_left")
    charge = tb.n_insns if max_insns is None else min(tb.n_insns, max_insns)
    if left < charge:
        rt.state_write("rip", tb.pc)
        return Exit.ICOUNT, tb.pc
    values = regs.load_globals()
    result = run_tb(tb, values, memory, max_insns)
    regs.store_globals(values)
    rt.state_write("rip", result.pc)
    if result.exit != Exit.CONTINUE:
        left += tb.unexecuted_from(result.pc) - (tb.n_insns - charge)
    rt.state_write("icount_left", left - charge)
    if result.exit == Exit.FAULT:
        _record_fault(rt, result)
    return result.exit, result.pc


def _record_fault(rt: WasmRuntime, result: TBResult) -> None:
    rt.state_write("fault_kind", int(result.fault_kind))
    rt.state_write("fault_addr", result.fault_addr)
