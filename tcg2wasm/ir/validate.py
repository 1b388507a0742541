"""Structural checks on ops, run before anything reaches Binaryen.

A malformed op list must become a Python exception here, never a call into
Binaryen that aborts the process.
"""

from __future__ import annotations

from tcg2wasm.ir.core import N_GLOBALS, Op, Temp, TranslationBlock
from tcg2wasm.ir.ops import OPS, Cond, Excp, Exit, MemOp, OpFlag


class IRError(ValueError):
    """A malformed op or translation block."""


def _check_consts(op: Op, n_labels: int) -> None:
    c = op.consts
    name = op.name
    if name in ("setcond_i64", "movcond_i64", "brcond_i64", "trapcond_i64"):
        Cond(c[0])
    if name in ("brcond_i64", "br", "set_label"):
        label = c[-1]
        if not 1 <= label <= n_labels:
            raise IRError(f"{name}: label {label} out of range")
    if name == "trapcond_i64":
        Excp(c[1])
    if name == "exit_tb":
        Exit(c[0])
    if name in ("qemu_ld_i64", "qemu_st_i64") and c[0] not in (0, 1, 2, 3, 4, 5, 6) \
            and not (name == "qemu_ld_i64" and c[0] & ~MemOp.FOR_WRITE in (0, 1, 2, 3, 4, 5, 6)):
        raise IRError(f"{name}: bad memop {c[0]}")
    if name in ("deposit_i64", "extract_i64", "sextract_i64"):
        pos, length = c
        if not (0 <= pos < 64 and 1 <= length <= 64 - pos):
            raise IRError(f"{name}: bad field pos={pos} len={length}")


def validate_op(op: Op, n_temps: int, n_labels: int) -> None:
    d = OPS.get(op.name)
    if d is None:
        raise IRError(f"unknown op {op.name!r}")
    if len(op.args) != d.n_args:
        raise IRError(f"{op.name}: expected {d.n_args} args, got {len(op.args)}")
    for t in op.args[: d.n_out + d.n_in]:
        if not isinstance(t, Temp) or not 0 <= t.index < N_GLOBALS + n_temps:
            raise IRError(f"{op.name}: bad temp argument {t!r}")
    for v in op.consts:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise IRError(f"{op.name}: bad constant {v!r}")
    try:
        _check_consts(op, n_labels)
    except ValueError as e:
        raise IRError(f"{op.name}: {e}") from None


def validate_tb(tb: TranslationBlock) -> None:
    """Check every op, that labels are defined once and branched to forward only, and that
    control cannot fall off the end."""
    defined: set[int] = set()
    used: set[int] = set()
    for op in tb.ops:
        validate_op(op, tb.n_temps, tb.n_labels)
        if op.name == "set_label":
            if op.args[0] in defined:
                raise IRError(f"label $L{op.args[0]} defined twice")
            defined.add(op.args[0])
        elif op.name in ("br", "brcond_i64"):
            if op.consts[-1] in defined:
                raise IRError(f"backward branch to $L{op.consts[-1]} (branches inside a TB go forward only)")
            used.add(op.consts[-1])
    if used - defined:
        raise IRError(f"labels used but not defined: {sorted(used - defined)}")
    if not tb.ops or not tb.ops[-1].opdef.flags & OpFlag.TERMINATOR:
        raise IRError(f"TB 0x{tb.pc:x} does not end in a terminator")
