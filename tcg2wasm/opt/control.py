"""Small control-flow cleanups, applied during the backward pass (``liveness.py``)."""

from __future__ import annotations

from tcg2wasm.ir.core import Op


def is_jump_to_next_op(op: Op, following: Op | None) -> bool:
    """``op`` is a ``br``/``brcond_i64`` to the label defined by ``following``, the op right after it.

    Both ways lead to the same op, and a branch's inputs have no side effects,
    so the jump can go. The label itself stays; the next forward pass drops it
    once nothing targets it.
    """
    return (
        (op.name == "br" or op.name == "brcond_i64")
        and following is not None
        and following.name == "set_label"
        and following.args[0] == op.args[-1]
    )

