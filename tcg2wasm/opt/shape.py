"""What the passes need to know about each op, read once from the op table, and the index form of ops.

The passes look at every op several times per round. Reading ``Op.opdef``
and slicing ``inputs``/``outputs`` each time costs more than the work itself,
so ``SHAPES`` keeps, per op name, the few facts they use. The op table
(``tcg2wasm/ir/ops.py``) stays the only source of these facts.

Inside the passes, ops are in *index form*: the ``Temp`` arguments are
replaced by their indices (plain ints), so the knowledge maps and live sets
hash ints in C instead of calling ``Temp.__hash__``. ``to_index_form`` and
``to_temp_form`` convert at the driver's entry and exit.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcg2wasm.ir.core import Op, Temp
from tcg2wasm.ir.ops import OPS, OpDef, OpFlag, PureFn

FAULT_POINTS: frozenset[str] = frozenset({"qemu_ld_i64", "qemu_st_i64", "trapcond_i64"})
"""Ops that may fault: every global is observable there (precise exceptions)."""


@dataclass(frozen=True, slots=True)
class OpShape:
    """The facts about one op that the passes read for every op they visit."""

    n_out: int
    n_in: int
    n_temps: int  # outputs and inputs: the constants start at this argument index
    side_effects: bool  # never removed, even when its outputs are dead
    terminator: bool  # control never falls through
    exit_point: bool  # control may leave the TB (or join) here: every global is observable
    const_fold: PureFn | None  # the semantics of a pure single-output op, else None

    @staticmethod
    def of(d: OpDef) -> OpShape:
        return OpShape(
            n_out=d.n_out,
            n_in=d.n_in,
            n_temps=d.n_out + d.n_in,
            side_effects=bool(d.flags & OpFlag.SIDE_EFFECTS),
            terminator=bool(d.flags & OpFlag.TERMINATOR),
            exit_point=bool(d.flags & OpFlag.BB_END) or d.name in FAULT_POINTS,
            const_fold=d.fold if d.n_out == 1 else None,
        )


SHAPES: dict[str, OpShape] = {name: OpShape.of(d) for name, d in OPS.items()}
_N_TEMP_ARGS: dict[str, int] = {name: s.n_temps for name, s in SHAPES.items()}


class _TempTable(dict):
    """index -> Temp, made once per index (the ops of a result share them; Temps are immutable)."""

    def __missing__(self, index: int) -> Temp:
        temp = self[index] = Temp(index)
        return temp


_TEMPS = _TempTable()


def to_index_form(ops: list[Op]) -> list[Op]:
    """Ops with every Temp argument replaced by its index.

    An op without temps is shared, not copied: the passes never modify an op.
    """
    n_temp_args = _N_TEMP_ARGS
    out = []
    for op in ops:
        args = op.args
        k = n_temp_args[op.name]
        if k == 0:
            out.append(op)
        elif k == len(args):
            out.append(Op(op.name, [t.index for t in args]))
        else:
            out.append(Op(op.name, [t.index for t in args[:k]] + args[k:]))
    return out


def to_temp_form(ops: list[Op]) -> list[Op]:
    """New ops with every temp index replaced by its Temp: the inverse of ``to_index_form``."""
    n_temp_args = _N_TEMP_ARGS
    temps = _TEMPS
    out = []
    for op in ops:
        args = op.args
        k = n_temp_args[op.name]
        if k == len(args):
            out.append(Op(op.name, [temps[i] for i in args]))
        else:
            out.append(Op(op.name, [temps[i] for i in args[:k]] + args[k:]))
    return out
