"""Capture the block graph a case executes in Unicorn, to seed translation regions.

A Unicorn block hook sees every executed basic block (Unicorn's own block
boundaries: they end at control transfers, like our translation blocks). From
the sequence of blocks we keep each block's size and execution count and each
observed edge with its count; ``region_from_pcs`` takes :meth:`BlockGraph.pcs`
(hottest first) to build a region without static discovery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unicorn import UC_HOOK_BLOCK, Uc

from tcg2wasm.casefile import Case
from tcg2wasm.oracle.unicorn_ref import UnicornRunner


@dataclass
class BlockInfo:
    addr: int
    size: int
    count: int = 0


@dataclass
class BlockGraph:
    """Executed blocks and edges of one run, plus how the run stopped."""

    entry: int
    blocks: dict[int, BlockInfo] = field(default_factory=dict)  # in first-execution order
    edges: dict[tuple[int, int], int] = field(default_factory=dict)  # (from, to) -> times taken
    stop: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False  # the block limit ended the capture before the case's stop

    def pcs(self) -> list[int]:
        """Block addresses, most executed first (ties: first executed first)."""
        order = {addr: i for i, addr in enumerate(self.blocks)}
        return sorted(self.blocks, key=lambda a: (-self.blocks[a].count, order[a]))

    def successors(self, addr: int) -> list[int]:
        return sorted(dst for (src, dst) in self.edges if src == addr)

    def hot_edges(self) -> list[tuple[int, int, int]]:
        """(from, to, count), most taken first, then by address."""
        return sorted(((s, d, n) for (s, d), n in self.edges.items()), key=lambda e: (-e[2], e[0], e[1]))


class _Recorder:
    def __init__(self, graph: BlockGraph, max_blocks: int | None) -> None:
        self.graph = graph
        self.prev: int | None = None
        self.left = max_blocks

    def __call__(self, uc: Uc, addr: int, size: int, _data: Any) -> None:
        if self.left is not None:
            if self.left == 0:
                self.graph.truncated = True
                uc.emu_stop()
                return
            self.left -= 1
        info = self.graph.blocks.get(addr)
        if info is None:
            info = self.graph.blocks[addr] = BlockInfo(addr, size)
        info.size = max(info.size, size)
        info.count += 1
        if self.prev is not None:
            key = (self.prev, addr)
            self.graph.edges[key] = self.graph.edges.get(key, 0) + 1
        self.prev = addr


def capture_blocks(case: Case, *, max_blocks: int | None = 1_000_000) -> BlockGraph:
    """Run ``case`` in Unicorn recording its block graph (at most ``max_blocks`` block executions)."""
    runner = UnicornRunner(case, count_insns=False)
    graph = BlockGraph(entry=case.entry)
    runner.uc.hook_add(UC_HOOK_BLOCK, _Recorder(graph, max_blocks))
    graph.stop = runner.run(case.entry, until=case.stop.until, count=case.stop.count)
    return graph
