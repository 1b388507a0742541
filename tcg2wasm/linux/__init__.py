"""Linux user mode: load a static x86-64 ELF, build its start-up stack, serve its system calls."""

from tcg2wasm.linux.process import GuestExit, Process, run_program

__all__ = ["GuestExit", "Process", "run_program"]
