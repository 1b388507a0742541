"""The one place that speaks Unicorn: register ids, permissions, errors as fault kinds, a Linux-like reset.

Everything in tcg2wasm that drives Unicorn -- the fallback executor, the reference
runner and the ``--engine unicorn`` machine of the oracle, the trace recorder and
the tests -- translates between Unicorn's numbers and ours through this module,
so a register, a permission or an error means the same everywhere.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable, Mapping

import unicorn as uc
import unicorn.x86_const as ux

from tcg2wasm.abi import Excp
from tcg2wasm.cpu_state import FPCW_DEFAULT, GPR_NAMES, MXCSR_DEFAULT, XMM_NAMES

__all__ = [
    "ACCESS_FAULTS", "ERROR_FAULTS", "FULL_REGS", "REG_IDS", "VECTOR_FAULTS", "cpuid_of_unicorn", "fault_of_error",
    "flush_translations",
    "new_uc",
    "perms_from_uc", "perms_to_uc", "read_regs", "StateSync", "write_regs",
]

#: Our register names -> Unicorn register ids (every register the Machine's state holds in full).
REG_IDS: dict[str, int] = {name: getattr(ux, f"UC_X86_REG_{name.upper()}") for name in GPR_NAMES}
REG_IDS |= {
    "rip": ux.UC_X86_REG_RIP, "rflags": ux.UC_X86_REG_RFLAGS,
    "fs_base": ux.UC_X86_REG_FS_BASE, "gs_base": ux.UC_X86_REG_GS_BASE,
    "mxcsr": ux.UC_X86_REG_MXCSR, "fpcw": ux.UC_X86_REG_FPCW,
}
REG_IDS |= {name: getattr(ux, f"UC_X86_REG_{name.upper()}") for name in XMM_NAMES}
#: The registers a fallback step or an engine switch carries across (all of REG_IDS).
FULL_REGS: tuple[str, ...] = tuple(REG_IDS)

_PERM_BITS = (("r", uc.UC_PROT_READ), ("w", uc.UC_PROT_WRITE), ("x", uc.UC_PROT_EXEC))

#: Unicorn's invalid-access kinds (UC_MEM_*, as a memory hook sees them) -> our fault kinds.
ACCESS_FAULTS: dict[int, Excp] = {
    uc.UC_MEM_READ_UNMAPPED: Excp.READ_UNMAPPED, uc.UC_MEM_WRITE_UNMAPPED: Excp.WRITE_UNMAPPED,
    uc.UC_MEM_FETCH_UNMAPPED: Excp.FETCH_UNMAPPED, uc.UC_MEM_READ_PROT: Excp.READ_PROT,
    uc.UC_MEM_WRITE_PROT: Excp.WRITE_PROT, uc.UC_MEM_FETCH_PROT: Excp.FETCH_PROT,
}
#: Unicorn's errors (UcError.errno, as emu_start raises them) -> our fault kinds.
ERROR_FAULTS: dict[int, Excp] = {
    uc.UC_ERR_READ_UNMAPPED: Excp.READ_UNMAPPED, uc.UC_ERR_WRITE_UNMAPPED: Excp.WRITE_UNMAPPED,
    uc.UC_ERR_FETCH_UNMAPPED: Excp.FETCH_UNMAPPED, uc.UC_ERR_READ_PROT: Excp.READ_PROT,
    uc.UC_ERR_WRITE_PROT: Excp.WRITE_PROT, uc.UC_ERR_FETCH_PROT: Excp.FETCH_PROT,
    uc.UC_ERR_INSN_INVALID: Excp.INVALID_OPCODE,
}
#: CPU exception vectors (as an interrupt hook sees them) that are faults of the instruction, not traps.
VECTOR_FAULTS: dict[int, Excp] = {0: Excp.DIVIDE, 6: Excp.INVALID_OPCODE, 13: Excp.GP}


def new_uc() -> uc.Uc:
    """An x86-64 Unicorn with the x87 control word and MXCSR Linux starts a process with.

    Unicorn itself starts with both at 0 (every exception unmasked, round to nearest).
    """
    mu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64)
    mu.reg_write(ux.UC_X86_REG_FPCW, FPCW_DEFAULT)
    mu.reg_write(ux.UC_X86_REG_MXCSR, MXCSR_DEFAULT)
    return mu


def perms_to_uc(perms: str) -> int:
    """``"rwx"``-style permissions -> UC_PROT_* bits (a letter outside "rwx" raises ValueError)."""
    bits = 0
    for letter in perms:
        bit = dict(_PERM_BITS).get(letter)
        if bit is None:
            raise ValueError(f"bad permission {letter!r} in {perms!r} (use a subset of 'rwx')")
        bits |= bit
    return bits


def perms_from_uc(bits: int) -> str:
    return "".join(letter for letter, bit in _PERM_BITS if bits & bit)


def fault_of_error(error: uc.UcError) -> Excp | None:
    """The fault kind a UcError stands for, or None if it is not a guest fault."""
    return ERROR_FAULTS.get(error.errno)


def read_regs(mu: uc.Uc, names: Iterable[str] = FULL_REGS) -> dict[str, int]:
    """Registers by our names, in one batched call (the x86 ``Uc`` subclass has the batch calls)."""
    names = tuple(names)
    values = mu.reg_read_batch([REG_IDS[name] for name in names])  # type: ignore[attr-defined]
    return dict(zip(names, values, strict=True))


def write_regs(mu: uc.Uc, regs: Mapping[str, int]) -> None:
    mu.reg_write_batch([(REG_IDS[name], value) for name, value in regs.items()])  # type: ignore[attr-defined]


def flush_translations(mu: uc.Uc) -> None:
    """Drop every block Unicorn has translated (its instruction counts are exact only on fresh code)."""
    mu.ctl_flush_tb()  # type: ignore[attr-defined]


class StateSync:
    """Registers between a Unicorn and a state block in memory, one C call each way.

    The Python binding's batch calls cost ~130 us for our 40 registers (a ctypes object per
    value); here Unicorn reads and writes the state block's fields in place through pointers
    made once (``field_address(name)`` gives a field's host address, valid for the state's
    lifetime). rflags is the exception: the state keeps the flags split, so it goes through
    ``rflags`` (a Python int the caller composes and splits).
    """

    def __init__(self, mu: uc.Uc, field_address: Callable[[str], int]) -> None:
        from unicorn.unicorn_py3.unicorn import uclib  # the library the binding loaded

        self._lib = uclib
        self._handle = mu._uch  # noqa: SLF001 - the engine handle, fixed for the Uc's life
        names = [name for name in FULL_REGS if name != "rflags"]
        self._rflags = ctypes.c_uint64(0)
        count = len(names) + 1
        self._count = count
        self._ids = (ctypes.c_int * count)(*[REG_IDS[n] for n in names], REG_IDS["rflags"])
        pointers = [field_address(f"{n}_lo" if n in XMM_NAMES else n) for n in names]
        self._pointers = (ctypes.c_void_p * count)(*pointers, ctypes.addressof(self._rflags))

    def to_unicorn(self, rflags: int) -> None:
        """Unicorn's registers from the state block, with ``rflags`` composed by the caller."""
        self._rflags.value = rflags
        self._check(self._lib.uc_reg_write_batch(self._handle, self._ids, self._pointers, self._count))

    def from_unicorn(self) -> int:
        """The state block's registers from Unicorn; returns rflags for the caller to split."""
        self._check(self._lib.uc_reg_read_batch(self._handle, self._ids, self._pointers, self._count))
        return self._rflags.value

    @staticmethod
    def _check(status: int) -> None:
        if status != uc.UC_ERR_OK:
            raise uc.UcError(status)


_CPUID_CODE = 0x1000
_cpuid_uc: uc.Uc | None = None


def cpuid_of_unicorn(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) that Unicorn's default x86-64 CPU answers to cpuid(leaf, subleaf) (tcg2wasm.unicorn)."""
    global _cpuid_uc
    if _cpuid_uc is None:
        _cpuid_uc = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64)
        _cpuid_uc.mem_map(_CPUID_CODE, 0x1000, uc.UC_PROT_READ | uc.UC_PROT_EXEC)
        _cpuid_uc.mem_write(_CPUID_CODE, b"\x0f\xa2")
    mu = _cpuid_uc
    mu.reg_write(ux.UC_X86_REG_RAX, leaf & 0xFFFF_FFFF)
    mu.reg_write(ux.UC_X86_REG_RCX, subleaf & 0xFFFF_FFFF)
    mu.emu_start(_CPUID_CODE, _CPUID_CODE + 2)
    names = (ux.UC_X86_REG_RAX, ux.UC_X86_REG_RBX, ux.UC_X86_REG_RCX, ux.UC_X86_REG_RDX)
    eax, ebx, ecx, edx = (mu.reg_read(r) for r in names)
    return eax, ebx, ecx, edx
