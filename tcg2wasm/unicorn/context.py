"""``UcContext``: a saved CPU context (``Uc.context_save``), readable, writable and picklable like Unicorn's.

It holds every register the Machine models, by name (``tcg2wasm.runtime.registers.REGISTERS``);
``reg_read``/``reg_write`` take Unicorn's register ids with the same rules as ``Uc``'s.
Pickling keeps the values, the architecture and the mode; ``bytes(ctx)`` is the values
packed in that order (its ``size``). Memory is not part of it (Unicorn's default
``UC_CTL_CONTEXT_CPU``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from tcg2wasm.runtime.registers import REGISTERS, SUBREGISTERS
from tcg2wasm.unicorn.regs import Registers, register_access

__all__ = ["UcContext"]

_WIDE = {name for name in REGISTERS if name.startswith("xmm")}


class _SavedRegisters(Registers):
    """The register views of ``regs.py`` over a context's values (sub-registers computed from the full ones)."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values

    def read(self, name: str) -> int:
        if name in SUBREGISTERS:
            full, shift, bits = SUBREGISTERS[name]
            return (self.values[full] >> shift) & ((1 << bits) - 1)
        return self.values[name]

    def write(self, name: str, value: int) -> None:
        full, shift, bits = SUBREGISTERS.get(name, (name, 0, 128 if name in _WIDE else 64))
        mask = ((1 << bits) - 1) << shift
        self.values[full] = (self.values[full] & ~mask) | ((value << shift) & mask)


class UcContext:
    """A CPU context of an x86-64 ``Uc``."""

    def __init__(self, values: dict[str, int], arch: int, mode: int) -> None:
        self._values = dict(values)
        self._arch = arch
        self._mode = mode

    @property
    def values(self) -> dict[str, int]:
        """The saved registers by name (a copy)."""
        return dict(self._values)

    @property
    def arch(self) -> int:
        return self._arch

    @property
    def mode(self) -> int:
        return self._mode

    @property
    def size(self) -> int:
        return len(bytes(self))

    def reg_read(self, reg_id: int, aux: Any = None) -> int:
        """As Unicorn's binding reads a context: every register as a uint64 (an xmm gives its low half)."""
        return register_access(reg_id).read(_SavedRegisters(self._values)) & 0xFFFF_FFFF_FFFF_FFFF

    def reg_write(self, reg_id: int, value: int) -> None:
        register_access(reg_id).write(_SavedRegisters(self._values), value)

    def reg_read_batch(self, reg_ids: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.reg_read(reg_id) for reg_id in reg_ids)

    def reg_write_batch(self, pairs: Sequence[tuple[int, int]]) -> None:
        for reg_id, value in pairs:
            self.reg_write(reg_id, value)

    def __bytes__(self) -> bytes:
        return b"".join(struct.pack("<QQ", v & (2**64 - 1), v >> 64) if name in _WIDE else struct.pack("<Q", v)
                        for name, v in self._values.items())

    def __getstate__(self) -> tuple[dict[str, int], int, int]:
        return self._values, self._arch, self._mode

    def __setstate__(self, state: tuple[dict[str, int], int, int]) -> None:
        self._values, self._arch, self._mode = dict(state[0]), state[1], state[2]

    def __repr__(self) -> str:
        return f"UcContext(rip={self._values.get('rip', 0):#x}, {len(self._values)} registers)"
