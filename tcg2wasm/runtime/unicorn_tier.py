"""Unicorn as the cold tier: code that is not compiled runs in Unicorn, at Unicorn's speed.

The interpreter tier costs ~15 us a block and compiling costs milliseconds a
block; a program with a lot of code that runs a few times (start-up, a
database, ld.so) paid for both. With this tier a miss in the jump cache runs
Unicorn from the pc, over the same pages and registers, until it reaches a pc
that has a compiled region (the native block hook looks it up), a syscall, a fault, or a
block that has become hot: Unicorn counts every block it runs in a native hook
(``runtime/block_counter.py``) and stops before one that reached
``HOT_BLOCK_RUNS``. Code also becomes hot by misses (control keeps coming back
to a pc from translated code). A region grows along the blocks the counter has
seen run: the counter's table is the profile. Hot regions are compiled by a
background thread (``runtime/background.py``) while Unicorn goes on, and
installed at the next miss after they are ready.

Unicorn cannot count instructions cheaply, so runs with an instruction budget
(``count``) never use this tier.
"""

from __future__ import annotations

from collections.abc import Callable

from tcg2wasm.abi import Exit
from tcg2wasm.runtime.background import BackgroundCompiler, FinishedRegion
from tcg2wasm.runtime.code_cache import CodeCache
from tcg2wasm.runtime.tiering import Tiering
from tcg2wasm.runtime.unicorn_cpu import SliceOutcome, UnicornCPU

__all__ = ["UnicornTier"]


class UnicornTier:
    """Runs cold code in Unicorn; decides what to compile from its block counter and the misses."""

    def __init__(self, cpu: UnicornCPU, tiering: Tiering, code: CodeCache, compile_now: Callable[[int], object],
                 background: BackgroundCompiler | None, install: Callable[[FinishedRegion], None],
                 compile_if_looping: Callable[[int], bool]) -> None:
        """``compile_now(pc)`` compiles and installs at once; ``install`` takes a finished background job;
        ``compile_if_looping(pc)`` compiles and installs at once only a region with a loop (False: none)."""
        self._cpu = cpu
        self._tiering = tiering
        self._code = code
        self._compile_now = compile_now
        self._compile_if_looping = compile_if_looping
        self._background = background
        self._install = install
        self._failed: set[int] = set()  # entries whose region could not be compiled: they stay cold
        self._declined: set[int] = set()  # hot in Unicorn, but their region has no loop (see on_miss)

    def on_miss(self, pc: int) -> tuple[Exit, int, SliceOutcome] | None:
        """Run cold code from ``pc`` in Unicorn; None when ``pc`` is compiled now (enter it instead)."""
        self.install_ready()
        if self._tiering.compile_now(pc, unicorn=True) and self._tiering.may_join_region(pc):
            self._want(pc)
        if self._code.region_at(pc) is not None:
            return None
        code, next_pc, outcome = self._cpu.run(pc)
        counter = self._cpu.counter
        if counter is not None:
            self._tiering.profile = counter.ran
        hot = outcome.hot_pc
        if hot is not None and hot not in self._declined and self._code.region_at(hot) is None:
            self._want(hot, needs_loop=True)  # Unicorn stopped before it
        return code, next_pc, outcome

    def _want(self, pc: int, needs_loop: bool = False) -> None:
        """Compile the region at ``pc``: always when control keeps coming back to it from compiled
        code; when Unicorn found it hot, only if the region has a loop (through calls too).

        A block run often in Unicorn without a loop around it is a short function called often
        from cold code: each call would be a visit of a few instructions, and two hand-overs
        cost more than that saves (``unicorn_cpu.MIN_VISIT_INSNS``). On SQLite most regions
        compiled for such blocks were then run through.
        """
        if pc in self._failed:
            return
        if self._background is not None:
            self._background.submit(pc, needs_loop)
        elif not needs_loop:
            self._compile_now(pc)
        elif not self._compile_if_looping(pc):
            self._declined.add(pc)

    def install_ready(self) -> None:
        """Install the regions the background compiler has finished."""
        if self._background is None:
            return
        for job in self._background.take_finished():
            if job.declined:
                self._declined.add(job.entry)
            elif job.module is None:
                self._failed.add(job.entry)
            elif self._code.region_at(job.entry) is None:
                self._install(job)
