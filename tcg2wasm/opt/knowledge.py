"""What the forward pass knows about each temp: constants, known-zero bits, sign width, copies.

The knowledge is valid at one point of a forward walk over the ops. It is
dropped entirely at a label (a join point) and updated for every output an op
writes. Copy relations are kept as a map from each copy to its *root* (a temp
that is not itself a copy), plus the reverse map so that redefining a root
invalidates every copy of it in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcg2wasm.ir.core import Op, Temp
from tcg2wasm.ir.ops import MASK64


def sign_width(value: int) -> int:
    """Smallest ``w`` such that ``value`` is the sign extension of its low ``w`` bits."""
    value &= MASK64
    for w in range(1, 65):
        top = value >> (w - 1)
        if top in (0, MASK64 >> (w - 1)):
            return w
    return 64


@dataclass(frozen=True, slots=True)
class TempInfo:
    """Facts about a temp's current value.

    ``z_mask``: bits that may be nonzero (a 0 bit is known to be 0).
    ``s_bits``: the value is the sign extension of its low ``s_bits`` bits.
    """

    const: int | None = None
    z_mask: int = MASK64
    s_bits: int = 64

    @staticmethod
    def of_const(value: int) -> TempInfo:
        value &= MASK64
        return TempInfo(value, value, sign_width(value))


UNKNOWN = TempInfo()


class OptContext:
    """Per-temp knowledge at the current point of the forward pass."""

    def __init__(self) -> None:
        self._info: dict[Temp, TempInfo] = {}
        self._root_of: dict[Temp, Temp] = {}
        self._copies: dict[Temp, set[Temp]] = {}

    def reset(self) -> None:
        """Forget everything (at a join point)."""
        self._info.clear()
        self._root_of.clear()
        self._copies.clear()

    # -- queries ------------------------------------------------------------
    def canon(self, t: Temp) -> Temp:
        """The root temp holding the same value as ``t`` here."""
        return self._root_of.get(t, t)

    def info(self, t: Temp) -> TempInfo:
        return self._info.get(t, UNKNOWN)

    def const(self, t: Temp) -> int | None:
        return self.info(t).const

    def is_const(self, t: Temp, value: int) -> bool:
        return self.const(t) == value & MASK64

    def z_mask(self, t: Temp) -> int:
        return self.info(t).z_mask

    def s_bits(self, t: Temp) -> int:
        return self.info(t).s_bits

    # -- updates ------------------------------------------------------------
    def forget(self, t: Temp) -> None:
        """``t`` is about to be overwritten: drop its facts and every copy relation through it.

        Copies of ``t`` keep their own facts (their value does not change), only
        the relation "same value as ``t``" goes.
        """
        root = self._root_of.pop(t, None)
        if root is not None:
            self._copies[root].discard(t)
        for copy in self._copies.pop(t, set()):
            del self._root_of[copy]
        self._info.pop(t, None)

    def define(self, t: Temp, info: TempInfo) -> None:
        """``t`` now holds a new value described by ``info``."""
        self.forget(t)
        if info != UNKNOWN:
            self._info[t] = info

    def define_copy(self, dst: Temp, src: Temp) -> None:
        """``dst`` now holds the value of ``src`` (``src`` must already be canonical)."""
        info = self.info(src)
        self.define(dst, info)
        if dst != src:
            self._root_of[dst] = src
            self._copies.setdefault(src, set()).add(dst)

    def define_outputs_unknown(self, op: Op) -> None:
        for t in op.outputs:
            self.define(t, UNKNOWN)
