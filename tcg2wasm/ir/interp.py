"""Reference interpreter of the IR: the second backend, used by tests.

It executes a translation block op by op on a list of global values and a
guest-memory object, with the semantics given in the op table. It is slow and
simple on purpose: the wasm backend is checked against it and against Unicorn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tcg2wasm.ir.core import N_GLOBALS, Op, TranslationBlock
from tcg2wasm.ir.ops import MASK64, OPS, Cond, Excp, Exit, eval_cond, memop_size, to_signed


class GuestFault(Exception):
    """Raised by a GuestMemory on a failed access."""

    def __init__(self, kind: Excp, addr: int) -> None:
        super().__init__(f"{kind.name} at 0x{addr:x}")
        self.kind = kind
        self.addr = addr


class GuestMemory(Protocol):
    def load(self, addr: int, size: int) -> int: ...

    def store(self, addr: int, size: int, value: int) -> None: ...


@dataclass
class TBResult:
    exit: Exit
    pc: int  # next pc, or the faulting instruction's pc
    fault_kind: Excp = Excp.NONE
    fault_addr: int = 0


def _two_output(op: Op, v: list[int]) -> tuple[int, int]:
    a = [v[t.index] for t in op.inputs]
    match op.name:
        case "mulu2_i64":
            p = a[0] * a[1]
        case "muls2_i64":
            p = to_signed(a[0]) * to_signed(a[1])
        case "divu2_i64":
            n = (a[1] << 64) | a[0]
            q, r = divmod(n, a[2])
            return q & MASK64, r & MASK64
        case "divs2_i64":
            n = to_signed(a[1]) << 64 | a[0]
            d = to_signed(a[2])
            q = abs(n) // abs(d)
            q = q if (n < 0) == (d < 0) else -q
            return q & MASK64, (n - q * d) & MASK64
        case _:
            raise AssertionError(op.name)
    return p & MASK64, (p >> 64) & MASK64


def run_tb(tb: TranslationBlock, values: list[int], mem: GuestMemory, max_insns: int | None = None) -> TBResult:
    """Execute ``tb``; ``values[:N_GLOBALS]`` are the guest globals, updated in place.

    With ``max_insns``, stop before the instruction after the first ``max_insns`` ones
    (Exit.CONTINUE at its pc). Globals are all written back at every ``insn_start`` of a TB as
    lifted, so the state is exact there; an optimized TB may have moved writes across
    instructions, so only a lifted TB may be cut this way.
    """
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
                    if eval_cond(Cond(op.consts[0]), a, b):
                        i = labels[op.consts[1]]
                case "trapcond_i64":
                    a, b = (v[t.index] for t in op.inputs)
                    if eval_cond(Cond(op.consts[0]), a, b):
                        return _leave(values, v, TBResult(Exit.FAULT, insn_pc, Excp(op.consts[1])))
                case "qemu_ld_i64":
                    size = memop_size(op.consts[0])
                    raw = mem.load(v[op.args[1].index], size)
                    if op.consts[0] & 4:
                        bits = 8 * size
                        raw = ((raw ^ (1 << (bits - 1))) - (1 << (bits - 1))) & MASK64
                    v[op.args[0].index] = raw
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
                    lo, hi = _two_output(op, v)
                    v[op.args[0].index], v[op.args[1].index] = lo, hi
    except GuestFault as f:
        return _leave(values, v, TBResult(Exit.FAULT, insn_pc, f.kind, f.addr))


def _leave(values: list[int], v: list[int], result: TBResult) -> TBResult:
    values[:N_GLOBALS] = v[:N_GLOBALS]
    return result
