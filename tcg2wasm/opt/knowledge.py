"""What the forward pass knows about each temp: constants, known-zero bits, sign width, copies.

The knowledge is valid at one point of a forward walk over the ops. It is
dropped entirely at a label (a join point) and updated for every output an op
writes. Copy relations are kept as a map from each copy to its *root* (a temp
that is not itself a copy), plus the reverse map so that redefining a root
invalidates every copy of it in one step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from tcg2wasm.ir.ops import MASK64

TempKey = int
"""A temp as the knowledge maps see it: its index, since the passes work on ops in index form
(``shape.to_index_form``). A ``Temp`` object works as well (the tests use them)."""


def sign_width(value: int) -> int:
    """Smallest ``w`` such that ``value`` is the sign extension of its low ``w`` bits."""
    value &= MASK64
    signed = value - (1 << 64) if value >> 63 else value
    return (signed if signed >= 0 else ~signed).bit_length() + 1


class TempInfo(NamedTuple):
    """Facts about a temp's current value (a tuple: compared in C; ``UNKNOWN`` is the default).

    ``z_mask``: bits that may be nonzero (a 0 bit is known to be 0).
    ``s_bits``: the value is the sign extension of its low ``s_bits`` bits.
    """

    const: int | None = None
    z_mask: int = MASK64
    s_bits: int = 64

    @staticmethod
    def of_const(value: int) -> TempInfo:
        return const_info(value & MASK64)


UNKNOWN = TempInfo()


@lru_cache(maxsize=4096)
def known_bits(z_mask: int, s_bits: int) -> TempInfo:
    """``TempInfo(None, z_mask, s_bits)``, cached: making a tuple subclass costs more than a lookup,
    and the same few masks (a byte, a flag, 32 bits…) come back all the time."""
    return TempInfo(None, z_mask, s_bits)


@lru_cache(maxsize=4096)
def const_info(value: int) -> TempInfo:
    """The facts about a constant (``value`` already masked to 64 bits). Cached: the same few
    constants come back in every block."""
    return TempInfo(value, value, sign_width(value))


class OptContext:
    """Per-temp knowledge at the current point of the forward pass.

    Only temps with something known have an entry in ``_info``: a missing
    entry means ``UNKNOWN``.
    """

    __slots__ = ("_info", "_root_of", "_copies")

    def __init__(self) -> None:
        self._info: dict[TempKey, TempInfo] = {}
        self._root_of: dict[TempKey, TempKey] = {}
        self._copies: dict[TempKey, set[TempKey]] = {}

    def reset(self) -> None:
        """Forget everything (at a join point)."""
        self._info.clear()
        self._root_of.clear()
        self._copies.clear()

    # -- queries ------------------------------------------------------------
    def canon(self, t: TempKey) -> TempKey:
        """The root temp holding the same value as ``t`` here."""
        return self._root_of.get(t, t)

    def canonical_args(self, args: list, start: int, stop: int) -> list | None:
        """``args`` with ``args[start:stop]`` replaced by their roots, or None when none is a copy."""
        root_of = self._root_of
        if not root_of:
            return None
        for i in range(start, stop):
            if args[i] in root_of:
                new = list(args)
                for j in range(i, stop):
                    new[j] = root_of.get(new[j], new[j])
                return new
        return None

    def info(self, t: TempKey) -> TempInfo:
        return self._info.get(t, UNKNOWN)

    def const(self, t: TempKey) -> int | None:
        info = self._info.get(t)
        return None if info is None else info.const

    def consts(self, temps: list[TempKey]) -> list[int] | None:
        """The constant values of ``temps``, or None unless every one is a known constant."""
        known = self._info
        values = []
        for t in temps:
            info = known.get(t)
            if info is None or info.const is None:
                return None
            values.append(info.const)
        return values

    def is_const(self, t: TempKey, value: int) -> bool:
        info = self._info.get(t)
        return info is not None and info.const == value & MASK64

    def z_mask(self, t: TempKey) -> int:
        info = self._info.get(t)
        return MASK64 if info is None else info.z_mask

    def s_bits(self, t: TempKey) -> int:
        info = self._info.get(t)
        return 64 if info is None else info.s_bits

    # -- updates ------------------------------------------------------------
    def forget(self, t: TempKey) -> None:
        """``t`` is about to be overwritten: drop its facts and every copy relation through it.

        Copies of ``t`` keep their own facts (their value does not change), only
        the relation "same value as ``t``" goes.
        """
        if t in self._root_of or t in self._copies:
            self._unlink(t)
        self._info.pop(t, None)

    def define(self, t: TempKey, info: TempInfo) -> None:
        """``t`` now holds a new value described by ``info``."""
        if t in self._root_of or t in self._copies:
            self._unlink(t)
        if info != UNKNOWN:
            self._info[t] = info
        else:
            self._info.pop(t, None)

    def define_copy(self, dst: TempKey, src: TempKey) -> None:
        """``dst`` now holds the value of ``src`` (``src`` must already be canonical)."""
        if dst in self._root_of or dst in self._copies:
            self._unlink(dst)
        info = self._info.get(src)
        if info is not None:
            self._info[dst] = info
        else:
            self._info.pop(dst, None)
        if dst != src:
            self._root_of[dst] = src
            copies = self._copies.get(src)
            if copies is None:
                self._copies[src] = {dst}
            else:
                copies.add(dst)

    def _unlink(self, t: TempKey) -> None:
        """Drop the copy relations through ``t``: its own, and those of the copies of it."""
        root_of = self._root_of
        root = root_of.pop(t, None)
        if root is not None:
            self._copies[root].discard(t)
        copies = self._copies.pop(t, None)
        if copies:
            for copy in copies:
                del root_of[copy]
