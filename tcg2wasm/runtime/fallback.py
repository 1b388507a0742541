"""Unicorn as the fallback executor: one guest instruction the lifter does not cover.

The Unicorn instance lives as long as the machine (so x87/SSE state the IR does
not model yet persists between fallback instructions). It shares the guest
pages themselves: every run of guest pages contiguous in guest and host memory
is mapped with ``mem_map_ptr`` onto the wasm linear memory, so nothing is
copied. Only registers are synchronised, before and after each instruction;
among them the x87 control word ``fpcw``, guest state of ours since fldcw is
lifted, so that x87 arithmetic in Unicorn rounds as the program asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from unicorn import UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_HOOK_MEM_WRITE, Uc, UcError

from tcg2wasm import abi
from tcg2wasm.abi import MASK64, Excp
from tcg2wasm.runtime.memory import GuestMemory, HostRun, format_perms
from tcg2wasm.ucadapter import (
    ACCESS_FAULTS,
    FULL_REGS,
    VECTOR_FAULTS,
    fault_of_error,
    new_uc,
    perms_to_uc,
    read_regs,
    write_regs,
)


@dataclass
class StepResult:
    """Outcome of one fallback instruction: new registers, or why it stopped."""

    regs: dict[str, int] | None  # None when the instruction did not complete
    fault: Excp = Excp.NONE
    address: int | None = None
    vector: int | None = None  # software interrupt number (int n, int3)
    error: str = ""


class UnicornFallback:
    """Runs single instructions in Unicorn over the guest pages of a ``GuestMemory``."""

    def __init__(self, memory: GuestMemory, host_base: Callable[[], int]) -> None:
        self._memory = memory
        self._host_base = host_base
        self.uc = new_uc()
        self._mapped: dict[int, tuple[int, int, int]] = {}  # guest addr -> (size, uc perms, host ptr)
        self.layout_dirty = True
        self._fault: tuple[Excp, int] | None = None
        self._vector: int | None = None
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        self.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_write)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)

    # -- hooks ------------------------------------------------------------------
    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, data: object) -> bool:
        self._fault = (ACCESS_FAULTS.get(access, Excp.READ_UNMAPPED), address & MASK64)
        return False

    def _on_write(self, uc: Uc, access: int, address: int, size: int, value: int, data: object) -> None:
        self._memory.invalidate_range(address, size)  # a write into translated code

    def _on_interrupt(self, uc: Uc, vector: int, data: object) -> None:
        self._vector = vector
        uc.emu_stop()

    # -- memory layout ----------------------------------------------------------
    def sync_layout(self) -> None:
        """Make Unicorn's mappings equal the guest's host runs (unmapping/mapping whole runs only)."""
        base = self._host_base()
        wanted: dict[int, tuple[int, int, int]] = {
            run.addr: (run.size, perms_to_uc(format_perms(run.perms)), base + run.host)
            for run in self._memory.host_runs()
        }
        for addr, spec in sorted(self._mapped.items()):
            if wanted.get(addr) != spec:
                self.uc.mem_unmap(addr, spec[0])
                del self._mapped[addr]
        for addr, spec in sorted(wanted.items()):
            if addr not in self._mapped:
                size, perms, ptr = spec
                self.uc.mem_map_ptr(addr, size, perms, ptr)
                self._mapped[addr] = spec
        self.layout_dirty = False

    def mapped_runs(self) -> list[HostRun]:
        base = self._host_base()
        return [HostRun(a, s, p, ptr - base) for a, (s, p, ptr) in sorted(self._mapped.items())]

    # -- execution --------------------------------------------------------------
    def step(self, regs: dict[str, int]) -> StepResult:
        """Execute the one instruction at ``regs["rip"]``."""
        if self.layout_dirty:
            self.sync_layout()
        write_regs(self.uc, {name: regs[name] for name in FULL_REGS})
        rip = regs["rip"]
        self.uc.ctl_remove_cache(rip, min(rip + 16, MASK64))  # the bytes may have changed since last time
        self._fault, self._vector = None, None
        try:
            self.uc.emu_start(rip, MASK64, count=1)
        except UcError as e:
            if self._fault is not None:
                return StepResult(None, self._fault[0], self._fault[1], error=str(e))
            kind = fault_of_error(e)
            return StepResult(None, Excp.GP if kind is None else kind, error=str(e))
        if self._vector is not None:
            fault = VECTOR_FAULTS.get(self._vector)
            if fault is not None:
                return StepResult(None, fault, error=f"cpu exception vector {self._vector}")
            return StepResult(None, vector=self._vector)
        out = read_regs(self.uc)
        if out["fpcw"] != regs["fpcw"]:  # loaded (fldenv, frstor, fxrstor...): reserved bits as on the CPU
            out["fpcw"] = abi.fpcw_as_loaded(out["fpcw"])
        return StepResult(out)


_CPUID_CODE_ADDR = 0x1000


@lru_cache(maxsize=256)
def unicorn_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) Unicorn's CPU model answers for cpuid(leaf, subleaf): a fixed, deterministic model."""
    uc = new_uc()
    uc.mem_map(_CPUID_CODE_ADDR, abi.PAGE_SIZE)
    uc.mem_write(_CPUID_CODE_ADDR, b"\x0f\xa2")
    write_regs(uc, {"rax": leaf, "rcx": subleaf})
    uc.emu_start(_CPUID_CODE_ADDR, _CPUID_CODE_ADDR + 2)
    out = read_regs(uc, ("rax", "rbx", "rcx", "rdx"))
    eax, ebx, ecx, edx = (out[r] & 0xFFFF_FFFF for r in ("rax", "rbx", "rcx", "rdx"))
    return eax, ebx, ecx, edx
