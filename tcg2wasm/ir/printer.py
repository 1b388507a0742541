"""Text form of ops, in the style of QEMU's ``-d op`` log."""

from __future__ import annotations

from tcg2wasm.ir.core import Op, Temp, TranslationBlock
from tcg2wasm.ir.ops import Cond, Exit, MemOp

_MEMOPS = (MemOp.UB, MemOp.UW, MemOp.UL, MemOp.UQ, MemOp.SB, MemOp.SW, MemOp.SL)
_MEMOP_NAMES = {int(m): str(m.name).lower() for m in _MEMOPS}


def _const_names(op: Op) -> list[str]:
    c = op.consts
    match op.name:
        case "setcond_i64" | "movcond_i64":
            return [Cond(c[0]).name.lower()]
        case "brcond_i64":
            return [Cond(c[0]).name.lower(), f"$L{c[1]}"]
        case "trapcond_i64":
            return [Cond(c[0]).name.lower(), f"excp={c[1]}"]
        case "set_label" | "br":
            return [f"$L{c[0]}"]
        case "qemu_ld_i64" | "qemu_st_i64":
            suffix = "+w" if c[0] & MemOp.FOR_WRITE else ""  # the read of a read-modify-write
            return [_MEMOP_NAMES.get(c[0] & ~MemOp.FOR_WRITE, hex(c[0])) + suffix]
        case "exit_tb":
            return [Exit(c[0]).name.lower(), f"$0x{c[1]:x}"]
        case "deposit_i64" | "extract_i64" | "sextract_i64":
            return [f"${v}" for v in c]
    return [f"$0x{v:x}" for v in c]


def format_op(op: Op) -> str:
    if op.name == "insn_start":
        return f" ---- {op.args[0]:016x}"
    if op.name == "set_label":
        return f"set_label $L{op.args[0]}"
    parts = [t.name for t in op.args if isinstance(t, Temp)] + _const_names(op)
    return f" {op.name} {','.join(parts)}".rstrip()


def format_ops(ops: list[Op]) -> str:
    return "\n".join(format_op(op) for op in ops)


def format_tb(tb: TranslationBlock) -> str:
    head = f"TB 0x{tb.pc:x} size={tb.size} insns={tb.n_insns} ops={len(tb.ops)}"
    return head + "\n" + format_ops(tb.ops)
