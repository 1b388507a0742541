"""The translation service: guest pcs to lifted and optimized TBs, regions, and region modules.

It owns the TB caches (by block pc, by instruction pc for messages, by page for
invalidation) and the stop pcs that translation must treat as block boundaries.
Region discovery gets its blocks from here (``region``), through a membership
test the tiering policy supplies; compiling a region gives the wasm module bytes
(``compile``). Installing the module is the code cache's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tcg2wasm.abi import PAGE_BITS
from tcg2wasm.cfg.region import Region, discover_region
from tcg2wasm.errors import GuestFault
from tcg2wasm.ir.core import GuestInsn, TranslationBlock
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.stops import Stats
from tcg2wasm.runtime.translation_log import TranslationLog

if TYPE_CHECKING:
    from tcg2wasm.frontend.x86_64.translate import TBShape

__all__ = ["MAX_TB_INSNS", "Translator", "pages_of", "pages_of_range"]

MAX_TB_INSNS = 64


def pages_of(tb: TranslationBlock) -> range:
    """Guest page numbers the bytes of ``tb`` lie on."""
    return pages_of_range(tb.pc, tb.size)


def pages_of_range(pc: int, size: int) -> range:
    last = max(pc, pc + size - 1)
    return range(pc >> PAGE_BITS, (last >> PAGE_BITS) + 1)


class Translator:
    """Lifts, optimizes and caches TBs of one guest memory; builds and compiles regions from them."""

    def __init__(self, memory: GuestMemory, stats: Stats, max_insns: int = MAX_TB_INSNS) -> None:
        self._memory = memory
        self._stats = stats
        self.max_insns = max_insns
        self.stop_pcs: frozenset[int] = frozenset()
        #: How hooks shape TBs (runtime/hooks.py); hooked pcs never join a region.
        self.shape: TBShape | None = None
        self._lifted: dict[int, TranslationBlock] = {}
        self._optimized: dict[int, TranslationBlock] = {}  # made on demand: optimizing costs more than lifting
        self._by_insn: dict[int, TranslationBlock] = {}  # guest instruction pc -> a cached TB holding it
        self._by_page: dict[int, set[int]] = {}
        self.log: TranslationLog | None = None  # QEMU's -d in_asm,op,op_opt,out_asm (runtime/translation_log.py)

    @contextmanager
    def _timed(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._stats.translate_seconds += time.perf_counter() - t0

    # -- blocks ----------------------------------------------------------------------------
    def translate(self, pc: int, *, max_insns: int | None = None) -> TranslationBlock:
        """Lift the TB at ``pc`` without caching it; raises GuestFault when pc cannot be fetched."""
        from tcg2wasm.frontend.x86_64.translate import translate_block

        with self._timed():
            tb = translate_block(self._memory.fetch, pc, max_insns=max_insns or self.max_insns,
                                 stop_pcs=self.stop_pcs, shape=self.shape)
        self._stats.blocks_translated += 1
        if self.log is not None:
            self.log.lifted(tb)
        return tb

    def lifted(self, pc: int) -> TranslationBlock:
        """The cached lifted TB at ``pc`` (lifted now if needed; its pages are marked as code)."""
        tb = self._lifted.get(pc)
        if tb is None:
            tb = self._lifted[pc] = self.translate(pc)
            for page in pages_of(tb):
                self._by_page.setdefault(page, set()).add(pc)
            for insn in tb.insns:
                self._by_insn[insn.pc] = tb
            self._memory.mark_code(tb.pc, tb.end)
        return tb

    def optimized(self, pc: int) -> TranslationBlock:
        """The optimized TB at ``pc``: what regions compile and the interp engine runs."""
        tb = self._optimized.get(pc)
        if tb is None:
            lifted = self.lifted(pc)
            with self._timed():
                tb = self._optimized[pc] = _optimize(lifted)
            if self.log is not None:
                self.log.optimized(tb)
        return tb

    def cached_optimized(self, pc: int) -> TranslationBlock | None:
        return self._optimized.get(pc)

    def insn_at(self, pc: int) -> GuestInsn | None:
        """The decoded instruction at ``pc`` if a cached TB holds it (for messages)."""
        tb = self._by_insn.get(pc)
        return next((insn for insn in tb.insns if insn.pc == pc), None) if tb is not None else None

    def block_pcs(self) -> list[int]:
        return sorted(self._lifted)

    def lifted_blocks(self) -> list[TranslationBlock]:
        """Every cached lifted TB."""
        return list(self._lifted.values())

    # -- invalidation ------------------------------------------------------------------------
    def drop_pages(self, pages: list[int]) -> None:
        for page in pages:
            for pc in sorted(self._by_page.pop(page, ())):
                self.drop(pc)

    def drop(self, pc: int) -> None:
        self._optimized.pop(pc, None)
        tb = self._lifted.pop(pc, None)
        if tb is None:
            return
        for insn in tb.insns:
            if self._by_insn.get(insn.pc) is tb:
                del self._by_insn[insn.pc]

    def set_stop_pcs(self, stops: frozenset[int]) -> list[int]:
        """Make ``stops`` block boundaries; drops the TBs running across one and returns their pcs."""
        if stops == self.stop_pcs:
            return []
        self.stop_pcs = stops
        crossing = [pc for pc, tb in self._lifted.items() if any(tb.pc < stop < tb.end for stop in stops)]
        for pc in crossing:
            self.drop(pc)
        return crossing

    # -- regions ---------------------------------------------------------------------------------
    def region_block(self, member: Callable[[int], bool]) -> Callable[[int], TranslationBlock | None]:
        """What region discovery may add at a pc: the optimized TB, or None (the pc stays an exit).

        Stop pcs, hooked pcs, pcs ``member`` refuses and unfetchable code stay exits.
        """
        def block(pc: int) -> TranslationBlock | None:
            if pc in self.stop_pcs or not member(pc) or (self.shape is not None and self.shape.hooked(pc)):
                return None
            try:
                return self.optimized(pc)
            except GuestFault:
                return None

        return block

    def region(self, entry: int, member: Callable[[int], bool]) -> Region:
        """The region at ``entry``: blocks reachable from it that ``member`` admits (``discover_region``)."""
        return discover_region(self.region_block(member), entry)

    def compile(self, region: Region) -> bytes:
        """The wasm module of ``region``."""
        from tcg2wasm.backend.wasm import compile_region  # Binaryen: imported when the first region is compiled

        with self._timed():
            wasm = compile_region(region).wasm
        log_compiled(self.log, region)
        return wasm


def log_compiled(log: TranslationLog | None, region: Region) -> None:
    """The region's wasm text to the log, if it wants ``out_asm`` (a second Binaryen pass)."""
    if log is not None and log.wants("out_asm"):
        from tcg2wasm.backend.wasm import region_wat

        log.compiled(region.entry, region_wat(region))


def _optimize(tb: TranslationBlock) -> TranslationBlock:
    from tcg2wasm.opt import optimize_tb

    return optimize_tb(tb)
