"""The semantics table: iced-x86 mnemonic -> lifting function (miasm's one-function-per-mnemonic style)."""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext

SemFn = Callable[[LiftContext, ix.Instruction], None]
SEMANTICS: dict[int, SemFn] = {}


def semantics(*mnemonics: int) -> Callable[[SemFn], SemFn]:
    """Register ``fn`` as the lifter of each mnemonic (``iced_x86.Mnemonic`` values)."""

    def register(fn: SemFn) -> SemFn:
        for m in mnemonics:
            if m in SEMANTICS:
                raise ValueError(f"mnemonic {m} registered twice ({SEMANTICS[m].__name__}, {fn.__name__})")
            SEMANTICS[m] = fn
        return fn

    return register
