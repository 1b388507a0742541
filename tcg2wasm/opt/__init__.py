"""The IR optimizer: constant folding and copy propagation, then liveness-based dead code removal.

``optimize_tb`` runs the passes until the op list stops changing (at most
``MAX_ROUNDS`` times) and returns a new TranslationBlock; the input is not
modified. See docs/optimizer.md.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from tcg2wasm.ir.core import Op, TranslationBlock
from tcg2wasm.ir.validate import validate_tb
from tcg2wasm.opt.fold import forward_pass
from tcg2wasm.opt.liveness import backward_pass
from tcg2wasm.opt.shape import to_index_form, to_temp_form

__all__ = ["MAX_ROUNDS", "op_histogram", "optimize_ops", "optimize_tb"]

MAX_ROUNDS = 8
#: Validate every optimized TB (the test suite sets it). Off in production: the front end emits
#: valid TBs and the backend validates what it compiles anyway, before anything reaches Binaryen.
CHECK_IR = os.environ.get("TCG2WASM_CHECK_IR", "") not in ("", "0")


def optimize_ops(ops: list[Op]) -> list[Op]:
    """Run the passes over ``ops`` to a fixpoint (or MAX_ROUNDS rounds); returns new Op objects.

    A round is the forward pass, then the backward pass (jump cleanup and dead
    code removal). Each pass reports whether it changed anything, so reaching
    the fixpoint costs no comparison of op lists.
    """
    current = to_index_form(ops)
    for _ in range(MAX_ROUNDS):
        folded, fold_changed = forward_pass(current)
        new, dce_changed = backward_pass(folded)
        if not (fold_changed or dce_changed):
            break
        current = new
    return to_temp_form(current)


def optimize_tb(tb: TranslationBlock) -> TranslationBlock:
    """A new TB with the same behaviour under the IR interpreter and usually fewer ops.

    With ``CHECK_IR`` the input and the result are validated (a malformed TB
    raises ``IRError`` naming the problem). Temp and label numbering is kept, so
    ``n_temps`` and ``n_labels`` are unchanged; some temps or labels may become unused.
    """
    if CHECK_IR:
        validate_tb(tb)
    ops = optimize_ops(tb.ops)
    new = replace(tb, ops=ops, insns=list(tb.insns), meta=dict(tb.meta))
    if CHECK_IR:
        validate_tb(new)
    return new


def op_histogram(ops: Iterable[Op]) -> dict[str, int]:
    """How many times each op name occurs, keys sorted by name."""
    counts = Counter(op.name for op in ops)
    return {name: counts[name] for name in sorted(counts)}
