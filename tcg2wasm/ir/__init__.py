"""The TCG-like intermediate representation: op table, builder, printer, validator, interpreter."""

from tcg2wasm.ir.builder import IRBuilder
from tcg2wasm.ir.core import GLOBALS, N_GLOBALS, GuestInsn, Op, Temp, TranslationBlock
from tcg2wasm.ir.ops import OPS, Cond, Excp, Exit, MemOp, OpDef, OpFlag
from tcg2wasm.ir.printer import format_op, format_ops, format_tb
from tcg2wasm.ir.validate import IRError, validate_tb

__all__ = [
    "GLOBALS", "N_GLOBALS", "OPS", "Cond", "Excp", "Exit", "GuestInsn", "IRBuilder", "IRError",
    "MemOp", "Op", "OpDef", "OpFlag", "Temp", "TranslationBlock", "format_op", "format_ops",
    "format_tb", "validate_tb",
]
