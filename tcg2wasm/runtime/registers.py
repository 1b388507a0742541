"""Guest registers by name, over the state block: full registers, their narrower views, rflags.

The state block holds every IR global (GPRs, the seven flags as 0/1, segment
bases, xmm halves, mxcsr, fpcw) and the rest of the CPU state (rip, the other
rflags bits). This is the one place that composes and splits them, for the API
(``Machine.reg_read``...), the exit handlers and the engines.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

from tcg2wasm import abi
from tcg2wasm.cpu_state import (
    FLAG_BITS,
    GLOBAL_INDEX,
    GPR_NAMES,
    MASK64,
    RFLAGS_FIXED,
    SEG_BASE_NAMES,
    X87_REG_NAMES,
    X87_STATE_NAMES,
    XMM_NAMES,
)
from tcg2wasm.errors import RegisterError
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["REGISTERS", "SUBREGISTERS", "RegisterFile"]


def _subregisters() -> dict[str, tuple[str, int, int]]:
    """name -> (full register, bit shift, width) for the 32/16/8-bit views."""
    out: dict[str, tuple[str, int, int]] = {}
    for legacy in ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di"):
        full = "r" + legacy
        out["e" + legacy] = (full, 0, 32)
        out[legacy] = (full, 0, 16)
    for letter in "abcd":
        out[letter + "l"] = ("r" + letter + "x", 0, 8)
        out[letter + "h"] = ("r" + letter + "x", 8, 8)
    for legacy in ("sp", "bp", "si", "di"):
        out[legacy + "l"] = ("r" + legacy, 0, 8)
    for n in range(8, 16):
        out[f"r{n}d"] = (f"r{n}", 0, 32)
        out[f"r{n}w"] = (f"r{n}", 0, 16)
        out[f"r{n}b"] = (f"r{n}", 0, 8)
    out["eip"] = ("rip", 0, 32)
    out["eflags"] = ("rflags", 0, 32)
    return out


SUBREGISTERS = _subregisters()
#: The full registers the API names (the views of SUBREGISTERS come on top).
REGISTERS: tuple[str, ...] = GPR_NAMES + ("rip", "rflags") + SEG_BASE_NAMES + XMM_NAMES + ("mxcsr", "fpcw")
#: Registers reg_read/reg_write also know but ``REGISTERS`` (the default of snapshots) leaves out:
#: the x87 stack st0-st7 (80 bits: significand, then sign and exponent; by stack position) and the
#: x87 status, tag and last-instruction state (docs/x87.md).
X87_REGISTERS: tuple[str, ...] = X87_REG_NAMES + X87_STATE_NAMES
_XMM_LO = {name: GLOBAL_INDEX[f"{name}_lo"] for name in XMM_NAMES}  # the _hi half follows it
_ST_LO = {name: GLOBAL_INDEX[f"{name}_lo"] for name in X87_REG_NAMES}
_WIDTHS = ({name: 128 for name in XMM_NAMES} | {name: 80 for name in X87_REG_NAMES}
           | {"fpcw": 16, "fpsw": 16, "fptag": 8, "fpop": 11})  # full registers that are not 64 bits wide
_FLAG_MASK = sum(1 << bit for bit in FLAG_BITS.values())
_FLAG_INDEX_BITS = tuple((GLOBAL_INDEX[flag], bit) for flag, bit in FLAG_BITS.items())


class RegisterFile:
    """Reads and writes guest registers in the state block of ``rt``."""

    def __init__(self, rt: WasmRuntime) -> None:
        self._rt = rt
        #: The IR globals, live: they are the first fields of the state block, in order (abi.STATE_FIELDS).
        self.globals: ctypes.Array[ctypes.c_uint64] = rt.linear.u64_array(abi.STATE_BASE, len(abi.GLOBAL_NAMES))

    def load_globals(self) -> list[int]:
        """The IR globals as a list (what the interpreter runs on)."""
        return self.globals[:]  # a slice of a ctypes array is a list of ints

    def store_globals(self, values: list[int]) -> None:
        """Write back the first ``len(GLOBAL_NAMES)`` of ``values`` (the interpreter's value vector)."""
        self.globals[:] = values[: len(self.globals)]  # type: ignore[assignment]  # ctypes takes ints

    def reset(self) -> None:
        """Every field zero, then the state Linux starts a process with (rflags bit 1, mxcsr, fpcw)."""
        for name in abi.STATE_FIELDS:
            self._rt.state_write(name, 0)
        self._rt.state_write("rflags_rest", RFLAGS_FIXED)
        self._rt.state_write("mxcsr", abi.MXCSR_DEFAULT)
        self._rt.state_write("fpcw", abi.FPCW_DEFAULT)

    # -- by name, with the API's checks -------------------------------------------------
    def read(self, name: str) -> int:
        key = canonical_name(name)
        if key in SUBREGISTERS:
            full, shift, width = SUBREGISTERS[key]
            return (self.read_full(full) >> shift) & ((1 << width) - 1)
        return self.read_full(key)

    def write(self, name: str, value: int) -> None:
        key = canonical_name(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RegisterError(f"reg_write({name!r}): value must be an int, got {value!r}")
        full, shift, width = SUBREGISTERS.get(key, (key, 0, _WIDTHS.get(key, 64)))
        if not -(1 << (width - 1)) <= value < 1 << width:
            raise RegisterError(f"reg_write({name!r}): {value:#x} does not fit {width} bits")
        field = ((1 << width) - 1) << shift
        old = self.read_full(full)
        self.write_full(full, (old & ~field) | ((value << shift) & field))

    def snapshot(self, names: Iterable[str] = REGISTERS) -> dict[str, int]:
        """Several full registers at once (names as in ``REGISTERS``)."""
        return {name: self.read_full(name) for name in names}

    # -- full registers (names already checked) -------------------------------------------
    def read_full(self, name: str) -> int:
        index = GLOBAL_INDEX.get(name)
        view = self.globals
        if index is not None:
            return view[index]
        if name in _XMM_LO:
            return view[_XMM_LO[name]] | view[_XMM_LO[name] + 1] << 64
        if name in _ST_LO:
            return view[_ST_LO[name]] | (view[_ST_LO[name] + 1] & 0xFFFF) << 64
        if name == "rflags":
            value = self._rt.state_read("rflags_rest") | RFLAGS_FIXED
            for index, bit in _FLAG_INDEX_BITS:
                value |= (view[index] & 1) << bit
            return value
        return self._rt.state_read(name)

    def write_full(self, name: str, value: int) -> None:
        if name in _XMM_LO or name in _ST_LO:
            self._rt.state_write(f"{name}_lo", value & MASK64)
            self._rt.state_write(f"{name}_hi", (value >> 64) & MASK64)
            return
        value &= MASK64
        if name == "rflags":
            view = self.globals
            for index, bit in _FLAG_INDEX_BITS:
                view[index] = (value >> bit) & 1
            self._rt.state_write("rflags_rest", (value & ~_FLAG_MASK) | RFLAGS_FIXED)
        else:
            self._rt.state_write(name, value)


def canonical_name(name: str) -> str:
    """The register's lower-case name; unknown names raise ``RegisterError`` listing the known ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in REGISTERS and key not in SUBREGISTERS and key not in X87_REGISTERS:
        raise RegisterError(f"unknown register {name!r}; known: {', '.join(REGISTERS)} and their sub-registers")
    return key
