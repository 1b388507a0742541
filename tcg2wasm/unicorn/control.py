"""``Uc.ctl_*``: Unicorn's control calls that mean something for a translated x86-64 CPU.

Exits (``ctl_exits_enabled`` / ``ctl_set_exits``) are hooked pcs to the runtime: a
block ends before one and the run stops there, as Unicorn's does. The translation
cache calls drop tcg2wasm's TBs and regions. The page size is 4 KiB and cannot be
changed (Unicorn allows that on ARM only); the CPU model is recorded and answered
but cpuid still reports Unicorn's default model (docs/unicorn-api.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import tcg2wasm.unicorn.unicorn_const as U
import tcg2wasm.unicorn.x86_const as X
from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.cpu_state import MASK64
from tcg2wasm.unicorn.errors import UcError

if TYPE_CHECKING:
    from tcg2wasm.machine import Machine
    from tcg2wasm.unicorn.hookset import HookSet

__all__ = ["UcControl"]

_CPU_MODELS = range(X.UC_CPU_X86_QEMU64, X.UC_CPU_X86_ENDING)


class UcControl:
    """The ``ctl_*`` methods of ``Uc`` (the attributes below are the Uc's)."""

    _machine: Machine
    _hookset: HookSet
    _arch: int
    _mode: int
    _timeout: int
    _cpu_model: int = X.UC_CPU_X86_QEMU64
    _exits_enabled: bool = False
    _exits: tuple[int, ...] = ()

    def ctl_get_mode(self) -> int:
        return self._mode

    def ctl_get_arch(self) -> int:
        return self._arch

    def ctl_get_page_size(self) -> int:
        return PAGE_SIZE

    def ctl_set_page_size(self, val: int) -> None:
        raise UcError(U.UC_ERR_ARG, detail="ctl_set_page_size: the page size of x86 is fixed (Unicorn allows it on "
                                           "ARM only)")

    def ctl_get_timeout(self) -> int:
        """The last emu_start's timeout in nanoseconds (it is given in microseconds), as Unicorn returns it."""
        return self._timeout * 1000

    def ctl_get_cpu_model(self) -> int:
        return self._cpu_model

    def ctl_set_cpu_model(self, model: int) -> None:
        if model not in _CPU_MODELS:
            raise UcError(U.UC_ERR_ARG, detail=f"ctl_set_cpu_model: {model!r} is not a UC_CPU_X86_* model")
        self._cpu_model = model

    # -- exits -----------------------------------------------------------------------------------
    def ctl_exits_enabled(self, enable: bool) -> None:
        self._exits_enabled = bool(enable)
        self._hookset.exits_changed(frozenset(self._exits) if self._exits_enabled else None)

    def _require_exits(self, what: str) -> None:
        if not self._exits_enabled:
            raise UcError(U.UC_ERR_ARG, detail=f"{what}: exits are not enabled (ctl_exits_enabled(True) first)")

    def ctl_get_exits_cnt(self) -> int:
        self._require_exits("ctl_get_exits_cnt")
        return len(self._exits)

    def ctl_get_exits(self) -> Sequence[int]:
        self._require_exits("ctl_get_exits")
        return tuple(self._exits)

    def ctl_set_exits(self, exits: Sequence[int]) -> None:
        self._require_exits("ctl_set_exits")
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in exits):
            raise UcError(U.UC_ERR_ARG, detail=f"ctl_set_exits: exits must be ints, got {exits!r}")
        self._exits = tuple(e & MASK64 for e in exits)
        self._hookset.exits_changed(frozenset(self._exits))

    # -- the translation cache -----------------------------------------------------------------------
    def ctl_flush_tb(self) -> None:
        """Drop every translation (they are made again when the code runs)."""
        self._machine.flush_translations()

    def ctl_remove_cache(self, lbound: int, ubound: int) -> None:
        """Drop the translations of code in [lbound, ubound)."""
        if not isinstance(lbound, int) or not isinstance(ubound, int) or lbound > ubound:
            raise UcError(U.UC_ERR_ARG, detail=f"ctl_remove_cache: bad range {lbound!r}..{ubound!r}")
        self._machine.flush_translations(lbound & MASK64, ubound & MASK64)

    def ctl_flush_tlb(self) -> None:
        self._machine.memory.tlb_flush_all()

    def ctl_set_tlb_mode(self, mode: int) -> None:
        if mode not in (U.UC_TLB_CPU, U.UC_TLB_VIRTUAL):
            raise UcError(U.UC_ERR_ARG, detail=f"ctl_set_tlb_mode: {mode!r} is not UC_TLB_CPU or UC_TLB_VIRTUAL")
        if mode != U.UC_TLB_CPU:
            raise UcError(U.UC_ERR_ARG, detail="ctl_set_tlb_mode(UC_TLB_VIRTUAL): tcg2wasm has no guest page "
                                               "tables and uses mem_map's mapping only (UC_TLB_CPU)")

    ctl_tlb_mode = ctl_set_tlb_mode

    def ctl_context_mode(self, mode: int) -> None:
        if mode != U.UC_CTL_CONTEXT_CPU:
            raise UcError(U.UC_ERR_ARG, detail="ctl_context_mode: only UC_CTL_CONTEXT_CPU (registers) is supported")

    def ctl_request_cache(self, addr: int) -> Any:
        raise UcError(U.UC_ERR_ARG, detail="ctl_request_cache is not supported by tcg2wasm (its TBs are not "
                                           "Unicorn's)")

    def ctl_get_tcg_buffer_size(self) -> int:
        return 0

    def ctl_set_tcg_buffer_size(self, size: int) -> None:
        """Accepted and ignored: tcg2wasm's code cache is not a fixed buffer."""
