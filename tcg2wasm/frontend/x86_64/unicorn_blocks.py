"""Where Unicorn ends a translation block: what its block hooks report, and how the Uc API shapes TBs.

Unicorn 2 (QEMU 5's x86 translator) ends a block after a control transfer, an
instruction that changes how the following code must be translated (popf, sti,
mov ss/ds/es, mov to a control register, xsetbv, invlpg, clts, hlt, pause), a
rep-prefixed string instruction (each iteration is a block execution of its
own), when the block holds ``MAX_BLOCK_INSNS`` instructions or spans
``MAX_BLOCK_BYTES`` bytes, and before an exit address (``until``). After mov ss
and sti the next instruction is a block by itself (interrupts are inhibited for
one instruction). A block may cross a page boundary. Measured against Unicorn
2.1.4 (tests/test_unicorn_api.py); QEMU's limit of 4000 TCG ops per block,
which depends on its code generation, is not modelled (docs/unicorn-api.md).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass

import iced_x86 as ix

from tcg2wasm.abi import PAGE_SIZE

__all__ = ["INVALID_INSN_SIZE", "MAX_BLOCK_BYTES", "MAX_BLOCK_INSNS", "BlockExtent", "block_extent", "ends_block",
           "isolates_next", "unicorn_insn_size"]

MAX_BLOCK_INSNS = 512  # QEMU's TCG_MAX_INSNS
MAX_BLOCK_BYTES = PAGE_SIZE - 32  # a block ends once its bytes reach this many
#: The size Unicorn's code hook reports for an undecodable instruction (its placeholder, never patched).
INVALID_INSN_SIZE = 0xF1F1F1F1
MAX_INSN_LEN = 15

M = ix.Mnemonic
R = ix.Register
_ENDING_MNEMONICS = frozenset({M.POPF, M.POPFQ, M.PAUSE, M.STI, M.XSETBV, M.INVLPG, M.CLTS, M.HLT, M.LMSW,
                               M.LSS, M.MWAIT, M.RSM})
_ENDING_SEGMENTS = frozenset({R.SS, R.DS, R.ES})
_CONTROL_REGISTERS = frozenset({R.CR0, R.CR2, R.CR3, R.CR4, R.CR8, R.DR0, R.DR1, R.DR2, R.DR3, R.DR6, R.DR7})
_STRING_REP = frozenset({M.MOVSB, M.MOVSW, M.MOVSD, M.MOVSQ, M.STOSB, M.STOSW, M.STOSD, M.STOSQ,
                         M.LODSB, M.LODSW, M.LODSD, M.LODSQ, M.CMPSB, M.CMPSW, M.CMPSD, M.CMPSQ,
                         M.SCASB, M.SCASW, M.SCASD, M.SCASQ, M.INSB, M.INSW, M.INSD, M.OUTSB, M.OUTSW, M.OUTSD})

Fetch = Callable[[int, int], bytes]


def _writes_register(ins: ix.Instruction) -> int | None:
    """The register a ``mov reg, ...`` writes (None if operand 0 is not a register)."""
    if ins.mnemonic != M.MOV or ins.op_count == 0 or ins.op0_kind != ix.OpKind.REGISTER:
        return None
    return ins.op0_register


def ends_block(ins: ix.Instruction) -> bool:
    """Whether Unicorn ends its block after ``ins`` (an undecodable instruction ends it too)."""
    if ins.is_invalid or ins.flow_control != ix.FlowControl.NEXT or ins.mnemonic in _ENDING_MNEMONICS:
        return True
    if ins.mnemonic in _STRING_REP and (ins.has_rep_prefix or ins.has_repne_prefix):
        return True
    target = _writes_register(ins)
    if target is None:
        return False
    return target in _ENDING_SEGMENTS or target in _CONTROL_REGISTERS


def isolates_next(ins: ix.Instruction) -> bool:
    """Whether the instruction after ``ins`` is a block of its own (interrupts inhibited: mov ss, sti)."""
    return ins.mnemonic in (M.STI, M.LSS) or _writes_register(ins) == R.SS


def unicorn_insn_size(ins: ix.Instruction) -> int:
    """The size Unicorn's code hook reports for ``ins``."""
    return INVALID_INSN_SIZE if ins.is_invalid else ins.len


@dataclass(frozen=True)
class BlockExtent:
    """A Unicorn block: its size in bytes, its instruction count, and whether its last one isolates the next."""

    size: int
    n_insns: int
    isolates_next: bool = False


def block_extent(fetch: Fetch, pc: int, stops: Container[int] = (), *, alone: bool = False) -> BlockExtent:
    """The block Unicorn translates at ``pc``: up to an ending instruction, a limit or a stop address.

    ``alone``: the block is the single instruction after mov ss / sti. ``fetch(addr, n)`` gives up
    to ``n`` executable bytes; when the block runs into bytes it cannot fetch before it ends,
    Unicorn fails the whole block at its start: this raises the ``GuestFault`` of the first such byte.
    """
    data = fetch(pc, MAX_BLOCK_BYTES + MAX_INSN_LEN)
    decoder = ix.Decoder(64, data, ip=pc)
    n = 0
    cur = pc
    while True:
        ins = decoder.decode()
        if ins.is_invalid and decoder.last_error == ix.DecoderError.NO_MORE_BYTES:
            fetch(pc + len(data), 1)  # raises the fault of the first byte that is not executable
        n += 1
        cur = ins.next_ip if not ins.is_invalid else cur + 1
        size = cur - pc
        if (alone or ends_block(ins) or n >= MAX_BLOCK_INSNS or size >= MAX_BLOCK_BYTES or cur in stops):
            return BlockExtent(size, n, not ins.is_invalid and isolates_next(ins))

