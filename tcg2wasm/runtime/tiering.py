"""Which tier runs a guest pc, and what a region may grow along.

A pc that misses in the jump cache first runs its TB in the IR interpreter
(~15 us a block); only after ``hot_threshold`` misses does it get a compiled
region (milliseconds to build). Start-up code that runs once is never compiled.
The interpreter tier records which blocks ran, and a region grows only along
those blocks (a profile, as in trace-based JITs): code that never ran is not
worth compiling and stays an exit. A profile can also be given up front
(``seed``): a Unicorn block capture, or a trace's block counts, whose hot pcs
are compiled at their first miss. ``hot_threshold=1`` compiles at once and grows
regions along everything statically reachable (what state cases and the
differential tests use, to exercise wasm).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["HOT_THRESHOLD", "Tiering"]

#: Misses at a pc before it gets a compiled region. QEMU's wasm backend tiers the same way (TCI first).
HOT_THRESHOLD = 16
#: With Unicorn as the cold tier: misses (returns from translated code to Unicorn at the pc, ~30 us
#: each) before it is hot (Unicorn's block counter makes code hot too: runtime/unicorn_tier.py).
UNICORN_HOT_MISSES = 64


class Tiering:
    """Miss counts and the profile of blocks seen running."""

    def __init__(self, hot_threshold: int = HOT_THRESHOLD) -> None:
        if not isinstance(hot_threshold, int) or isinstance(hot_threshold, bool):  # (Machine's argument)
            raise TypeError(f"Machine: hot_threshold must be an int, got {hot_threshold!r}")
        self.hot_threshold = max(1, hot_threshold)
        self._misses: dict[int, int] = {}
        self._seen: set[int] = set()  # TB pcs known to run: the profile regions grow along
        self._hot: set[int] = set()  # pcs known to run often: compiled at their first miss
        self._seeded = False
        #: Another profile, e.g. the blocks Unicorn has run (``BlockCounter.ran``), when the cold tier keeps one.
        self.profile: Callable[[int], bool] | None = None

    def compile_now(self, pc: int, unicorn: bool = False) -> bool:
        """Count a miss at ``pc``; True if it is hot enough to compile.

        Else it runs in the cold tier: the interpreter (which makes it seen), or Unicorn, where
        a miss costs less than an interpreted block but more than what a compiled region saves
        on a few runs (``UNICORN_HOT_MISSES``), and samples count too.
        """
        misses = self._misses[pc] = self._misses.get(pc, 0) + 1
        if pc in self._hot:
            return True
        if unicorn:
            return misses >= UNICORN_HOT_MISSES
        if misses >= self.hot_threshold:
            return True
        self._seen.add(pc)
        return False

    def seen(self, pc: int) -> bool:
        """Whether ``pc`` is in the profile (seen running)."""
        return pc in self._seen

    def may_join_region(self, pc: int) -> bool:
        """Whether region discovery may add the block at ``pc`` (with a profile: only blocks seen running)."""
        if self.profile is not None and self.profile(pc):
            return True
        return not (self.hot_threshold > 1 or self._seeded or self.profile is not None) or pc in self._seen

    def seed(self, pcs: Iterable[int], hot: Iterable[int] = ()) -> None:
        """Blocks known to run (``pcs``) and known to run often (``hot``)."""
        hot = set(hot)
        self._seen.update(pcs)
        self._seen.update(hot)
        self._hot.update(hot)
        self._seeded = True

    @property
    def interprets_cold_code(self) -> bool:
        """Whether cold code runs in the interpreter (else everything is compiled at its first miss)."""
        return self.hot_threshold > 1
