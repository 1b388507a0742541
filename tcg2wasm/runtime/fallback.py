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

from unicorn import (
    UC_ARCH_X86,
    UC_ERR_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_MEM_WRITE,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_READ_PROT,
    UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    UC_MODE_64,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import x86_const as X

from tcg2wasm import abi
from tcg2wasm.ir.ops import MASK64, Excp
from tcg2wasm.runtime.memory import PERM_R, PERM_W, PERM_X, GuestMemory, HostRun

LINUX_FPCW = abi.FPCW_DEFAULT
LINUX_MXCSR = abi.MXCSR_DEFAULT
SYNC_REGS: dict[str, int] = {name: getattr(X, f"UC_X86_REG_{name.upper()}") for name in abi.GPR_NAMES}
SYNC_REGS |= {"rip": X.UC_X86_REG_RIP, "rflags": X.UC_X86_REG_RFLAGS,
              "fs_base": X.UC_X86_REG_FS_BASE, "gs_base": X.UC_X86_REG_GS_BASE, "mxcsr": X.UC_X86_REG_MXCSR,
              "fpcw": X.UC_X86_REG_FPCW}
SYNC_REGS |= {name: getattr(X, f"UC_X86_REG_{name.upper()}") for name in abi.XMM_NAMES}
_MEM_FAULTS: dict[int, Excp] = {
    UC_MEM_READ_UNMAPPED: Excp.READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED: Excp.WRITE_UNMAPPED,
    UC_MEM_FETCH_UNMAPPED: Excp.FETCH_UNMAPPED, UC_MEM_READ_PROT: Excp.READ_PROT,
    UC_MEM_WRITE_PROT: Excp.WRITE_PROT, UC_MEM_FETCH_PROT: Excp.FETCH_PROT,
}
#: CPU exception vectors that are faults of the instruction (else: a software interrupt).
_VECTOR_FAULTS: dict[int, Excp] = {0: Excp.DIVIDE, 6: Excp.INVALID_OPCODE, 13: Excp.GP}


@dataclass
class StepResult:
    """Outcome of one fallback instruction: new registers, or why it stopped."""

    regs: dict[str, int] | None  # None when the instruction did not complete
    fault: Excp = Excp.NONE
    address: int | None = None
    vector: int | None = None  # software interrupt number (int n, int3)
    error: str = ""


def _uc_perms(bits: int) -> int:
    return ((UC_PROT_READ if bits & PERM_R else 0) | (UC_PROT_WRITE if bits & PERM_W else 0)
            | (UC_PROT_EXEC if bits & PERM_X else 0))


class UnicornFallback:
    """Runs single instructions in Unicorn over the guest pages of a ``GuestMemory``."""

    def __init__(self, memory: GuestMemory, host_base: Callable[[], int]) -> None:
        self._memory = memory
        self._host_base = host_base
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uc.reg_write(X.UC_X86_REG_FPCW, LINUX_FPCW)
        self.uc.reg_write(X.UC_X86_REG_MXCSR, LINUX_MXCSR)
        self._mapped: dict[int, tuple[int, int, int]] = {}  # guest addr -> (size, uc perms, host ptr)
        self.layout_dirty = True
        self._fault: tuple[Excp, int] | None = None
        self._vector: int | None = None
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        self.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_write)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)

    # -- hooks ------------------------------------------------------------------
    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, data: object) -> bool:
        self._fault = (_MEM_FAULTS.get(access, Excp.READ_UNMAPPED), address & MASK64)
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
            run.addr: (run.size, _uc_perms(run.perms), base + run.host) for run in self._memory.host_runs()
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
        for name, reg in SYNC_REGS.items():
            self.uc.reg_write(reg, regs[name])
        rip = regs["rip"]
        self.uc.ctl_remove_cache(rip, min(rip + 16, MASK64))  # the bytes may have changed since last time
        self._fault, self._vector = None, None
        try:
            self.uc.emu_start(rip, MASK64, count=1)
        except UcError as e:
            if self._fault is not None:
                return StepResult(None, self._fault[0], self._fault[1], error=str(e))
            return StepResult(None, Excp.INVALID_OPCODE if e.errno == UC_ERR_INSN_INVALID else Excp.GP, error=str(e))
        if self._vector is not None:
            fault = _VECTOR_FAULTS.get(self._vector)
            if fault is not None:
                return StepResult(None, fault, error=f"cpu exception vector {self._vector}")
            return StepResult(None, vector=self._vector)
        out = {name: self.uc.reg_read(reg) for name, reg in SYNC_REGS.items()}
        if out["fpcw"] != regs["fpcw"]:  # loaded (fldenv, frstor, fxrstor...): reserved bits as on the CPU
            out["fpcw"] = abi.fpcw_as_loaded(out["fpcw"])
        return StepResult(out)


_CPUID_CODE_ADDR = 0x1000


@lru_cache(maxsize=256)
def unicorn_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) Unicorn's CPU model answers for cpuid(leaf, subleaf): a fixed, deterministic model."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(_CPUID_CODE_ADDR, abi.PAGE_SIZE)
    uc.mem_write(_CPUID_CODE_ADDR, b"\x0f\xa2")
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, subleaf)
    uc.emu_start(_CPUID_CODE_ADDR, _CPUID_CODE_ADDR + 2)
    regs = (X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX)
    eax, ebx, ecx, edx = (uc.reg_read(r) & 0xFFFF_FFFF for r in regs)
    return eax, ebx, ecx, edx
