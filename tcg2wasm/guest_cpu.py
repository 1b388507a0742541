"""``GuestCPU``: what every guest CPU of tcg2wasm offers -- registers and memory by the same calls.

The Machine (translated code), the Unicorn machine of the oracle
(``oracle.uc_machine.UnicornMachine``, ``--engine unicorn``) and the trace
recorder's effect log (``trace.record.EffectLog``) implement it, and what runs
on top of a CPU -- the Linux layer, the loader, the trace tools -- takes a
``GuestCPU`` and nothing more, so it works on each of them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["GuestCPU", "GuestMemoryAPI"]


@runtime_checkable
class GuestMemoryAPI(Protocol):
    """Guest memory by page-aligned mappings with "rwx" permissions; errors raise GuestMemoryError."""

    def mem_map(self, addr: int, size: int, perms: str = "rwx") -> None: ...

    def mem_unmap(self, addr: int, size: int) -> None: ...

    def mem_protect(self, addr: int, size: int, perms: str) -> None: ...

    def mem_read(self, addr: int, size: int) -> bytes: ...

    def mem_write(self, addr: int, data: bytes) -> None: ...

    def mem_regions(self) -> list[tuple[int, int, str]]: ...


@runtime_checkable
class GuestCPU(GuestMemoryAPI, Protocol):
    """Guest memory plus registers by name (``rax``, ``eax``, ``rip``, ``rflags``, ``fs_base``...)."""

    def reg_read(self, name: str) -> int: ...

    def reg_write(self, name: str, value: int) -> None: ...
