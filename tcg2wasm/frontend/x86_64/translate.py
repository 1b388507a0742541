"""Translation blocks: decode guest bytes with iced-x86 and lift them instruction by instruction."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Protocol

import iced_x86 as ix

from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.frontend.x86_64 import sem_loader  # noqa: F401  (registers the semantic functions)
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported, reads_to_write
from tcg2wasm.frontend.x86_64.registry import SEMANTICS
from tcg2wasm.frontend.x86_64.unicorn_blocks import MAX_BLOCK_BYTES, MAX_BLOCK_INSNS
from tcg2wasm.frontend.x86_64.unicorn_blocks import ends_block as ends_unicorn_block
from tcg2wasm.ir import Cond, Excp, Exit, GuestInsn, IRBuilder, TranslationBlock

MAX_INSN_LEN = 15
__all__ = ["MAX_INSN_LEN", "Fetch", "TBShape", "format_insn", "translate_block"]
_FORMATTER = ix.Formatter(ix.FormatterSyntax.INTEL)

Fetch = Callable[[int, int], bytes]


def format_insn(ins: ix.Instruction) -> str:
    return _FORMATTER.format(ins)


def _ends_block(ins: ix.Instruction) -> bool:
    return ins.flow_control != ix.FlowControl.NEXT or ins.is_string_instruction and (
        ins.has_rep_prefix or ins.has_repne_prefix)


#: Valid VEX, EVEX and XOP instructions whose tails continue a cut-short prefix of such an instruction.
_ESCAPE_TAILS = (bytes.fromhex("c4e1781000"), bytes.fromhex("c5f81000"), bytes.fromhex("62f17c481000"),
                 bytes.fromhex("8fe878c00000"))


def _continuations(code: bytes) -> list[bytes]:
    out = [code + bytes([first]) + rest * MAX_INSN_LEN for first in range(256) for rest in (b"\x00", b"\xff")]
    for tail in _ESCAPE_TAILS:
        out += [code + tail[k:] + bytes(MAX_INSN_LEN) for k in range(1, len(tail))]
    return out


def needs_more_bytes(code: bytes) -> bool:
    """Whether undecodable ``code``, cut short by the end of fetchable memory, is the start of a valid
    instruction for some continuation: then the CPU fetches on and faults there; otherwise the opcode
    is invalid whatever follows (``06``, ``lock nop``) and the CPU raises #UD without that fetch.
    Continuations tried: every next byte followed by zeros or by 0xff bytes, and the tails of a
    VEX, an EVEX and an XOP instruction."""
    for candidate in _continuations(code):
        ins = ix.Decoder(64, candidate, ip=0).decode()
        if not ins.is_invalid and ins.len > len(code):
            return True
    return False


def _emit_undecodable(ctx: LiftContext, fetch: Fetch, pc: int, code: bytes) -> None:
    """#UD at ``pc``; or, if the bytes end at unfetchable memory before the instruction does, the fetch
    fault of the first byte past them (found by ``tcg2wasm fuzz blobs``: a FETCH_UNMAPPED at address 0
    before, also for opcodes invalid whatever follows)."""
    if len(code) < MAX_INSN_LEN and needs_more_bytes(code):
        fetch(pc + len(code), 1)  # raises the fetch fault (GuestFault) with its address
    b = ctx.b
    b.insn_start(pc)
    zero = b.const(0)
    b.trapcond(Cond.EQ, zero, zero, Excp.INVALID_OPCODE)
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
    ctx.rmw_memory = reads_to_write(ins)
    b.insn_start(ins.ip)
    try:
        fn(ctx, ins)
    except Unsupported:
        b.rollback(mark)
        return False
    return True


class TBShape(Protocol):
    """How hooks shape translation blocks (``tcg2wasm.runtime.hooks`` implements it for the Uc API).

    ``cut_before(pc)``: a hooked instruction -- it is always the first of its TB, and the TB
    before it leaves with ``Exit.HOOK`` (a continuation: the host runs its hooks, then the TB).
    ``hooked(pc)``: arriving at ``pc`` needs the host; a TB cut before it for a reason other
    than a block end (an instruction for the fallback, undecodable bytes) leaves with
    ``Exit.HOOK`` too, so that the host knows the arrival is not the start of a block.
    ``unicorn_blocks``: TBs end where Unicorn's blocks end (``unicorn_blocks.py``: no page
    boundary, its limits and ending instructions) and rep loops check rcx at the top only,
    as Unicorn's do (one more execution of the instruction, which counts and hooks see).
    """

    unicorn_blocks: bool

    def cut_before(self, pc: int) -> bool: ...

    def hooked(self, pc: int) -> bool: ...


def _fetch_size(pc: int, shape: TBShape | None) -> int:
    if shape is not None and shape.unicorn_blocks:
        return MAX_BLOCK_BYTES + MAX_INSN_LEN
    return PAGE_SIZE - (pc % PAGE_SIZE) + MAX_INSN_LEN


def _limit_reached(pc: int, cur: int, n_insns: int, max_insns: int, shape: TBShape | None) -> bool:
    if n_insns >= max_insns:
        return True
    if shape is not None and shape.unicorn_blocks:
        return cur - pc >= MAX_BLOCK_BYTES
    return cur >= (pc | (PAGE_SIZE - 1)) + 1  # the page end


def _continue_at(b: IRBuilder, tb_meta: dict, cur: int, shape: TBShape | None) -> None:
    """End the TB before ``cur`` in the middle of what Unicorn runs as one block."""
    tb_meta["cut_at"] = cur
    if shape is not None and shape.hooked(cur):
        b.exit_tb(Exit.HOOK, cur)
    else:
        b.goto_tb(cur)


def translate_block(fetch: Fetch, pc: int, *, max_insns: int = 64,
                    stop_pcs: Container[int] = frozenset(), shape: TBShape | None = None) -> TranslationBlock:
    """Decode and lift the translation block starting at ``pc`` (see docs/frontend.md)."""
    data = fetch(pc, _fetch_size(pc, shape))
    unicorn = shape is not None and shape.unicorn_blocks
    decoder = ix.Decoder(64, data, ip=pc)
    b = IRBuilder()
    ctx = LiftContext(b)
    ctx.unicorn_rep = unicorn
    insns: list[GuestInsn] = []
    meta: dict = {}
    fallback = 0
    cur = pc
    while True:
        if insns and shape is not None and shape.cut_before(cur):
            _continue_at(b, meta, cur, shape)
            break
        offset = cur - pc
        ins = decoder.decode()
        raw = data[offset:offset + ins.len]
        if ins.is_invalid or not _lift_one(ctx, ins, raw):
            if unicorn and ins.is_invalid and decoder.last_error == ix.DecoderError.NO_MORE_BYTES:
                fetch(pc + len(data), 1)  # Unicorn fails a block that runs out of code at its start: raises
            if insns:
                _continue_at(b, meta, cur, shape)
            elif ins.is_invalid:
                _emit_undecodable(ctx, fetch, cur, data[offset:offset + MAX_INSN_LEN])
                insns.append(GuestInsn(cur, data[offset:offset + MAX_INSN_LEN], "(bad)", lifted=False))
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
        if _ends_block(ins) or (unicorn and ends_unicorn_block(ins)) or cur in stop_pcs:
            b.goto_tb(cur)
            break
        if _limit_reached(pc, cur, len(insns), max_insns, shape):
            if unicorn and len(insns) < MAX_BLOCK_INSNS and cur - pc < MAX_BLOCK_BYTES:
                _continue_at(b, meta, cur, shape)  # tcg2wasm's own limit: Unicorn's block goes on
            else:
                b.goto_tb(cur)
            break
    size = (insns[-1].pc + len(insns[-1].raw) - pc) if insns else 0
    tb = b.finish(pc, size, insns, fallback)
    tb.meta.update(meta)
    return tb
