"""Backward pass: liveness and dead code elimination.

Liveness rule (what is live *before* an op):

    live_before = (live_after - outputs) | inputs | (all globals, if the op is an exit point)

Exit points are ops with ``OpFlag.BB_END`` and ops that may fault
(``qemu_ld_i64``, ``qemu_st_i64``, ``trapcond_i64``): a fault leaves the
translated code and stores every global, which must then hold its value at the
start of the faulting instruction (precise exceptions). ``live_after`` is empty
after ``goto_tb``/``goto_ptr``/``exit_tb``, the live set recorded at the label
after ``br``, and the union of the fall-through and the label's live sets after
``brcond_i64``. Branches inside a TB only go forward, so every label is met
(walking backward) before the branches that target it: one pass is exact.

Walking backward, the pass also removes a ``br``/``brcond_i64`` to the label
defined right after it (``control.is_jump_to_next_op``), before looking at
its liveness, as if that cleanup had run as a pass of its own just before.

Live sets are bit masks (bit ``i`` for the temp of index ``i``): the ops are
in index form (``shape.py``), and a union or a copy of a mask is one int
operation.
"""

from __future__ import annotations

from tcg2wasm.ir.core import N_GLOBALS, Op
from tcg2wasm.opt.control import is_jump_to_next_op
from tcg2wasm.opt.shape import SHAPES

ALL_GLOBALS_MASK: int = (1 << N_GLOBALS) - 1
_NARROWED_MUL = {"mulu2_i64": "mul_i64", "muls2_i64": "mul_i64"}


def _mask_of(temps: list[int]) -> int:
    mask = 0
    for t in temps:
        mask |= 1 << t
    return mask


def _label_live(op: Op, at_label: dict[int, int]) -> int:
    """The live mask recorded at the label ``op`` branches to."""
    live = at_label.get(op.args[-1])
    if live is None:
        raise ValueError(f"{op.name} to $L{op.args[-1]}: the label is not defined after the branch "
                         "(branches go forward)")
    return live


def backward_pass(ops: list[Op]) -> tuple[list[Op], bool]:
    """Jump cleanup and dead code removal on ops in index form, and whether anything changed."""
    at_label: dict[int, int] = {}
    live = 0
    kept: list[Op] = []
    changed = False
    shapes = SHAPES
    following: Op | None = None  # the op after ``op`` in ``ops``
    for op in reversed(ops):
        name = op.name
        args = op.args
        shape = shapes[name]
        # live after op
        if name == "br" or name == "brcond_i64":
            if is_jump_to_next_op(op, following):
                changed = True
                following = op
                continue
            live = _label_live(op, at_label) if name == "br" else live | _label_live(op, at_label)
        elif shape.terminator:
            live = 0
        following = op
        # dead results
        n_out = shape.n_out
        if n_out:
            out_mask = 1 << args[0] if n_out == 1 else _mask_of(args[:n_out])
            if not live & out_mask and not shape.side_effects:
                changed = True
                continue
            if n_out == 2 and name in _NARROWED_MUL and not live >> args[1] & 1:
                op = Op(_NARROWED_MUL[name], [args[0], *args[2:]])  # the low half is the plain product
                changed = True
            live &= ~out_mask
        elif not shape.side_effects:  # writes nothing and does nothing
            changed = True
            continue
        # live before op
        kept.append(op)
        for t in args[n_out : shape.n_temps]:
            live |= 1 << t
        if shape.exit_point:
            live |= ALL_GLOBALS_MASK
            if name == "set_label":
                at_label[args[0]] = live
    kept.reverse()
    return kept, changed
