"""Preparing a TB for the interpreter: ops become compact steps, cached on the TB.

``run_tb`` would otherwise, for every op of every run, look the op up in the op
table, slice its arguments, build argument lists from Temps and resolve labels.
A *step* is a kind (a small int) and up to four items: value indexes (into the
interpreter's value vector: globals, then temps), constants and, for pure ops,
the function that computes the result. Labels are resolved to step numbers
(``set_label`` leaves no step). Constant folds with no input (``movi_i64``)
are computed here once.

The prepared code is stored by columns: ``(kinds, x0, x1, x2, x3)``, five
tuples indexed by step number (``x0[i]`` is the first item of step ``i``;
missing items are None). A tuple per step would cost the garbage collector
one tracked object per op: in a real run, the extra collections that caused
cost more than the interpreter saved. Columns also spare the loop one
subscript per step.

Where a faster Python form of an op exists it is used: ``mov_i64``,
``add_i64``, ``sub_i64`` and the bit-field ops (``ext8u``/``ext16u``/``ext32u``,
``extract_i64``) are inlined in the interpreter loop, some folds are replaced
by equal builtins (``operator.xor``...), and the conditions of
``setcond``/``movcond``/``brcond``/``trapcond`` are turned into two-argument
tests at preparation instead of ``eval_cond(Cond(c), ...)`` per run.
``tests/test_ir.py`` checks each of these against the op table.

The ``insn_start`` ops leave no step either when the pc of every step's
instruction is known statically: that is the case unless a branch jumps over
an ``insn_start`` (lifted and optimized TBs never do). A run with
``max_insns``, or of a TB where a branch does, uses a second code that keeps
them (``counting_code``) and tracks the pc as the ops do.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest

from tcg2wasm.ir.core import Op, TranslationBlock
from tcg2wasm.ir.ops import COND_TESTS, OPS, CondTest, OpDef, eval_cond, memop_for_write, memop_signed, memop_size

__all__ = ["BUILTIN_FOLDS", "META_KEY", "PreparedTB", "cond_test", "prepare_tb", "prepared_tb"]

Step = tuple  # (kind, x0, x1, x2, x3), the trailing Nones left out
Code = tuple[tuple, tuple, tuple, tuple, tuple]  # the steps by columns: (kinds, x0, x1, x2, x3)
Builder = Callable[[list], Step]  # op.args -> step

# Step kinds and their items (o: output index, a, b, ...: input indexes; a target is a step number).
MOV = 0  # (MOV, o, a)
CONST = 1  # (CONST, o, value)
BINARY = 2  # (BINARY, fn, o, a, b): o = fn(a, b)
FIELD = 3  # (FIELD, o, a, shift, mask): o = (a >> shift) & mask
UNARY = 4  # (UNARY, fn, o, a)
SETCOND = 5  # (SETCOND, test, o, a, b)
INSN_START = 6  # (INSN_START, pc): only in the counting code
GOTO_TB = 7  # (GOTO_TB, pc)
LOAD = 8  # (LOAD, o, addr, size)
STORE = 9  # (STORE, val, addr, size, mask)
BRCOND = 10  # (BRCOND, test, a, b, target)
BR = 11  # (BR, target)
GOTO_PTR = 12  # (GOTO_PTR, a)
LOAD_SIGNED = 13  # (LOAD_SIGNED, o, addr, size, memop): o = load_extend(load(addr, size), memop)
MOVCOND = 14  # (MOVCOND, test, o, (c1, c2, v1, v2))
PURE = 15  # (PURE, fn, o, input indexes, constants): any other pure op
TWO_OUTPUT = 16  # (TWO_OUTPUT, op name, o1, o2, input indexes)
TRAPCOND = 17  # (TRAPCOND, test, a, b, excp)
EXIT_TB = 18  # (EXIT_TB, code, pc)
FAIL = 19  # (FAIL, exception class, argument): what the op-by-op loop would raise there
ADD = 20  # (ADD, o, a, b): o = (a + b) mod 2**64
SUB = 21  # (SUB, o, a, b): o = (a - b) mod 2**64
MULTI = 22  # (MULTI, fn, output indexes, input indexes, constants): a pure op with several outputs
LOAD_FOR_WRITE = 23  # (LOAD_FOR_WRITE, o, addr, size, memop): LOAD_SIGNED with load_for_write (MemOp.FOR_WRITE)

META_KEY = "tcg2wasm.ir.prepare"

#: Builtins equal to an op's fold on unsigned 64-bit values, and cheaper to call than its lambda.
BUILTIN_FOLDS: dict[str, Callable[..., int]] = {
    "and_i64": operator.and_,
    "or_i64": operator.or_,
    "xor_i64": operator.xor,
    "ctpop_i64": int.bit_count,
}


def cond_test(cond: int) -> CondTest:
    """``eval_cond(Cond(cond), a, b)`` as a function of a and b (an unknown cond raises when the test runs)."""
    test = COND_TESTS.get(cond)  # type: ignore[call-overload]
    if test is None:
        return lambda a, b: eval_cond(cond, a, b)
    return test


def _dropped() -> None:
    return None


@dataclass(slots=True, eq=False)
class PreparedTB:
    """The code of one TB, for the op list ``ops`` and entry ``pc`` it was built from."""

    ops: list[Op]
    n_ops: int
    pc: int
    code: Code  # without insn_start steps
    insn_starts: list[int]  # step number of each instruction's first step
    insn_pcs: list[int]  # and that instruction's pc
    static_pcs: bool  # no jump crosses an insn_start: ``pc_at`` is the pc the op-by-op loop would have
    counting: Code | None = None

    def fits(self, tb: TranslationBlock) -> bool:
        """Built from ``tb`` as it is now (a TB copied with ``dataclasses.replace`` may carry a stale one)."""
        return self.ops is tb.ops and self.n_ops == len(tb.ops) and self.pc == tb.pc

    def pc_at(self, step: int) -> int:
        """The pc of the instruction step number ``step`` of ``code`` belongs to (for faults)."""
        n = bisect_right(self.insn_starts, step)
        return self.insn_pcs[n - 1] if n else self.pc

    def counting_code(self) -> Code:
        """The code with insn_start steps, which track the pc and count instructions."""
        if self.counting is None:
            self.counting = _build_code(self.ops, counting=True)[0]
        return self.counting

    def __reduce__(self) -> tuple:
        """Pickled (or deep-copied) as None: the code holds lambdas; a run prepares the TB again."""
        return _dropped, ()

    @staticmethod
    def forget(tb: TranslationBlock) -> None:
        tb.meta.pop(META_KEY, None)


def prepared_tb(tb: TranslationBlock) -> PreparedTB:
    """The prepared form of ``tb``, cached in ``tb.meta`` (rebuilt when ``tb.ops`` or ``tb.pc`` changed)."""
    prepared = tb.meta.get(META_KEY)
    if prepared is None or not prepared.fits(tb):
        prepared = tb.meta[META_KEY] = prepare_tb(tb)
    return prepared


def prepare_tb(tb: TranslationBlock) -> PreparedTB:
    code, insn_starts, insn_pcs, static_pcs = _build_code(tb.ops, counting=False)
    return PreparedTB(tb.ops, len(tb.ops), tb.pc, code, insn_starts, insn_pcs, static_pcs)


#: The last step of every code: running off the end of the ops fails there as in the op-by-op loop
#: (and, five items long, it gives the code all five columns).
_END = (FAIL, IndexError, "list index out of range", None, None)


def _build_code(ops: list[Op], counting: bool) -> tuple[Code, list[int], list[int], bool]:
    """Code for ``ops``; where each instruction starts in it and its pc; whether those pcs are exact.

    With ``counting``, insn_start ops become INSN_START steps. A jump's target is filled in once
    all labels are known; a jump to an undefined label goes to a FAIL step.
    """
    steps: list[Step] = []
    insn_starts: list[int] = []
    insn_pcs: list[int] = []
    labels: dict[int, tuple[int, int]] = {}  # label -> (step number, instructions started there)
    jumps: list[tuple[int, int, int]] = []  # (step number, label, instructions started there)
    builders = _BUILDERS
    append = steps.append
    movi = _fold_of(OPS["movi_i64"])
    for op in ops:
        name = op.name
        if name == "mov_i64":  # the two commonest ops, without a builder call
            args = op.args
            append((MOV, args[0].index, args[1].index))
            continue
        if name == "movi_i64":
            args = op.args
            append((CONST, args[0].index, movi(args[1])))
            continue
        build = builders.get(name)
        if build is not None:
            append(build(op.args))
        elif name == "insn_start":
            insn_starts.append(len(steps))
            insn_pcs.append(op.args[0])
            if counting:
                append((INSN_START, op.args[0]))
        elif name == "set_label":
            labels[op.args[0]] = (len(steps), len(insn_pcs))
        elif name == "br" or name == "brcond_i64":
            jumps.append((len(steps), op.args[-1], len(insn_pcs)))
            append(_BR_BUILDERS[name](op.args))
        else:
            append((FAIL, KeyError, name))  # unknown op: OPS[name] fails in the op-by-op loop
    append(_END)
    static_pcs = True
    for position, label, started in jumps:
        target = labels.get(label)
        if target is None:
            target = (len(steps), started)
            append((FAIL, KeyError, label))  # the op-by-op loop fails on the label lookup
        static_pcs = static_pcs and target[1] == started
        steps[position] = (*steps[position][:-1], target[0])  # the target is a branch's last item
    kinds, x0, x1, x2, x3 = zip_longest(*steps)  # _END gives every code all five columns
    return (kinds, x0, x1, x2, x3), insn_starts, insn_pcs, static_pcs


# -- one builder per op name: op.args -> step -------------------------------------------------------------


def _load(args: list) -> Step:
    memop = args[2]
    size = memop_size(memop)
    if memop_for_write(memop):
        return (LOAD_FOR_WRITE, args[0].index, args[1].index, size, memop)
    if memop_signed(memop):
        return (LOAD_SIGNED, args[0].index, args[1].index, size, memop)
    return (LOAD, args[0].index, args[1].index, size)


def _store(args: list) -> Step:
    size = memop_size(args[2])
    return (STORE, args[0].index, args[1].index, size, (1 << (8 * size)) - 1)


def _trapcond(args: list) -> Step:
    a, b, cond, excp = args
    return (TRAPCOND, cond_test(cond), a.index, b.index, excp)


def _two_output(name: str) -> Builder:
    return lambda args: (TWO_OUTPUT, name, args[0].index, args[1].index, tuple(t.index for t in args[2:]))


def _multi(d: OpDef) -> Builder:
    fn, n_out, n_in = d.multi, d.n_out, d.n_in
    return lambda args: (MULTI, fn, tuple(t.index for t in args[:n_out]),
                         tuple(t.index for t in args[n_out:n_out + n_in]), tuple(args[n_out + n_in:]))


def _field(mask: int) -> Builder:
    return lambda args: (FIELD, args[0].index, args[1].index, 0, mask)


def _extract(d: OpDef) -> Builder:
    fallback = _pure(d, _fold_of(d))

    def build(args: list) -> Step:
        pos, length = args[2], args[3]
        if pos >= 0 and length >= 0:
            return (FIELD, args[0].index, args[1].index, pos, (1 << length) - 1)
        return fallback(args)  # a negative count fails in the fold, when run

    return build


def _setcond(args: list) -> Step:
    o, a, b, cond = args
    return (SETCOND, cond_test(cond), o.index, a.index, b.index)


def _movcond(args: list) -> Step:
    o, c1, c2, v1, v2, cond = args
    return (MOVCOND, cond_test(cond), o.index, (c1.index, c2.index, v1.index, v2.index))


def _not_interpreted(name: str) -> Builder:
    return lambda args: (FAIL, AssertionError, name)


def _fold_of(d: OpDef) -> Callable[..., int]:
    if d.fold is None:
        raise ValueError(f"{d.name} has no fold")
    return d.fold


def _pure(d: OpDef, fn: Callable[..., int]) -> Builder:
    """Any op with a fold, by its shape."""
    n_in = d.n_in
    if d.n_const == 0 and n_in == 1:
        return lambda args: (UNARY, fn, args[0].index, args[1].index)
    if d.n_const == 0 and n_in == 2:
        return lambda args: (BINARY, fn, args[0].index, args[1].index, args[2].index)
    if n_in == 0:
        return lambda args: (CONST, args[0].index, fn(*args[1:]))
    return lambda args: (PURE, fn, args[0].index, tuple(t.index for t in args[1 : 1 + n_in]), tuple(args[1 + n_in :]))


def _builders() -> dict[str, Builder]:
    builders: dict[str, Builder] = {}
    for name, d in OPS.items():
        if name in ("insn_start", "set_label", "br", "brcond_i64"):
            continue  # handled by _build_code itself
        if d.fold is not None:
            builders[name] = _pure(d, BUILTIN_FOLDS.get(name, _fold_of(d)))
        elif name in ("mulu2_i64", "muls2_i64", "divu2_i64", "divs2_i64"):
            builders[name] = _two_output(name)
        elif d.multi is not None:
            builders[name] = _multi(d)
        else:  # replaced below if it is one of the interpreter's special ops
            builders[name] = _not_interpreted(name)
    builders.update({
        "mov_i64": lambda args: (MOV, args[0].index, args[1].index),
        "add_i64": lambda args: (ADD, args[0].index, args[1].index, args[2].index),
        "sub_i64": lambda args: (SUB, args[0].index, args[1].index, args[2].index),
        "ext8u_i64": _field(0xFF),
        "ext16u_i64": _field(0xFFFF),
        "ext32u_i64": _field(0xFFFFFFFF),
        "extract_i64": _extract(OPS["extract_i64"]),
        "setcond_i64": _setcond,
        "movcond_i64": _movcond,
        "qemu_ld_i64": _load,
        "qemu_st_i64": _store,
        "goto_tb": lambda args: (GOTO_TB, args[0]),
        "goto_ptr": lambda args: (GOTO_PTR, args[0].index),
        "exit_tb": lambda args: (EXIT_TB, args[0], args[1]),
        "trapcond_i64": _trapcond,
    })
    return builders


_BUILDERS = _builders()
#: The branches: their last item is the target, filled in once the labels are known.
_BR_BUILDERS: dict[str, Builder] = {
    "br": lambda args: (BR, None),
    "brcond_i64": lambda args: (BRCOND, cond_test(args[2]), args[0].index, args[1].index, None),
}
