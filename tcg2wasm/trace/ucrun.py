"""Unicorn with a block hook that counts guest instructions the way ``tcg2wasm.Machine`` does.

The two engines count ``rep`` string instructions differently: the Machine
counts one instruction per iteration, while Unicorn (with hooks installed)
re-executes the instruction once more after the last iteration just to see
that the counter is zero. The block hook recognises that extra execution (a
block starting at the ``rep`` instruction the previous block ended with, with
the counter at zero) and neither counts it nor lets a checkpoint fall on it.

A cpuid hook answers with the Machine's fixed CPU model (``tcg2wasm.runtime.cpuid``)
so that both engines see the same CPU. (The Python binding has no rdtsc hook: a
guest that reads the time-stamp counter records Unicorn's value and its replay
diverges there.)

The hook also tracks which rflags bits are *undefined* at the current point:
for each status flag, whether the last instruction that wrote it left it
undefined (iced-x86's view plus ``tcg2wasm.oracle.flags``). Checkpoint
comparisons ignore those bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import iced_x86
import unicorn as uc
import unicorn.x86_const as ux

from tcg2wasm.abi import FLAG_BITS
from tcg2wasm.oracle.flags import UNDEFINED_FLAGS
from tcg2wasm.oracle.uc_machine import UnicornMachine

_ICED_FLAGS = {
    iced_x86.RflagsBits.CF: FLAG_BITS["cf"], iced_x86.RflagsBits.PF: FLAG_BITS["pf"],
    iced_x86.RflagsBits.AF: FLAG_BITS["af"], iced_x86.RflagsBits.ZF: FLAG_BITS["zf"],
    iced_x86.RflagsBits.SF: FLAG_BITS["sf"], iced_x86.RflagsBits.OF: FLAG_BITS["of"],
    iced_x86.RflagsBits.DF: FLAG_BITS["df"],
}
_MNEMONICS = {v: k.lower() for k, v in vars(iced_x86.Mnemonic).items() if isinstance(v, int) and k.isupper()}
_STRING_OPS = frozenset({"movsb", "movsw", "movsd", "movsq", "stosb", "stosw", "stosd", "stosq", "lodsb", "lodsw",
                         "lodsd", "lodsq", "cmpsb", "cmpsw", "cmpsd", "cmpsq", "scasb", "scasw", "scasd", "scasq",
                         "insb", "insw", "insd", "outsb", "outsw", "outsd"})
#: Flags written only when the count operand is not zero: they may keep older (undefined) values.
_VARIABLE_COUNT = frozenset({"shl", "sal", "shr", "sar", "rol", "ror", "rcl", "rcr", "shld", "shrd"})
_FORMATTER = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
_INFO = iced_x86.InstructionInfoFactory()


def _bits(iced_flags: int) -> int:
    return sum(1 << bit for flag, bit in _ICED_FLAGS.items() if iced_flags & flag)


@dataclass(frozen=True)
class InsnInfo:
    pc: int
    raw: bytes
    asm: str
    mnemonic: str
    clears: int  # flags this instruction writes (defined or not): older undefinedness ends
    undefined: int  # flags it leaves undefined
    rep: bool  # a rep-prefixed string instruction
    addr32: bool  # its counter is ecx (0x67 prefix)


def decode(raw: bytes, pc: int) -> list[InsnInfo]:
    """Every whole instruction of ``raw`` (decoded at ``pc``)."""
    out = []
    for ins in iced_x86.Decoder(64, raw, ip=pc):
        if ins.is_invalid or ins.next_ip > pc + len(raw):
            break
        mnemonic = _MNEMONICS.get(ins.mnemonic, "?")
        modified = _bits(ins.rflags_modified)
        undefined = _bits(ins.rflags_undefined) | (UNDEFINED_FLAGS.get(mnemonic, 0) & modified)
        variable = mnemonic in _VARIABLE_COUNT and ins.op_count > 1 and ins.op_kind(ins.op_count - 1) != \
            iced_x86.OpKind.IMMEDIATE8
        start = ins.ip - pc
        insn_raw = raw[start : start + ins.len]
        rep = (ins.has_rep_prefix or ins.has_repne_prefix) and mnemonic in _STRING_OPS
        addr32 = 0x67 in insn_raw[: max(0, ins.len - 1)]
        out.append(InsnInfo(ins.ip, insn_raw, _FORMATTER.format(ins), mnemonic, 0 if variable else modified,
                            undefined | (modified if variable else 0), rep, addr32))
    return out


def apply_flags(mask: int, insns: list[InsnInfo]) -> int:
    """The undefined-flag mask after ``insns`` ran, starting from ``mask``."""
    for i in insns:
        mask = (mask & ~i.clears) | i.undefined
    return mask


@dataclass
class BlockInfo:
    index: int
    pc: int
    raw: bytes
    insns: list[InsnInfo]
    clears: int
    sets: int
    count: int = 0  # executions so far (while the sequence is recorded): the replay's profile

    @property
    def n_insns(self) -> int:
        return len(self.insns)


def block_info(index: int, pc: int, raw: bytes) -> BlockInfo:
    insns = decode(raw, pc)
    clears = sets = 0
    for i in insns:
        clears |= i.clears
        sets = (sets & ~i.clears) | i.undefined
    return BlockInfo(index, pc, raw, insns, clears, sets)


class UcTracker:
    """A UnicornMachine plus a block hook keeping ``icount`` (Machine counting) and ``flag_mask``.

    ``before_block(info)`` is called at each counted block start, before the block runs and
    before ``icount`` includes it; when it returns True the run stops there (the block not run).
    """

    def __init__(self, cpu: UnicornMachine | None = None) -> None:
        self.cpu = cpu or UnicornMachine()
        self.icount = 0
        self.flag_mask = 0
        self.blocks: list[BlockInfo] = []
        self._ids: dict[tuple[int, int], BlockInfo] = {}
        self.seq: list[int] = []
        self.record_seq = True
        self.counting = True
        self.last: InsnInfo | None = None
        self.before_block: Callable[[BlockInfo], bool] | None = None
        self.block: BlockInfo | None = None
        self.cpu.uc.hook_add(uc.UC_HOOK_BLOCK, self._on_block)
        self.cpu.uc.hook_add(uc.UC_HOOK_INSN, self._on_cpuid, None, 1, 0, ux.UC_X86_INS_CPUID)

    def _on_cpuid(self, _mu: uc.Uc, _user: object) -> int:
        """Answer with the Machine's CPU model (``tcg2wasm.runtime.cpuid``), not Unicorn's."""
        from tcg2wasm.runtime.cpuid import cpuid

        leaf, subleaf = self.cpu.reg_read("rax") & 0xFFFF_FFFF, self.cpu.reg_read("rcx") & 0xFFFF_FFFF
        for name, value in zip(("rax", "rbx", "rcx", "rdx"), cpuid(leaf, subleaf), strict=True):
            self.cpu.reg_write(name, value)
        return 1  # skip Unicorn's own cpuid

    def counter_zero(self, insn: InsnInfo) -> bool:
        rcx = self.cpu.reg_read("rcx")
        return (rcx & 0xFFFF_FFFF if insn.addr32 else rcx) == 0

    def is_rep_recheck(self, pc: int) -> bool:
        """Unicorn's extra execution of a finished ``rep`` instruction (not an instruction for the Machine)."""
        last = self.last
        return last is not None and last.rep and last.pc == pc and self.counter_zero(last)

    def info(self, pc: int, size: int) -> BlockInfo:
        key = (pc, size)
        info = self._ids.get(key)
        if info is None:
            info = block_info(len(self.blocks), pc, self.cpu.mem_read(pc, size))
            self._ids[key] = info
            self.blocks.append(info)
        return info

    def _on_block(self, _mu: uc.Uc, address: int, size: int, _user: object) -> None:
        if not self.counting or self.is_rep_recheck(address):
            return
        info = self.info(address, size)
        if self.before_block is not None and self.before_block(info):
            self.cpu.uc.emu_stop()  # stops before the block runs
            return
        self.icount += info.n_insns
        self.flag_mask = (self.flag_mask & ~info.clears) | info.sets
        self.block = info
        if info.insns:
            self.last = info.insns[-1]
        if self.record_seq:
            self.seq.append(info.index)
            info.count += 1
