"""The guest page table in linear memory, which translated code walks on a soft-TLB miss.

``GuestMemory`` keeps its page table as a Python dict; this mirrors it into
three levels of u32 tables in the wasm memory (layout in ``abi.PT_*``) so that
``runtime/memory_wat.py`` can refill the TLB without calling Python. A leaf
entry is the page's host offset with its ``PT_*`` flags (permissions, and
whether loads or stores must go to Python); 0 means unmapped. Pages at or
above 2**48 are not mirrored: their accesses always take Python's path.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

from tcg2wasm import abi

__all__ = ["PageTable"]

_U32 = struct.Struct("<I")
_TABLE_PAGES = abi.PT_TABLE_SIZE // abi.PAGE_SIZE
_LIMIT = 1 << abi.PT_PAGE_BITS


class PageTable:
    """Leaf entries by guest page number; second-level tables and leaves allocated on demand."""

    def __init__(self, write: Callable[[int, bytes], None], allocate: Callable[[int], int]) -> None:
        self._write = write  # (linear offset, bytes)
        self._allocate = allocate  # npages -> linear offset of zeroed pages
        self._l2: dict[int, int] = {}  # L1 index -> offset of its L2 table
        self._leaves: dict[int, int] = {}  # page >> PT_LEVEL_BITS -> offset of its leaf

    def set_run(self, first_page: int, hosts_and_flags: list[int]) -> None:
        """Entries of consecutive pages from ``first_page`` (0 clears a page)."""
        page, i = first_page, 0
        while i < len(hosts_and_flags) and page < _LIMIT:
            leaf = self._leaf(page >> abi.PT_LEVEL_BITS, create=any(hosts_and_flags[i:i + abi.PT_LEVEL_ENTRIES]))
            index = page & (abi.PT_LEVEL_ENTRIES - 1)
            n = min(abi.PT_LEVEL_ENTRIES - index, len(hosts_and_flags) - i)
            if leaf is not None:
                self._write(leaf + 4 * index, array("I", hosts_and_flags[i:i + n]).tobytes())
            page, i = page + n, i + n

    def set(self, page: int, host_and_flags: int) -> None:
        if page >= _LIMIT:
            return
        leaf = self._leaf(page >> abi.PT_LEVEL_BITS, create=host_and_flags != 0)
        if leaf is not None:
            self._write(leaf + 4 * (page & (abi.PT_LEVEL_ENTRIES - 1)), _U32.pack(host_and_flags))

    def _leaf(self, leaf_number: int, create: bool) -> int | None:
        leaf = self._leaves.get(leaf_number)
        if leaf is not None or not create:
            return leaf
        l1, l2 = leaf_number >> abi.PT_LEVEL_BITS, leaf_number & (abi.PT_LEVEL_ENTRIES - 1)
        table = self._l2.get(l1)
        if table is None:
            table = self._l2[l1] = self._allocate(_TABLE_PAGES)
            self._write(abi.PT_L1_BASE + 4 * l1, _U32.pack(table))
        leaf = self._leaves[leaf_number] = self._allocate(_TABLE_PAGES)
        self._write(table + 4 * l2, _U32.pack(leaf))
        return leaf
