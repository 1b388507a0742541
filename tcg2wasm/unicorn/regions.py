"""Unicorn's list of memory regions: one per ``mem_map``, split by ``mem_protect`` and ``mem_unmap``.

Unicorn keeps every ``mem_map`` as a region of its own (adjacent ones are not merged)
and splits a region where a ``mem_protect`` or ``mem_unmap`` covers part of it;
``mem_regions`` lists them in address order. The Machine's page table says what is
mapped; this list only says how Unicorn would report it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["RegionList"]


@dataclass(frozen=True, order=True)
class _Region:
    begin: int
    end: int  # exclusive
    perms: int


class RegionList:
    """The regions of one Uc, sorted by address and disjoint."""

    def __init__(self) -> None:
        self._regions: list[_Region] = []

    def add(self, begin: int, size: int, perms: int) -> None:
        bisect.insort(self._regions, _Region(begin, begin + size, perms))

    def _split(self, begin: int, end: int, perms: int | None) -> None:
        """Cut the regions at ``begin`` and ``end``; the pieces inside get ``perms`` (None: removed)."""
        out: list[_Region] = []
        for r in self._regions:
            if r.end <= begin or end <= r.begin:
                out.append(r)
                continue
            if r.begin < begin:
                out.append(_Region(r.begin, begin, r.perms))
            if perms is not None:
                out.append(_Region(max(r.begin, begin), min(r.end, end), perms))
            if end < r.end:
                out.append(_Region(end, r.end, r.perms))
        self._regions = sorted(out)

    def protect(self, begin: int, size: int, perms: int) -> None:
        self._split(begin, begin + size, perms)

    def remove(self, begin: int, size: int) -> None:
        self._split(begin, begin + size, None)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """(begin, end inclusive, perms) of each region, as ``mem_regions`` yields them."""
        for r in self._regions:
            yield r.begin, r.end - 1, r.perms
