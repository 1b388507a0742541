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
"""

from __future__ import annotations

from tcg2wasm.ir.core import N_GLOBALS, Op, Temp
from tcg2wasm.ir.ops import OpFlag

ALL_GLOBALS: frozenset[Temp] = frozenset(Temp(i) for i in range(N_GLOBALS))
FAULT_POINTS: frozenset[str] = frozenset({"qemu_ld_i64", "qemu_st_i64", "trapcond_i64"})
_NARROWED_MUL = {"mulu2_i64": "mul_i64", "muls2_i64": "mul_i64"}


def is_exit_point(op: Op) -> bool:
    """Control may leave the TB (or join from elsewhere) here, so every global is observable."""
    return bool(op.opdef.flags & OpFlag.BB_END) or op.name in FAULT_POINTS


def _live_after(op: Op, fallthrough: set[Temp], at_label: dict[int, frozenset[Temp]]) -> set[Temp]:
    """Temps live just after ``op``, given those live at the next op and at each label."""
    if op.name == "br":
        return set(_label_live(op, at_label))
    if op.name == "brcond_i64":
        return fallthrough | _label_live(op, at_label)
    if op.opdef.flags & OpFlag.TERMINATOR:
        return set()
    return fallthrough


def _label_live(op: Op, at_label: dict[int, frozenset[Temp]]) -> frozenset[Temp]:
    label = op.consts[-1]
    if label not in at_label:
        raise ValueError(f"{op.name} to $L{label}: the label is not defined after the branch (branches go forward)")
    return at_label[label]


def _simplify_dead_outputs(op: Op, live: set[Temp]) -> Op | None:
    """``op`` with dead results removed: None if it can go entirely."""
    outputs = op.outputs
    if op.opdef.flags & OpFlag.SIDE_EFFECTS or any(t in live for t in outputs):
        if op.name in _NARROWED_MUL and outputs[1] not in live:
            return Op(_NARROWED_MUL[op.name], [outputs[0], *op.inputs])  # the low half is the plain product
        return op
    return None


def eliminate_dead_code(ops: list[Op]) -> list[Op]:
    """Remove ops without side effects whose results are never observed."""
    at_label: dict[int, frozenset[Temp]] = {}
    live: set[Temp] = set()
    kept: list[Op] = []
    for op in reversed(ops):
        live = _live_after(op, live, at_label)
        new = _simplify_dead_outputs(op, live)
        if new is None:
            continue
        kept.append(new)
        live.difference_update(new.outputs)
        live.update(new.inputs)
        if is_exit_point(new):
            live |= ALL_GLOBALS
        if new.name == "set_label":
            at_label[new.args[0]] = frozenset(live)
    kept.reverse()
    return kept
