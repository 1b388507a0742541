"""A guest process: ELF image, start-up stack, system calls, run to exit on a chosen engine."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tcg2wasm.linux.elf import load_elf
from tcg2wasm.linux.stack import build_stack
from tcg2wasm.linux.syscalls import GuestExit, LinuxSyscalls

__all__ = ["GuestExit", "Process", "ProcessResult", "run_program"]

SIGILL, SIGTRAP, SIGFPE, SIGSEGV = 4, 5, 8, 11
#: The signal the kernel would deliver for each fault kind; a shell reports 128 + signal.
FAULT_SIGNALS = {"INVALID_OPCODE": SIGILL, "UNSUPPORTED": SIGILL, "DIVIDE": SIGFPE}


def make_cpu(engine: str):
    """A CPU with the Machine API: tcg2wasm's wasm or interp engine, or plain Unicorn."""
    if engine == "unicorn":
        from tcg2wasm.oracle.uc_machine import UnicornMachine
        return UnicornMachine()
    from tcg2wasm import Machine
    default_tier = "unicorn" if importlib.util.find_spec("unicorn") is not None else "interp"  # pip uninstall unicorn
    return Machine(engine=engine, cold_tier=os.environ.get("TCG2WASM_COLD_TIER", default_tier), translation_cache=True)


@dataclass
class ProcessResult:
    status: int  # exit status, or 128 + signal-like code when the guest crashed
    message: str = ""  # why the guest stopped, when it did not exit by itself
    stats: dict = field(default_factory=dict)


class Process:
    def __init__(self, path: str, argv: list[str], env: list[str] | None = None, engine: str = "wasm") -> None:
        self.cpu = make_cpu(engine)
        self.image = load_elf(self.cpu, path)
        envp = env if env is not None else [f"{k}={v}" for k, v in os.environ.items()]
        rsp = build_stack(self.cpu, self.image, argv, envp, hwcap=getattr(self.cpu, "hwcap", 0))
        self.cpu.reg_write("rsp", rsp)
        self.syscalls = LinuxSyscalls(self.cpu, self.image.brk)
        self.cpu.syscall_handler = self.syscalls.handle

    def run(self) -> ProcessResult:
        pc = self.image.entry
        try:
            while True:
                reason = self.cpu.run(pc)
                if reason.kind in ("fault", "hlt", "interrupt"):
                    return ProcessResult(128 + _signal_for(reason), reason.message, self._stats())
                pc = reason.pc
        except GuestExit as e:
            return ProcessResult(e.status, "", self._stats())

    def _stats(self) -> dict:
        stats = self.cpu.stats.as_dict() if hasattr(self.cpu.stats, "as_dict") else dict(self.cpu.stats)
        stats["syscalls"] = dict(sorted(self.syscalls.counts.items()))
        return stats


def _signal_for(reason) -> int:
    """hlt is privileged (SIGSEGV in user mode), int3 traps (SIGTRAP), other faults by kind."""
    if reason.kind == "interrupt":
        return SIGTRAP if reason.vector == 3 else SIGSEGV
    return FAULT_SIGNALS.get(reason.fault or "", SIGSEGV)


def run_program(path: str, args: list[str], engine: str = "wasm") -> ProcessResult:
    """Run a static x86-64 Linux program to completion, passing stdio through."""
    sys.stdout.flush()
    return Process(path, [str(Path(path)), *args] if not args or args[0] != path else args, engine=engine).run()
