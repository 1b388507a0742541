"""Unicorn behind the Machine API: the baseline engine for ``tcg2wasm run --engine unicorn``.

It runs with no per-block hooks (only a syscall hook), so its speed is
Unicorn's own. The user-mode layer (loader, stack, syscalls) is the same code
as for the wasm engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import unicorn as uc
import unicorn.x86_const as ux

from tcg2wasm.errors import GuestMemoryError, RegisterError
from tcg2wasm.ucadapter import ERROR_FAULTS, REG_IDS, new_uc, perms_from_uc, perms_to_uc

SYSCALL_LEN = 2  # 0f 05


def _uc_perms(perms: str) -> int:
    try:
        return perms_to_uc(perms)
    except ValueError as e:
        raise GuestMemoryError(str(e)) from None


@dataclass
class UnicornStats:
    run_seconds: float = 0.0
    syscalls: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class UnicornMachine:
    def __init__(self) -> None:
        self.uc = new_uc()
        self.syscall_handler: Callable[[UnicornMachine], None] | None = None
        self.stats = UnicornStats()
        self._pending: BaseException | None = None
        self._stopped_for: str | None = None
        self._in_syscall = False
        self.uc.hook_add(uc.UC_HOOK_INSN, self._on_syscall, None, 1, 0, ux.UC_X86_INS_SYSCALL)
        self.uc.hook_add(uc.UC_HOOK_INTR, self._on_interrupt)

    # -- memory -------------------------------------------------------------
    def mem_map(self, addr: int, size: int, perms: str = "rwx") -> None:
        try:
            self.uc.mem_map(addr, size, _uc_perms(perms))
        except uc.UcError as e:
            raise GuestMemoryError(f"mem_map(0x{addr:x}, 0x{size:x}): {e}") from None

    def mem_unmap(self, addr: int, size: int) -> None:
        try:
            self.uc.mem_unmap(addr, size)
        except uc.UcError as e:
            raise GuestMemoryError(f"mem_unmap(0x{addr:x}, 0x{size:x}): {e}") from None

    def mem_protect(self, addr: int, size: int, perms: str) -> None:
        try:
            self.uc.mem_protect(addr, size, _uc_perms(perms))
        except uc.UcError as e:
            raise GuestMemoryError(f"mem_protect(0x{addr:x}, 0x{size:x}): {e}") from None

    def mem_write(self, addr: int, data: bytes) -> None:
        try:
            self.uc.mem_write(addr, bytes(data))
        except uc.UcError as e:
            raise GuestMemoryError(f"mem_write(0x{addr:x}, {len(data)} bytes): {e}") from None

    def mem_read(self, addr: int, size: int) -> bytes:
        try:
            return bytes(self.uc.mem_read(addr, size))
        except uc.UcError as e:
            raise GuestMemoryError(f"mem_read(0x{addr:x}, {size}): {e}") from None

    def mem_regions(self) -> list[tuple[int, int, str]]:
        out = []
        for begin, end, prot in self.uc.mem_regions():
            out.append((begin, end - begin + 1, perms_from_uc(prot)))
        return sorted(out)

    # -- registers ------------------------------------------------------------
    def reg_read(self, name: str) -> int:
        if name not in REG_IDS:
            raise RegisterError(f"unknown register {name!r}")
        value = self.uc.reg_read(REG_IDS[name])
        if name == "rip" and self._in_syscall:
            value += SYSCALL_LEN  # Unicorn advances rip only after the hook; the wasm engine already has
        return value

    def reg_write(self, name: str, value: int) -> None:
        if name not in REG_IDS:
            raise RegisterError(f"unknown register {name!r}")
        self.uc.reg_write(REG_IDS[name], value)

    # -- execution ----------------------------------------------------------
    def _on_syscall(self, mu: uc.Uc, _user: object) -> None:
        self.stats.syscalls += 1
        if self.syscall_handler is None:
            self._stopped_for = "syscall"
            mu.emu_stop()
            return
        self._in_syscall = True
        try:
            self.syscall_handler(self)
        except BaseException as e:  # re-raised after emu_start returns
            self._pending = e
            mu.emu_stop()
        finally:
            self._in_syscall = False

    def _on_interrupt(self, mu: uc.Uc, intno: int, _user: object) -> None:
        self._stopped_for = f"interrupt {intno}"
        mu.emu_stop()

    def run(self, begin: int, until: int | None = None, count: int | None = None):
        from tcg2wasm.machine import StopReason

        self._pending, self._stopped_for = None, None
        start = time.perf_counter()
        try:
            self.uc.emu_start(begin, until if until is not None else (1 << 64) - 1, count=count or 0)
        except uc.UcError as e:
            pc = self.reg_read("rip")
            fault = ERROR_FAULTS.get(e.errno)
            kind = fault.name if fault is not None else ("EXCEPTION" if e.errno == uc.UC_ERR_EXCEPTION else str(e))
            return StopReason("fault", pc, fault=kind, message=f"{kind} at pc 0x{pc:x}: {e}")
        finally:
            self.stats.run_seconds += time.perf_counter() - start
        if self._pending is not None:
            raise self._pending
        pc = self.reg_read("rip")
        if self._stopped_for == "syscall":
            return StopReason("syscall", pc)
        if self._stopped_for:
            return StopReason("interrupt", pc, message=f"{self._stopped_for} at pc 0x{pc:x}")
        if until is not None and pc == until:
            return StopReason("until", pc)
        return StopReason("count", pc)
