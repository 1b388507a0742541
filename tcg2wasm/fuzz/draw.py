"""Sources of random choices for the generators: a seeded ``random.Random``, or hypothesis (which shrinks).

Every generator takes a :class:`~tcg2wasm.fuzz.encodings.Draw`; with :class:`RandomDraw` a seed
gives the same case on every machine (campaign shards are seed ranges), with
:class:`HypothesisDraw` a failing test shrinks to a smaller stream and state.
"""

from __future__ import annotations

import builtins
import random
from collections.abc import Sequence
from typing import Any

#: 64-bit values where flags and conversions change (as in tests/lift_harness.py values64).
EDGE_VALUES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 2**64 - 1, 2**64 - 2)


class RandomDraw:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def int(self, lo: builtins.int, hi: builtins.int) -> builtins.int:
        return self.r.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.r.randrange(len(items))]

    def bytes(self, n: builtins.int) -> builtins.bytes:
        return self.r.randbytes(n)


class HypothesisDraw:
    """Choices drawn from hypothesis' ``data`` object, so that failures shrink toward small values."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def int(self, lo: builtins.int, hi: builtins.int) -> builtins.int:
        return self._data.draw(self._st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        # shrinks toward False: the rarer, richer branch goes away first
        return self._data.draw(self._st.integers(0, 9999)) >= 10000 - int(p * 10000)

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self._data.draw(self._st.integers(0, len(items) - 1))]

    def bytes(self, n: builtins.int) -> builtins.bytes:
        return self._data.draw(self._st.binary(min_size=n, max_size=n))


def value64(draw: Any) -> int:
    """A 64-bit value biased toward the edges where flags change."""
    pick = draw.int(0, 9)
    if pick < 4:
        return int.from_bytes(draw.bytes(8), "little")
    if pick < 7:
        return draw.choice(EDGE_VALUES)
    if pick < 9:
        return draw.int(0, 0x1FF)
    return (draw.choice(EDGE_VALUES) + draw.int(-2, 2)) % (1 << 64)
