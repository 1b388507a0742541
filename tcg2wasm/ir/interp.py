"""The IR interpreter: the Machine's cold tier, and the second backend the tests check against.

It executes a translation block on a list of global values and a guest-memory
object, with the semantics given in the op table. A TB is first *prepared*
once (``tcg2wasm.ir.prepare``: ops become compact steps over value indexes,
stored by columns, and labels become step numbers) and the prepared form is
cached on the TB, so a block run again costs only its steps. ``_run_tb_reference`` is the plain
op-by-op loop the tests compare the fast one with.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tcg2wasm.errors import GuestFault
from tcg2wasm.ir.core import N_GLOBALS, TranslationBlock
from tcg2wasm.ir.ops import (
    MASK64,
    OPS,
    Excp,
    Exit,
    eval_cond,
    load_extend,
    memop_for_write,
    memop_size,
    two_output_values,
)
from tcg2wasm.ir.prepare import (
    ADD,
    BINARY,
    BR,
    BRCOND,
    CONST,
    EXIT_TB,
    FAIL,
    FIELD,
    GOTO_PTR,
    GOTO_TB,
    INSN_START,
    LOAD,
    LOAD_FOR_WRITE,
    LOAD_SIGNED,
    META_KEY,
    MOV,
    MOVCOND,
    MULTI,
    PURE,
    SETCOND,
    STORE,
    SUB,
    TRAPCOND,
    TWO_OUTPUT,
    UNARY,
    Code,
    PreparedTB,
    prepared_tb,
)

__all__ = ["GuestMemory", "TBResult", "forget_prepared", "run_tb"]

_NO_LIMIT = sys.maxsize  # max_insns=None: more instructions than any TB has
#: The temps' initial zeros, by count (concatenating a ready list is cheaper than building one).
_ZEROS: tuple[list[int], ...] = tuple([0] * n for n in range(512))


class GuestMemory(Protocol):
    def load(self, addr: int, size: int) -> int: ...

    def load_for_write(self, addr: int, size: int) -> int:
        """The read of a read-modify-write (``MemOp.FOR_WRITE``): faults as a write where it cannot write."""
        ...

    def store(self, addr: int, size: int, value: int) -> None: ...


@dataclass(slots=True)
class TBResult:
    exit: Exit
    pc: int  # next pc, or the faulting instruction's pc
    fault_kind: Excp = Excp.NONE
    fault_addr: int = 0


def run_tb(tb: TranslationBlock, values: list[int], mem: GuestMemory, max_insns: int | None = None) -> TBResult:
    """Execute ``tb``; ``values[:N_GLOBALS]`` are the guest globals, updated in place.

    With ``max_insns``, stop before the instruction after the first ``max_insns`` ones
    (Exit.CONTINUE at its pc). Globals are all written back at every ``insn_start`` of a TB as
    lifted, so the state is exact there; an optimized TB may have moved writes across
    instructions, so only a lifted TB may be cut this way.

    The TB is prepared at its first run (see ``tcg2wasm.ir.prepare``); its ops must not be
    changed in place after that (replacing ``tb.ops`` by another list is fine).
    """
    prepared = tb.meta.get(META_KEY)
    if prepared is None or not prepared.fits(tb):
        prepared = prepared_tb(tb)
    padding = N_GLOBALS + tb.n_temps - len(values)
    v = values + (_ZEROS[padding] if 0 <= padding < len(_ZEROS) else [0] * padding)
    if max_insns is None and prepared.static_pcs:
        return _execute(prepared.code, prepared.pc_at, values, v, mem, tb.pc, _NO_LIMIT)
    limit = _NO_LIMIT if max_insns is None else max_insns
    return _execute(prepared.counting_code(), None, values, v, mem, tb.pc, limit)


def forget_prepared(tb: TranslationBlock) -> None:
    """Drop the prepared form cached on ``tb`` (benchmarks use it to time cold runs)."""
    PreparedTB.forget(tb)


def _execute(code: Code, pc_at: Callable[[int], int] | None, values: list[int], v: list[int],
             mem: GuestMemory, insn_pc: int, limit: int) -> TBResult:
    """Run prepared ``code`` on the value vector ``v`` (globals, then temps) until the TB exits.

    ``i`` is the current step; ``x0[i]`` .. ``x3[i]`` are its items. ``pc_at`` gives the instruction
    pc of a step when the code has no ``INSN_START``; otherwise (``None``) the insn_start steps
    track the pc and count instructions up to ``limit``. The kinds are tested roughly by how often
    they occur in lifted code.
    """
    kinds, x0, x1, x2, x3 = code
    i = 0
    started = 0
    try:
        while True:
            kind = kinds[i]
            if kind == MOV:
                v[x0[i]] = v[x1[i]]
            elif kind == BINARY:
                v[x1[i]] = x0[i](v[x2[i]], v[x3[i]])
            elif kind == FIELD:
                v[x0[i]] = (v[x1[i]] >> x2[i]) & x3[i]
            elif kind == CONST:
                v[x0[i]] = x1[i]
            elif kind == ADD:
                v[x0[i]] = (v[x1[i]] + v[x2[i]]) & MASK64
            elif kind == SETCOND:
                v[x1[i]] = 1 if x0[i](v[x2[i]], v[x3[i]]) else 0
            elif kind == UNARY:
                v[x1[i]] = x0[i](v[x2[i]])
            elif kind == GOTO_TB:
                return _leave(values, v, TBResult(Exit.CONTINUE, x0[i]))
            elif kind == LOAD:
                v[x0[i]] = mem.load(v[x1[i]], x2[i])
            elif kind == STORE:
                mem.store(v[x1[i]], x2[i], v[x0[i]] & x3[i])
            elif kind == BRCOND:
                if x0[i](v[x1[i]], v[x2[i]]):
                    i = x3[i]
                    continue
            elif kind == SUB:
                v[x0[i]] = (v[x1[i]] - v[x2[i]]) & MASK64
            elif kind == INSN_START:
                insn_pc = x0[i]
                started += 1
                if started > limit:
                    return _leave(values, v, TBResult(Exit.CONTINUE, insn_pc))
            elif kind == BR:
                i = x0[i]
                continue
            else:
                result = _less_common_step(kind, x0[i], x1[i], x2[i], x3[i], v, mem)
                if result is _TRAPPED:
                    pc = insn_pc if pc_at is None else pc_at(i)
                    return _leave(values, v, TBResult(Exit.FAULT, pc, Excp(x3[i])))
                if result is not None:
                    return _leave(values, v, result)
            i += 1
    except GuestFault as f:
        pc = insn_pc if pc_at is None else pc_at(i)
        return _leave(values, v, TBResult(Exit.FAULT, pc, f.kind, f.addr))


#: What ``_less_common_step`` returns when a trapcond fires (its caller knows the instruction's pc).
_TRAPPED = TBResult(Exit.FAULT, 0)


def _less_common_step(kind: int, a: Any, b: Any, c: Any, d: Any, v: list[int], mem: GuestMemory) -> TBResult | None:
    """The step kinds lifted code runs less often (kept out of ``_execute``'s chain of tests).

    ``a``..``d`` are the step's items; a result ends the TB (``_TRAPPED``: a trapcond fired).
    """
    if kind == GOTO_PTR:
        return TBResult(Exit.CONTINUE, v[a])
    if kind == LOAD_SIGNED:
        v[a] = load_extend(mem.load(v[b], c), d)
    elif kind == LOAD_FOR_WRITE:
        v[a] = load_extend(mem.load_for_write(v[b], c), d)
    elif kind == MOVCOND:
        c1, c2, v1, v2 = c
        v[b] = v[v1] if a(v[c1], v[c2]) else v[v2]
    elif kind == PURE:
        v[b] = a(*[v[x] for x in c], *d)
    elif kind == TWO_OUTPUT:
        v[b], v[c] = two_output_values(a, [v[x] for x in d])
    elif kind == MULTI:
        for out, value in zip(b, a(*[v[x] for x in c], *d), strict=True):
            v[out] = value
    elif kind == TRAPCOND:
        return _TRAPPED if a(v[b], v[c]) else None
    elif kind == EXIT_TB:
        return TBResult(Exit(a), b)
    elif kind == FAIL:
        raise a(b)
    else:
        raise AssertionError(f"unknown step kind {kind}")
    return None


def _leave(values: list[int], v: list[int], result: TBResult) -> TBResult:
    values[:N_GLOBALS] = v[:N_GLOBALS]
    return result


# -- the reference: one op at a time, straight from the op table (tests compare run_tb with it) --------------


def _run_tb_reference(tb: TranslationBlock, values: list[int], mem: GuestMemory,
                      max_insns: int | None = None) -> TBResult:
    """``run_tb`` as a plain op-by-op loop, with nothing prepared or cached."""
    v = values + [0] * (N_GLOBALS + tb.n_temps - len(values))
    started = 0
    labels = {op.args[0]: i for i, op in enumerate(tb.ops) if op.name == "set_label"}
    insn_pc = tb.pc
    i = 0
    ops = tb.ops
    try:
        while True:
            op = ops[i]
            i += 1
            name = op.name
            d = OPS[name]
            if d.fold is not None:
                args = [v[t.index] for t in op.inputs] + op.consts
                v[op.args[0].index] = d.fold(*args)
                continue
            if d.multi is not None:
                results = d.multi(*[v[t.index] for t in op.inputs], *op.consts)
                for t, value in zip(op.outputs, results, strict=True):
                    v[t.index] = value
                continue
            match name:
                case "insn_start":
                    insn_pc = op.args[0]
                    started += 1
                    if max_insns is not None and started > max_insns:
                        return _leave(values, v, TBResult(Exit.CONTINUE, insn_pc))
                case "set_label":
                    pass
                case "br":
                    i = labels[op.args[0]]
                case "brcond_i64":
                    a, b = (v[t.index] for t in op.inputs)
                    if eval_cond(op.consts[0], a, b):
                        i = labels[op.consts[1]]
                case "trapcond_i64":
                    a, b = (v[t.index] for t in op.inputs)
                    if eval_cond(op.consts[0], a, b):
                        return _leave(values, v, TBResult(Exit.FAULT, insn_pc, Excp(op.consts[1])))
                case "qemu_ld_i64":
                    load = mem.load_for_write if memop_for_write(op.consts[0]) else mem.load
                    raw = load(v[op.args[1].index], memop_size(op.consts[0]))
                    v[op.args[0].index] = load_extend(raw, op.consts[0])
                case "qemu_st_i64":
                    size = memop_size(op.consts[0])
                    mem.store(v[op.args[1].index], size, v[op.args[0].index] & ((1 << (8 * size)) - 1))
                case "goto_tb":
                    return _leave(values, v, TBResult(Exit.CONTINUE, op.args[0]))
                case "goto_ptr":
                    return _leave(values, v, TBResult(Exit.CONTINUE, v[op.args[0].index]))
                case "exit_tb":
                    return _leave(values, v, TBResult(Exit(op.args[0]), op.args[1]))
                case _:
                    lo, hi = two_output_values(name, [v[t.index] for t in op.inputs])
                    v[op.args[0].index], v[op.args[1].index] = lo, hi
    except GuestFault as f:
        return _leave(values, v, TBResult(Exit.FAULT, insn_pc, f.kind, f.addr))
