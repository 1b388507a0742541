"""Translation blocks: decode guest bytes with iced-x86 and lift them instruction by instruction."""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.frontend.x86_64 import sem_loader  # noqa: F401  (registers the semantic functions)
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import SEMANTICS
from tcg2wasm.ir import Cond, Excp, Exit, GuestInsn, IRBuilder, TranslationBlock

MAX_INSN_LEN = 15
_FORMATTER = ix.Formatter(ix.FormatterSyntax.INTEL)

Fetch = Callable[[int, int], bytes]


def format_insn(ins: ix.Instruction) -> str:
    return _FORMATTER.format(ins)


def _ends_block(ins: ix.Instruction) -> bool:
    return ins.flow_control != ix.FlowControl.NEXT or ins.is_string_instruction and (
        ins.has_rep_prefix or ins.has_repne_prefix)


def _emit_undecodable(ctx: LiftContext, pc: int, available: int) -> None:
    b = ctx.b
    b.insn_start(pc)
    zero = b.const(0)
    kind = Excp.FETCH_UNMAPPED if available < MAX_INSN_LEN else Excp.INVALID_OPCODE
    b.trapcond(Cond.EQ, zero, zero, kind)
    b.exit_tb(Exit.FAULT, pc)


def _lift_one(ctx: LiftContext, ins: ix.Instruction, raw: bytes) -> bool:
    """Lift one instruction; False (with nothing emitted) if the lifter lacks it."""
    fn = SEMANTICS.get(ins.mnemonic)
    if fn is None:
        return False
    b = ctx.b
    mark = b.mark()
    ctx.ins, ctx.pc, ctx.next_pc, ctx.ended = ins, ins.ip, ins.next_ip, False
    ctx.insn_bytes = raw
    b.insn_start(ins.ip)
    try:
        fn(ctx, ins)
    except Unsupported:
        b.rollback(mark)
        return False
    return True


def translate_block(fetch: Fetch, pc: int, *, max_insns: int = 64,
                    stop_pcs: frozenset[int] = frozenset()) -> TranslationBlock:
    """Decode and lift the translation block starting at ``pc`` (see docs/frontend.md)."""
    data = fetch(pc, PAGE_SIZE - (pc % PAGE_SIZE) + MAX_INSN_LEN)
    page_end = (pc | (PAGE_SIZE - 1)) + 1
    decoder = ix.Decoder(64, data, ip=pc)
    b = IRBuilder()
    ctx = LiftContext(b)
    insns: list[GuestInsn] = []
    fallback = 0
    cur = pc
    while True:
        offset = cur - pc
        ins = decoder.decode()
        raw = data[offset:offset + ins.len]
        if ins.is_invalid:
            if insns:
                b.goto_tb(cur)
            else:
                _emit_undecodable(ctx, cur, len(data) - offset)
                insns.append(GuestInsn(cur, data[offset:offset + MAX_INSN_LEN], "(bad)", lifted=False))
            break
        if not _lift_one(ctx, ins, raw):
            if insns:
                b.goto_tb(cur)
            else:
                b.insn_start(cur)
                b.exit_tb(Exit.FALLBACK, cur)
                insns.append(GuestInsn(cur, raw, format_insn(ins), lifted=False))
                fallback = 1
            break
        insns.append(GuestInsn(cur, raw, format_insn(ins)))
        cur = ins.next_ip
        if ctx.ended:
            break
        if _ends_block(ins) or len(insns) >= max_insns or cur >= page_end or cur in stop_pcs:
            b.goto_tb(cur)
            break
    size = (insns[-1].pc + len(insns[-1].raw) - pc) if insns else 0
    return b.finish(pc, size, insns, fallback)
