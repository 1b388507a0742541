"""What the translator did, as QEMU's ``-d`` log prints it: guest code, ops, optimized ops, the wasm.

Items (``tcg2wasm run -d ITEM,...``):

- ``in_asm``: each translation block's guest instructions, when it is lifted;
- ``op``: its ops as lifted; ``op_opt``: after optimization;
- ``out_asm``: each region's module in wasm text, when it is compiled.

Lifting and compiling happen on the main thread or the background compiler's, so
writes go through one lock. Producing the wasm text costs a second Binaryen pass
over the region: only when ``out_asm`` is asked for.
"""

from __future__ import annotations

import threading
from typing import IO

from tcg2wasm.ir.core import TranslationBlock
from tcg2wasm.ir.printer import format_ops

__all__ = ["ITEMS", "TranslationLog", "parse_items"]

ITEMS = ("in_asm", "op", "op_opt", "out_asm")


def parse_items(text: str) -> frozenset[str]:
    """``in_asm,op_opt`` -> the items; raises ValueError naming an unknown one."""
    items = frozenset(item.strip() for item in text.split(",") if item.strip())
    unknown = sorted(items - set(ITEMS))
    if unknown or not items:
        raise ValueError(f"unknown log item {', '.join(unknown) or repr(text)}; known: {', '.join(ITEMS)}")
    return items


class TranslationLog:
    """Writes the chosen items to ``out``."""

    def __init__(self, items: frozenset[str], out: IO[str]) -> None:
        self.items = items
        self._out = out
        self._lock = threading.Lock()

    def wants(self, item: str) -> bool:
        return item in self.items

    def lifted(self, tb: TranslationBlock) -> None:
        if "in_asm" in self.items:
            lines = [f"0x{insn.pc:016x}:  {insn.asm}" for insn in tb.insns]
            self._write("IN:\n" + "\n".join(lines) + "\n\n")
        if "op" in self.items:
            self._write("OP:\n" + format_ops(tb.ops) + "\n\n")

    def optimized(self, tb: TranslationBlock) -> None:
        if "op_opt" in self.items:
            self._write("OP after optimization and liveness analysis:\n" + format_ops(tb.ops) + "\n\n")

    def compiled(self, entry: int, wat: str) -> None:
        self._write(f"OUT: [region 0x{entry:x}]\n{wat}\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self._out.write(text)
            self._out.flush()
