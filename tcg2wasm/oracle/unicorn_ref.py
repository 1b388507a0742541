"""Run a state case in Unicorn: the reference the translated code is checked against.

:class:`UnicornRunner` owns one ``Uc`` set up from a case (mappings, registers,
FPU control word 0x37f and MXCSR 0x1f80 as Linux starts a process) and turns
every way Unicorn can stop — stop address, instruction count, memory fault,
CPU exception, ``syscall``, ``hlt`` — into the same stop dictionary the
``Machine`` produces (``kind``, ``pc``, ``fault``, ``address``, ``message``).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import iced_x86
from unicorn import UC_HOOK_BLOCK, UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, Uc, UcError
from unicorn import x86_const as X

from tcg2wasm.casefile import RESULT_REGS, VECTOR_REGS, Case, RunResult
from tcg2wasm.cpu_state import FPCW_DEFAULT, MXCSR_DEFAULT
from tcg2wasm.errors import CaseError
from tcg2wasm.ucadapter import (
    ACCESS_FAULTS,
    REG_IDS,
    VECTOR_FAULTS,
    fault_of_error,
    flush_translations,
    new_uc,
    perms_to_uc,
)

DEFAULT_RFLAGS = 0x2
NO_UNTIL = (1 << 64) - 1  # an address a run never reaches: "no stop address"


def make_stop(kind: str, pc: int, fault: str | None = None, address: int | None = None, message: str = "",
              vector: int | None = None) -> dict:
    """A stop in the JSON form shared by all engines (the fields of ``tcg2wasm.machine.StopReason``)."""
    return {"kind": kind, "pc": pc, "fault": fault, "address": address, "message": message, "vector": vector}


@lru_cache(maxsize=65536)
def count_insns(code: bytes, addr: int) -> int:
    """Instructions in a decoded run of bytes (Unicorn's block hook reports bytes, not instructions)."""
    dec = iced_x86.Decoder(64, code, ip=addr)
    n = 0
    for _ in dec:
        n += 1
    return n


class UnicornRunner:
    """A Unicorn instance holding one case's state, runnable in steps."""

    def __init__(self, case: Case, *, count_insns: bool = True, reusable: bool = False) -> None:
        self.case = case
        self.uc = new_uc()
        self.guest_insns = 0
        self._last_block: tuple[int, int] = (0, 0)  # (addr, instructions) of the block entered last
        self._last_block_end = 0  # end address of the block entered last (to recognise hlt)
        self.count_insns = count_insns
        self._pending: dict | None = None
        self._block_insns: dict[tuple[int, int], int] = {}
        self._load(case)
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_mem_invalid)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self.uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        if count_insns:
            self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)
        self._fresh_context: Any = None  # the CPU state as created, for reload()
        if reusable:
            self._fresh_context = self.uc.context_save()

    # -- state -------------------------------------------------------------------------------

    def _load(self, case: Case) -> None:
        for r in case.memory:
            try:
                self.uc.mem_map(r.addr, r.size, perms_to_uc(r.perms))
            except UcError as e:  # a 64 GiB mapping: UC_ERR_NOMEM (a traceback before; found by fuzz files)
                raise CaseError(f"{case.source}: case {case.name!r}: Unicorn cannot map 0x{r.size:x} bytes at "
                                f"0x{r.addr:x}: {e}") from None
            if r.data:
                self.uc.mem_write(r.addr, r.data)
        self.uc.reg_write(REG_IDS["rflags"], DEFAULT_RFLAGS)
        self.write_regs(case.regs)

    def reload(self, case: Case) -> None:
        """Give this runner another case of the same memory layout (addresses, sizes, perms) to run.

        Memory is rewritten whole, every register reset to the case's (or the start-up default),
        and Unicorn's translation cache flushed: reusing a ``Uc`` is much cheaper than creating one.
        """
        if [(r.addr, r.size, r.perms) for r in case.memory] != [(r.addr, r.size, r.perms) for r in self.case.memory]:
            raise ValueError(f"{case.name}: reload needs the same memory layout")
        if self._fresh_context is None:
            raise ValueError("reload needs a runner created with reusable=True")
        self.case = case
        self.guest_insns = 0
        self._pending = None
        self._last_block = (0, 0)
        self._block_insns.clear()
        for r in case.memory:
            self.uc.mem_write(r.addr, r.data + bytes(r.size - len(r.data)))
        flush_translations(self.uc)
        # the whole CPU state as created: after a CPU exception QEMU keeps exception state
        # (a second exception then becomes a double fault, vector 8) unless it is reset
        self.uc.context_restore(self._fresh_context)
        defaults = {name: 0 for name in REG_IDS}
        defaults |= {"fpcw": FPCW_DEFAULT, "mxcsr": MXCSR_DEFAULT, "rflags": DEFAULT_RFLAGS}
        self.write_regs(defaults | case.regs)

    def write_regs(self, regs: dict[str, int]) -> None:
        for name, value in regs.items():
            self.uc.reg_write(REG_IDS[name], value)

    def read_regs(self, names: tuple[str, ...] = RESULT_REGS + VECTOR_REGS) -> dict[str, int]:
        return {name: self.uc.reg_read(REG_IDS[name]) for name in names}

    def writable_memory(self) -> list[tuple[int, bytes]]:
        return [(r.addr, bytes(self.uc.mem_read(r.addr, r.size))) for r in self.case.memory if "w" in r.perms]

    def read_code(self, addr: int, size: int = 15) -> bytes:
        """Up to ``size`` bytes at ``addr`` for messages; empty if unmapped."""
        for n in (size, 1):
            try:
                return bytes(self.uc.mem_read(addr, n))
            except UcError:
                continue
        return b""

    # -- hooks -------------------------------------------------------------------------------

    def _on_block(self, uc: Uc, addr: int, size: int, _data: Any) -> None:
        n = self._block_insns.get((addr, size))
        if n is None:  # decode each block once (self-modifying code would be miscounted)
            n = self._block_insns[addr, size] = count_insns(bytes(uc.mem_read(addr, size)), addr)
        self.guest_insns += n
        self._last_block = (addr, n)
        self._last_block_end = addr + size

    def _on_block_end(self, _uc: Uc, addr: int, size: int, _data: Any) -> None:
        self._last_block_end = addr + size

    def _correct_count(self, stop: dict) -> None:
        """The block hook counted the whole last block; take back what a fault cut off.

        A fault's pc is the faulting instruction (not executed); the other stops
        report the next pc, and all of the block up to it ran.
        """
        addr, n = self._last_block
        pc = stop["pc"]
        if n == 0 or not addr <= pc < addr + 4096:
            return
        ran = count_insns(self.read_code(addr, pc - addr), addr) if pc > addr else 0
        self.guest_insns -= max(0, n - ran)

    def _on_mem_invalid(self, uc: Uc, access: int, addr: int, _size: int, _value: int, _data: Any) -> bool:
        fault = ACCESS_FAULTS.get(access)
        kind = fault.name if fault is not None else f"MEM_{access}"
        pc = addr if kind.startswith("FETCH") else uc.reg_read(X.UC_X86_REG_RIP)
        self._pending = make_stop("fault", pc, kind, addr)
        return False

    def _on_interrupt(self, uc: Uc, vector: int, _data: Any) -> None:
        rip = uc.reg_read(X.UC_X86_REG_RIP)
        if vector in VECTOR_FAULTS:
            self._pending = make_stop("fault", rip, VECTOR_FAULTS[vector].name)
        else:
            self._pending = make_stop("interrupt", rip, vector=vector)  # a trap: rip is the next instruction
        uc.emu_stop()

    def _on_syscall(self, uc: Uc, _data: Any) -> None:
        self._pending = make_stop("syscall", 0)  # pc: rip after the stop, the next instruction
        uc.emu_stop()

    # -- running -----------------------------------------------------------------------------

    def run(self, begin: int, until: int | None = None, count: int | None = None) -> dict:
        """Run from ``begin``; returns the stop dictionary (``kind`` as in Machine.StopReason)."""
        self._pending = None
        self._last_block_end = 0
        # With a count, Unicorn stops silently both when the count runs out and on hlt: a block
        # hook tells them apart. Without one, a silent stop short of `until` can only be hlt.
        tail_hook = self.uc.hook_add(UC_HOOK_BLOCK, self._on_block_end) if count and not self.count_insns else None
        try:
            self.uc.emu_start(begin, NO_UNTIL if until is None else until, 0, count or 0)
        except UcError as e:
            return self._stop_after_error(e)
        finally:
            if tail_hook is not None:
                self.uc.hook_del(tail_hook)
        rip = self.uc.reg_read(X.UC_X86_REG_RIP)
        if self._pending is not None:
            stop = self._pending
            if stop["kind"] == "syscall":
                stop["pc"] = rip
        elif until is not None and rip == until:
            stop = make_stop("until", rip)
        elif self._just_halted(rip, counted=bool(count)):
            stop = make_stop("hlt", rip)
        else:
            stop = make_stop("count", rip)
        return self._finish(stop)

    def _just_halted(self, rip: int, counted: bool) -> bool:
        if counted and self._last_block_end != rip:
            return False  # the last block did not end right before rip: the count ran out
        return self.read_code(rip - 1, 1) == b"\xf4"

    def _stop_after_error(self, e: UcError) -> dict:
        rip = self.uc.reg_read(X.UC_X86_REG_RIP)
        if self._pending is not None:
            return self._finish(self._pending)
        kind = fault_of_error(e)
        if kind is not None:
            return self._finish(make_stop("fault", rip, kind.name))
        return self._finish(make_stop("fault", rip, "UNICORN_ERROR", message=str(e)))

    def _finish(self, stop: dict) -> dict:
        if stop["kind"] != "until":
            self._correct_count(stop)
        self._last_block = (0, 0)
        return self._describe(stop)

    def _describe(self, stop: dict) -> dict:
        if stop["message"]:
            return stop
        code = self.read_code(stop["pc"], 8)
        detail = stop["fault"] or (f"0x{stop['vector']:x}" if stop["vector"] is not None else "")
        text = f"{stop['kind']} {detail} at pc 0x{stop['pc']:x}" if detail else f"{stop['kind']} at pc 0x{stop['pc']:x}"
        if code:
            text += f" (bytes {code.hex(' ')})"
        if stop["kind"] == "fault" and stop["address"] is not None:
            text += f", address 0x{stop['address']:x}"
        stop["message"] = text
        return stop


def run_unicorn(case: Case, *, count_insns: bool = True) -> RunResult:
    """Run ``case`` in Unicorn to its stop condition.

    ``count_insns`` adds a block hook to report ``guest_insns`` (a block that
    faults half-way counts whole); without it Unicorn runs at full speed and
    ``guest_insns`` is ``None`` unless the case stops on a count.
    """
    runner = UnicornRunner(case, count_insns=count_insns)
    t0 = time.perf_counter()
    stop = runner.run(case.entry, until=case.stop.until, count=case.stop.count)
    seconds = time.perf_counter() - t0
    insns: int | None = runner.guest_insns if count_insns else None
    if case.stop.count is not None and stop["kind"] == "count":
        insns = case.stop.count
    return RunResult(
        name=case.name,
        engine="unicorn",
        regs=runner.read_regs(),
        memory=runner.writable_memory(),
        stop=stop,
        stats={"guest_insns": insns, "fallback_insns": 0, "run_seconds": seconds},
    )
