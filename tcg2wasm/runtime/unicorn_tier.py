"""Unicorn as the cold tier: code that is not compiled runs in Unicorn, at Unicorn's speed.

The interpreter tier costs ~15 us a block and compiling costs milliseconds a
block; a program with a lot of code that runs a few times (start-up, a
database, ld.so) paid for both. With this tier a miss in the jump cache runs
Unicorn from the pc, over the same pages and registers, until it reaches a pc
that has a compiled region (Unicorn's exit list), a syscall, a fault, or a
block that has become hot: Unicorn counts every block it runs in a native hook
(``runtime/block_counter.py``) and stops before one that reached
``HOT_BLOCK_RUNS``. Code also becomes hot by misses (control keeps coming back
to a pc from translated code). A region grows along the blocks the counter has
seen run: the counter's table is the profile.

Unicorn cannot count instructions cheaply, so runs with an instruction budget
(``count``) never use this tier.
"""

from __future__ import annotations

from tcg2wasm.abi import Exit
from tcg2wasm.runtime.tiering import Tiering
from tcg2wasm.runtime.unicorn_cpu import SliceOutcome, UnicornCPU

__all__ = ["UnicornTier"]


class UnicornTier:
    """Runs cold code in Unicorn; hot pcs and the profile come from its block counter."""

    def __init__(self, cpu: UnicornCPU, tiering: Tiering) -> None:
        self._cpu = cpu
        self._tiering = tiering

    def run_cold(self, pc: int) -> tuple[Exit, int, SliceOutcome]:
        code, next_pc, outcome = self._cpu.run(pc)
        counter = self._cpu.counter
        if counter is not None:
            self._tiering.profile = counter.ran
        return code, next_pc, outcome
