"""Small control-flow cleanups between the main passes."""

from __future__ import annotations

from tcg2wasm.ir.core import Op


def drop_jumps_to_next_op(ops: list[Op]) -> list[Op]:
    """Remove ``br``/``brcond_i64`` whose label is defined right after them.

    Both ways lead to the same op, and a branch's inputs have no side effects.
    The label itself stays; the next forward pass drops it once nothing
    targets it.
    """
    out: list[Op] = []
    for i, op in enumerate(ops):
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        is_jump = op.name in ("br", "brcond_i64")
        if is_jump and nxt is not None and nxt.name == "set_label" and nxt.args[0] == op.consts[-1]:
            continue
        out.append(op)
    return out
