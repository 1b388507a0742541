"""Unicorn's x86 register ids over the Machine's registers, with Unicorn's rules for each.

The rules are Unicorn 2.1.4's, as measured (tests/test_unicorn_api.py): a value
is cut to the register's width (no error for a wider one, a negative one is two's
complement); a 32-, 16- or 8-bit view writes only its bits (eax keeps rax's upper
half -- unlike the instruction); eip, eflags and flags replace the whole register;
rflags holds 32 bits; the segment selectors read as 0 in 64-bit mode. MSRs are
reached with ``UC_X86_REG_MSR`` and the MSR number (fs/gs base, EFER, TSC).
Registers the Machine does not model (x87 data, AVX, control and descriptor
registers) raise ``UC_ERR_ARG``, which Unicorn 2.2 does for registers it lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tcg2wasm.unicorn.x86_const as X
from tcg2wasm.runtime.registers import REGISTERS, SUBREGISTERS
from tcg2wasm.unicorn.errors import UcError
from tcg2wasm.unicorn.unicorn_const import UC_ERR_ARG

__all__ = ["MSR_EFER", "MSR_FS_BASE", "MSR_GS_BASE", "MSR_TSC", "RIP_IDS", "RegAccess", "register_access"]

MSR_TSC = 0x10
MSR_EFER = 0xC000_0080
MSR_FS_BASE = 0xC000_0100
MSR_GS_BASE = 0xC000_0101
EFER_64BIT = 0x500  # LME | LMA: what Unicorn's x86-64 CPU reads (the Machine is always in long mode)

_WIDTH = {name: 64 for name in REGISTERS} | {f"xmm{i}": 128 for i in range(16)} | {"fpcw": 16, "mxcsr": 32}
_SELECTORS = ("cs", "ds", "es", "fs", "gs", "ss")
#: Register ids whose write moves rip (a write inside a hook redirects execution, as in Unicorn).
RIP_IDS = frozenset({X.UC_X86_REG_RIP, X.UC_X86_REG_EIP, X.UC_X86_REG_IP})


class Registers:
    """What a register access reads and writes: the Machine, or a saved context (``reg_read``/``reg_write``)."""

    def read(self, name: str) -> int:
        raise NotImplementedError

    def write(self, name: str, value: int) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class RegAccess:
    """How one Unicorn register id reads and writes (names as ``tcg2wasm.runtime.registers`` has them)."""

    name: str
    read: Callable[[Registers], int]
    write: Callable[[Registers, int], None]


def _field(name: str) -> RegAccess:
    full, _, bits = SUBREGISTERS.get(name, (name, 0, _WIDTH.get(name, 64)))
    mask = (1 << bits) - 1
    return RegAccess(name, lambda regs: regs.read(name), lambda regs, value: regs.write(name, value & mask))


def _whole(name: str, full: str, bits: int) -> RegAccess:
    """A view whose write replaces the whole register (eip, eflags, flags; rflags keeps 32 bits)."""
    mask = (1 << bits) - 1
    return RegAccess(name, lambda regs: regs.read(full) & mask, lambda regs, value: regs.write(full, value & mask))


def _ip() -> RegAccess:
    def write(regs: Registers, value: int) -> None:
        regs.write("rip", (regs.read("rip") & ~0xFFFF) | (value & 0xFFFF))

    return RegAccess("ip", lambda regs: regs.read("rip") & 0xFFFF, write)


def _selector(name: str) -> RegAccess:
    def write(regs: Registers, value: int) -> None:
        if value & 0xFFFF:
            raise UcError(UC_ERR_ARG, detail=f"reg_write({name}): segment selectors are not modelled (always 0)")

    return RegAccess(name, lambda regs: 0, write)


def _table() -> dict[int, RegAccess]:
    table: dict[int, RegAccess] = {}
    for const, reg_id in vars(X).items():
        if not const.startswith("UC_X86_REG_"):
            continue
        name = const[len("UC_X86_REG_"):].lower()
        if name in REGISTERS or name in SUBREGISTERS:
            table[reg_id] = _field(name)
        elif name in _SELECTORS:
            table[reg_id] = _selector(name)
    table[X.UC_X86_REG_EIP] = _whole("eip", "rip", 32)
    table[X.UC_X86_REG_IP] = _ip()
    table[X.UC_X86_REG_RFLAGS] = _whole("rflags", "rflags", 32)
    table[X.UC_X86_REG_EFLAGS] = _whole("eflags", "rflags", 32)
    table[X.UC_X86_REG_FLAGS] = _whole("flags", "rflags", 16)
    return table


_TABLE = _table()
_ID_NAMES = {v: k for k, v in vars(X).items() if k.startswith("UC_X86_REG_")}


def register_access(reg_id: object) -> RegAccess:
    """The access of register ``reg_id``; ``UcError(UC_ERR_ARG)`` for one the Machine does not model."""
    access = _TABLE.get(reg_id) if isinstance(reg_id, int) and not isinstance(reg_id, bool) else None
    if access is None:
        name = _ID_NAMES.get(reg_id) if isinstance(reg_id, int) else None
        what = f"{name} is not modelled by tcg2wasm" if name else f"{reg_id!r} is not an x86 register id"
        raise UcError(UC_ERR_ARG, reg_id, detail=f"register {what} (docs/unicorn-api.md lists the registers)")
    return access


def register_name(reg_id: int) -> str:
    return _ID_NAMES.get(reg_id, str(reg_id))
