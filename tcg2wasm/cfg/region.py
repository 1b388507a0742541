"""Regions: groups of translation blocks compiled into one wasm function.

Control moving between blocks of one region stays inside the function (the
Relooper turns the ``goto_tb`` edges into structured loops and branches), so a
hot loop runs without returning to the dispatcher.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tcg2wasm.ir.core import TranslationBlock

Translate = Callable[[int], TranslationBlock | None]


class RegionError(ValueError):
    """A region cannot be formed (for example its entry cannot be translated)."""


@dataclass
class Region:
    entry: int
    blocks: dict[int, TranslationBlock]  # insertion order, entry first

    @property
    def n_ops(self) -> int:
        return sum(len(tb.ops) for tb in self.blocks.values())

    def reachable(self) -> list[int]:
        """Block pcs reachable from the entry inside the region, in BFS order.

        Along goto_tb edges, and from a block ending in a call to the call's return address
        (``flow_successors``): a return inside the region then branches there.
        """
        if self.entry not in self.blocks:
            raise RegionError(f"region entry 0x{self.entry:x} is not one of its blocks")
        order = [self.entry]
        seen = {self.entry}
        queue = deque(order)
        while queue:
            for succ in flow_successors(self.blocks[queue.popleft()]):
                if succ in self.blocks and succ not in seen:
                    seen.add(succ)
                    order.append(succ)
                    queue.append(succ)
        return order


    def back_edges(self, through_calls: bool = False) -> set[tuple[int, int]]:
        """Edges (from, to) to a block on the current depth-first path from the entry: the loops.

        ``through_calls``: a block ending in a call also leads to the call's return address (a
        loop that calls a function returns to it through the dispatcher, not an edge).
        """
        back: set[tuple[int, int]] = set()
        state: dict[int, int] = {}  # 1: on the path, 2: done

        def visit(pc: int) -> None:
            state[pc] = 1
            for succ in self._successors(pc, through_calls):
                if succ not in self.blocks:
                    continue
                if state.get(succ) == 1:
                    back.add((pc, succ))
                elif succ not in state:
                    visit(succ)
            state[pc] = 2

        for pc in self.reachable():
            if pc not in state:
                visit(pc)
        return back

    def _successors(self, pc: int, through_calls: bool) -> list[int]:
        tb = self.blocks[pc]
        return flow_successors(tb) if through_calls else tb.successors()


def flow_successors(tb: TranslationBlock) -> list[int]:
    """Where control goes on from ``tb``: its goto_tb targets, and its call's return address."""
    succs = tb.successors()
    if tb.insns and tb.insns[-1].asm.startswith("call"):
        last = tb.insns[-1]
        succs = [*succs, last.pc + len(last.raw)]
    return succs


def _translate_entry(translate: Translate, entry: int) -> TranslationBlock:
    tb = translate(entry)
    if tb is None:
        raise RegionError(f"region entry 0x{entry:x} cannot be translated")
    if tb.pc != entry:
        raise RegionError(f"translate(0x{entry:x}) returned a block at 0x{tb.pc:x}")
    return tb


def discover_region(translate: Translate, entry: int, *, max_blocks: int = 32, max_ops: int = 4000) -> Region:
    """Collect the blocks statically reachable from ``entry`` (``flow_successors``), breadth first.

    Stops at ``max_blocks`` blocks or when the next block would bring the op count
    above ``max_ops`` (the entry block is always taken). Untranslatable targets
    stay exits of the region.
    """
    if max_blocks < 1 or max_ops < 1:
        raise RegionError(f"discover_region: max_blocks={max_blocks} and max_ops={max_ops} must be positive")
    first = _translate_entry(translate, entry)
    blocks = {entry: first}
    n_ops = len(first.ops)
    queue = deque([first])
    tried = {entry}
    while queue and len(blocks) < max_blocks:
        for succ in flow_successors(queue.popleft()):
            if succ in tried or len(blocks) >= max_blocks:
                continue
            tried.add(succ)
            tb = translate(succ)
            if tb is None:
                continue
            if n_ops + len(tb.ops) > max_ops:
                return Region(entry, blocks)
            blocks[succ] = tb
            n_ops += len(tb.ops)
            queue.append(tb)
    return Region(entry, blocks)


def region_from_pcs(translate: Translate, entry: int, pcs: Iterable[int]) -> Region:
    """A region of ``entry`` and the given block pcs (e.g. a block graph captured by Unicorn).

    Pcs are taken in the given order, duplicates and untranslatable ones dropped.
    The backend compiles only the blocks reachable from the entry.
    """
    blocks = {entry: _translate_entry(translate, entry)}
    for pc in pcs:
        if pc in blocks:
            continue
        tb = translate(pc)
        if tb is not None:
            blocks[pc] = tb
    return Region(entry, blocks)
