"""Installed region functions: their table slots, the jump-cache entries that reach them, and invalidation.

A region function is entered at any of its blocks (its entry dispatch reads
rip), so every block pc of an installed region can point at it from the jump
cache. Entries are written lazily, at the dispatcher's miss on a pc
(``link``), and removed with the region.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import wasmtime

from tcg2wasm.runtime.stops import Stats
from tcg2wasm.runtime.translator import pages_of_range
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["CodeCache", "EntryWatcher", "InstalledRegion"]

EntryWatcher = Callable[[list[int], list[int]], None]  # (entries installed, entries dropped)


@dataclass(frozen=True)
class InstalledRegion:
    entry: int
    slot: int
    pages: frozenset[int]
    block_pcs: frozenset[int]


class CodeCache:
    """The regions installed in one runtime's table, by entry, by block pc and by page."""

    def __init__(self, rt: WasmRuntime, stats: Stats) -> None:
        self._rt = rt
        self._stats = stats
        self._by_entry: dict[int, InstalledRegion] = {}
        # any block pc -> the regions containing it, by entry, oldest first (regions may overlap)
        self._by_block: dict[int, dict[int, InstalledRegion]] = {}
        self._by_page: dict[int, set[int]] = {}
        self._compiled: frozenset[int] | None = frozenset()  # the entries (None: stale)
        self._entry_watchers: list[EntryWatcher] = []

    def watch_entries(self, watcher: EntryWatcher) -> None:
        """Tell ``watcher(added, removed)`` of every region entry installed or dropped from now on."""
        self._entry_watchers.append(watcher)

    def region_at(self, pc: int) -> InstalledRegion | None:
        """A region that can be entered at ``pc`` (its entry, or one of its blocks)."""
        region = self._by_entry.get(pc)
        if region is not None:
            return region
        holders = self._by_block.get(pc)
        return next(iter(holders.values())) if holders else None

    def entries(self) -> list[int]:
        return sorted(self._by_entry)

    def compiled_entries(self) -> frozenset[int]:
        """The entry pcs of the installed regions (each of their blocks can be entered too)."""
        if self._compiled is None:
            self._compiled = frozenset(self._by_entry)
        return self._compiled

    def install(self, entry: int, module: wasmtime.Module, extents: Iterable[tuple[int, int]]) -> InstalledRegion:
        """Instantiate a compiled region module; make it reachable from ``entry`` and every block of it.

        ``extents``: (pc, size) of the region's blocks -- its entries, and the pages whose
        invalidation drops it.
        """
        t0 = time.perf_counter()
        func = self._rt.instantiate_module(module)
        self._stats.translate_seconds += time.perf_counter() - t0
        self._stats.modules += 1
        blocks = list(extents)
        pages = frozenset(page for pc, size in blocks for page in pages_of_range(pc, size))
        region = InstalledRegion(entry, self._rt.allocate_slot(func), pages, frozenset(pc for pc, _ in blocks))
        self._by_entry[entry] = region
        self._compiled = None
        for pc in region.block_pcs:
            self._by_block.setdefault(pc, {})[entry] = region
        self._tell_watchers([entry], [])
        for page in pages:
            self._by_page.setdefault(page, set()).add(entry)
        return region

    def link(self, pc: int, region: InstalledRegion) -> None:
        """Point the jump-cache entry of ``pc`` at ``region`` (the dispatcher then enters it directly)."""
        self._rt.jc_set(pc, region.slot)

    # -- invalidation ---------------------------------------------------------------------
    def drop_pages(self, pages: Iterable[int]) -> None:
        for page in pages:
            for entry in sorted(self._by_page.pop(page, ())):
                self.drop(entry)

    def drop_containing(self, pc: int) -> None:
        """Drop every region with a block at ``pc``."""
        for entry, region in list(self._by_entry.items()):
            if pc in region.block_pcs:
                self.drop(entry)

    def drop_blocks_where(self, test: Callable[[int], bool]) -> None:
        """Drop every region with a block whose pc passes ``test`` (a pc that became hooked)."""
        for entry, region in list(self._by_entry.items()):
            if any(test(pc) for pc in region.block_pcs):
                self.drop(entry)

    def drop_inner_stop(self, stop: int) -> None:
        """Drop regions that would run through ``stop`` without a block boundary check (not their entry)."""
        for entry, region in list(self._by_entry.items()):
            if stop in region.block_pcs and stop != entry:
                self.drop(entry)

    def drop(self, entry: int) -> None:
        region = self._by_entry.pop(entry, None)
        if region is None:
            return
        self._compiled = None
        for pc in region.block_pcs:
            holders = self._by_block.get(pc, {})
            holders.pop(entry, None)
            if not holders:
                self._by_block.pop(pc, None)
            if self._rt.jc_get(pc) == (pc, region.slot):
                self._rt.jc_remove(pc)
        self._rt.free_slot(region.slot)
        self._tell_watchers([], [entry])

    def _tell_watchers(self, added: list[int], removed: list[int]) -> None:
        if added or removed:
            for watcher in self._entry_watchers:
                watcher(added, removed)
