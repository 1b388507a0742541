"""``emu_start``: runs of the Machine, and what Unicorn does where a run stops.

The Machine stops for what its exit handler cannot decide alone: a syscall, an
interrupt, a fault, hlt, the stop address, the instruction budget, an
``emu_stop`` from a hook. ``Runner`` turns each stop into Unicorn's behaviour --
the syscall, interrupt, invalid-memory and invalid-instruction hooks, with the
register state Unicorn shows them and its rules for going on -- and either runs
on from where Unicorn would or ends ``emu_start`` (with the ``UcError`` Unicorn
returns). A timeout runs the Machine in slices of instructions between checks of
the clock (the budget stays exact: a slice resumes in the middle of its block).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import tcg2wasm.unicorn.unicorn_const as U
import tcg2wasm.unicorn.x86_const as X
from tcg2wasm.abi import PAGE_BITS, PAGE_SIZE
from tcg2wasm.runtime.hooks import Arrival
from tcg2wasm.runtime.stops import StopReason
from tcg2wasm.unicorn.errors import UcError
from tcg2wasm.unicorn.hookset import MEM_WRITE, signed64

if TYPE_CHECKING:
    from tcg2wasm.unicorn.uc import Uc

__all__ = ["Runner"]

Next = tuple[int, Arrival] | None  # where to run on (and how it is reached), or None: emu_start is done
Outcome = Next | UcError

#: fault kind -> (Unicorn's access code, the hook type that handles it, the error without a hook)
_INVALID_MEMORY = {
    "READ_UNMAPPED": (U.UC_MEM_READ_UNMAPPED, U.UC_HOOK_MEM_READ_UNMAPPED, U.UC_ERR_READ_UNMAPPED),
    "WRITE_UNMAPPED": (U.UC_MEM_WRITE_UNMAPPED, U.UC_HOOK_MEM_WRITE_UNMAPPED, U.UC_ERR_WRITE_UNMAPPED),
    "FETCH_UNMAPPED": (U.UC_MEM_FETCH_UNMAPPED, U.UC_HOOK_MEM_FETCH_UNMAPPED, U.UC_ERR_FETCH_UNMAPPED),
    "READ_PROT": (U.UC_MEM_READ_PROT, U.UC_HOOK_MEM_READ_PROT, U.UC_ERR_READ_PROT),
    "WRITE_PROT": (U.UC_MEM_WRITE_PROT, U.UC_HOOK_MEM_WRITE_PROT, U.UC_ERR_WRITE_PROT),
    "FETCH_PROT": (U.UC_MEM_FETCH_PROT, U.UC_HOOK_MEM_FETCH_PROT, U.UC_ERR_FETCH_PROT),
}
_NEEDED_PERM = {"READ_PROT": U.UC_PROT_READ, "WRITE_PROT": U.UC_PROT_WRITE, "FETCH_PROT": U.UC_PROT_EXEC}
_CPU_EXCEPTIONS = {"DIVIDE": 0, "GP": 13}  # faults Unicorn reports through UC_HOOK_INTR
_DOUBLE_FAULT = 8  # what Unicorn reports next when the interrupt hook left rip alone (its IDT is empty)
_FIRST_SLICE = 1000  # instructions; then about _SLICE_SECONDS each (a hooked run may do only ~1e5/s)
_SLICE_SECONDS = 0.01


class Runner:
    """The ``emu_start`` of one Uc (module docstring)."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._machine = uc._machine  # noqa: SLF001 - the Uc's own machine
        self._hooks = uc._hookset  # noqa: SLF001

    def run(self, begin: int, until: int, timeout: int, count: int) -> UcError | None:
        """Run from ``begin`` until ``until``, ``count`` instructions, ``timeout`` µs or a stop (0: no limit)."""
        budget = count or None
        deadline = time.monotonic() + timeout / 1e6 if timeout else None
        stop_at = None if self._hooks.exits is not None else until
        pc, arrival = begin, Arrival.BLOCK
        slice_size = _FIRST_SLICE
        while True:
            n = budget if deadline is None else min(budget or slice_size, slice_size)
            started = time.monotonic()
            used, stop = self._run_once(pc, arrival, stop_at, n)
            if budget is not None:
                budget -= used
            if stop.kind == "count" and budget != 0 and deadline is not None:
                outcome: Outcome = (stop.pc, Arrival.CONTINUATION)  # a slice ended: go on mid-block
            else:
                outcome = self._after(stop)
            if outcome is None or isinstance(outcome, UcError):
                return outcome
            pc, arrival = outcome
            if deadline is not None:
                now = time.monotonic()
                if now >= deadline:
                    return None
                slice_size = _next_slice(slice_size, used, now - started)

    def _run_once(self, pc: int, arrival: Arrival, until: int | None, count: int | None) -> tuple[int, StopReason]:
        machine = self._machine
        before = machine.stats.guest_insns
        assert machine.hooks is not None
        machine.hooks.expect(pc, arrival)
        try:
            stop = machine.run(pc, until, count=count)
        finally:
            machine.hooks.expect(pc, None)
        return machine.stats.guest_insns - before, stop

    def _after(self, stop: StopReason) -> Outcome:
        match stop.kind:
            case "until" | "hlt" | "stop" | "count":
                return None
            case "syscall":
                return self._syscall(stop.pc)
            case "interrupt":
                return self._interrupt(stop)
            case "fault":
                return self._fault(stop)
        return UcError(U.UC_ERR_EXCEPTION, detail=stop.message)

    # -- syscall and interrupts ---------------------------------------------------------------
    def _syscall(self, next_pc: int) -> Next:
        """Syscall hooks see rip at the syscall; then Unicorn adds its length to whatever rip is (a write too)."""
        hooks = list(self._hooks.of_type(U.UC_HOOK_INSN, insn=X.UC_X86_INS_SYSCALL))
        if not hooks:
            return next_pc, Arrival.BLOCK  # no hook: a no-op, as in Unicorn
        uc = self._uc
        pc = self._machine.hooks.insn_before(next_pc) if self._machine.hooks is not None else next_pc - 2
        uc.set_rip(pc)
        for hook in hooks:
            if not hook.deleted:
                uc.call_back(hook.callback, hook.user_data)
            if uc.stop_requested:
                break
        rip = (uc.get_rip() + next_pc - pc) & (2**64 - 1)
        uc.set_rip(rip)
        return None if uc.stop_requested else (rip, Arrival.BLOCK)

    def _call_interrupt_hooks(self, intno: int) -> bool:
        """The interrupt hooks of ``intno``; whether one wrote rip."""
        uc = self._uc
        uc.rip_written = False
        for hook in self._hooks.of_type(U.UC_HOOK_INTR):
            uc.call_back(hook.callback, intno, hook.user_data)
            if uc.stop_requested:
                break
        return uc.rip_written

    def _interrupt(self, stop: StopReason) -> Outcome:
        """int n / int3 (rip past it): the hooks, then on at rip; without a hook Unicorn's UC_ERR_EXCEPTION."""
        if next(self._hooks.of_type(U.UC_HOOK_INTR), None) is None:
            return UcError(U.UC_ERR_EXCEPTION, detail=stop.message)
        self._call_interrupt_hooks(stop.vector or 0)
        return None if self._uc.stop_requested else (self._uc.get_rip(), Arrival.BLOCK)

    def _cpu_exception(self, vector: int, stop: StopReason) -> Outcome:
        """#DE, #GP: the hooks at the instruction; unless one moved rip, Unicorn reports a double fault, then stops."""
        if next(self._hooks.of_type(U.UC_HOOK_INTR), None) is None:
            return UcError(U.UC_ERR_EXCEPTION, detail=stop.message)
        for intno in (vector, _DOUBLE_FAULT):
            moved = self._call_interrupt_hooks(intno)
            if self._uc.stop_requested:
                return None
            if moved:
                return self._uc.get_rip(), Arrival.BLOCK
        return None

    # -- faults -----------------------------------------------------------------------------
    def _fault(self, stop: StopReason) -> Outcome:
        kind = stop.fault or ""
        if kind in _INVALID_MEMORY:
            return self._invalid_memory(stop, kind)
        if kind in _CPU_EXCEPTIONS:
            return self._cpu_exception(_CPU_EXCEPTIONS[kind], stop)
        if kind == "INVALID_OPCODE":
            return self._invalid_insn(stop)
        return UcError(U.UC_ERR_EXCEPTION, detail=stop.message)

    def _invalid_insn(self, stop: StopReason) -> Outcome:
        uc = self._uc
        handled = False
        for hook in self._hooks.of_type(U.UC_HOOK_INSN_INVALID):
            handled = bool(uc.call_back(hook.callback, hook.user_data))
            if handled or uc.stop_requested:
                break
        if not handled:
            return UcError(U.UC_ERR_INSN_INVALID, detail=stop.message)
        return None if uc.stop_requested else (uc.get_rip(), Arrival.BLOCK)

    def _access(self, stop: StopReason, kind: str) -> tuple[int, int, int]:
        """(start address, size, value) of the faulting access."""
        last = self._machine.memory.last_fault_access
        addr = stop.address or 0
        if kind.startswith("FETCH") or last is None or not last[0] <= addr < last[0] + last[1]:
            return addr, 1, 0
        return last[0], last[1], last[2]

    def _invalid_memory(self, stop: StopReason, kind: str) -> Outcome:
        """The invalid-memory hooks; True from one retries the access (Unicorn's order of hooks kept)."""
        uc = self._uc
        access, hook_type, error = _INVALID_MEMORY[kind]
        addr = stop.address or 0
        start, size, value = self._access(stop, kind)
        if kind.startswith("WRITE"):
            self._report_write_first(start, size, value)
        handled = False
        for hook in self._hooks.of_type(hook_type, addr):
            handled = bool(uc.call_back(hook.callback, access, addr, size, signed64(value), hook.user_data))
            if handled or uc.stop_requested:
                break
        if not handled:
            self._hooks.write_reported = None
            return UcError(error, detail=stop.message)
        if uc.stop_requested:
            return None
        problem = self._still_invalid(kind, addr)
        if problem is not None:
            self._hooks.write_reported = None
            return problem
        return stop.pc, Arrival.BLOCK if kind.startswith("FETCH") else Arrival.RETRY

    def _report_write_first(self, start: int, size: int, value: int) -> None:
        """Unicorn runs the write hooks of a store before finding its page invalid (and not again on the retry)."""
        hooks = list(self._hooks.of_type(MEM_WRITE, start))
        if not hooks:
            return
        uc = self._uc
        for hook in hooks:
            uc.call_back(hook.callback, U.UC_MEM_WRITE, start, size, signed64(value), hook.user_data)
            if uc.stop_requested:
                break
        self._hooks.write_reported = (start, size)

    def _still_invalid(self, kind: str, addr: int) -> UcError | None:
        """After a hook returned True: the access must now be possible (Unicorn: UC_ERR_MAP if still unmapped)."""
        page = self._machine.memory.page(addr)
        if page is None:
            return UcError(U.UC_ERR_MAP, detail=f"an invalid-memory hook returned True but {addr:#x} is still unmapped")
        needed = _NEEDED_PERM.get(kind)
        if needed is not None and not self._uc.page_perms(addr >> PAGE_BITS << PAGE_BITS) & needed:
            _, _, error = _INVALID_MEMORY[kind]
            return UcError(error, detail=f"an invalid-memory hook returned True but {addr:#x} still lacks the "
                                         "permission (Unicorn goes on regardless; tcg2wasm does not)")
        return None


def _next_slice(size: int, used: int, seconds: float) -> int:
    """The next slice: about ``_SLICE_SECONDS`` of execution at the rate the last one ran."""
    if used <= 0 or seconds <= 0:
        return size * 2
    return max(1000, min(1 << 26, int(used * _SLICE_SECONDS / seconds)))


assert PAGE_SIZE == 1 << PAGE_BITS
