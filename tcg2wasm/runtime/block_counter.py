"""Counting the blocks Unicorn runs, and stopping it at compiled code, at C speed.

A Python block hook costs ~0.5 us a block (it slows real programs 20-30x), and
stopping Unicorn asynchronously (its ``timeout``, or ``emu_stop`` from another
thread) is not precise: measured here, busybox ``wc -c`` counted one to three
bytes too many when slices were cut that way (an instruction runs twice;
Unicorn issues #1105 and #1565 describe the same). So the hook is a few machine
instructions, written with ``tcg2wasm.asm`` into an executable page and given
to ``uc_hook_add`` as a native function. At every block start it

1. looks the pc up in a hash set of the pcs that have compiled code (open
   addressing, linear probing) and, when it is there, records it and calls
   ``uc_emu_stop`` -- from inside a hook, which stops precisely, before the
   block runs; the first block of a slice is never stopped at;
2. counts the pc in a hashed table of u32 and, when a count reaches the
   threshold, records the pc, clears the count and stops the same way.

Unicorn's own exit list (``ctl_set_exits``) could do the first, but Unicorn
drops its translation at *every* exit after *every* ``emu_start``
(``resume_all_vcpus`` walks the list): with a few hundred compiled pcs a slice
cost ~0.25 ms before it ran an instruction, 20% of SQLite's whole run.
Measured on SQLite in Unicorn: the hook costs +30% CPU time, against 20-30x
for a Python hook.

The count table doubles as the profile: a block whose slot counted at least
once has run (hash collisions can only add blocks, which is harmless for
region growth). Only on an x86-64 host (``available()``), since the hook is
x86-64 code.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from collections.abc import Iterable

import unicorn as uc
from unicorn.unicorn_py3.unicorn import uclib

__all__ = ["HOOK_CODE", "BlockCounter", "PcSet", "assemble_hook", "available"]

TABLE_BITS = 16  # 65,536 slots of u32: 256 KiB
_HASH = 0x9E37_79B9_7F4A_7C15  # Fibonacci hashing: the top TABLE_BITS bits of pc * _HASH
_THRESHOLD = 4 << TABLE_BITS  # offset of the threshold (u32) after the counters
_HOT_PC = _THRESHOLD + 8  # the pc that reached it (u64, 0: none)
_STOP = _HOT_PC + 8  # uc_emu_stop's address
_SET_SLOTS = _STOP + 8  # the compiled-pc set: address of its u64 slots
_SET_MASK = _SET_SLOTS + 8  # its slot count - 1
_FIRST = _SET_MASK + 8  # nonzero until the first block of a slice has been seen
_STOPPED_AT = _FIRST + 8  # the compiled pc the hook stopped before (0: none)
_SIZE = _STOPPED_AT + 8

_EMPTY = 0  # a free slot of the set (pc 0 is never looked up: see PcSet)
_DELETED = (1 << 64) - 1  # a removed pc's slot (not canonical, so never a pc)
_MASK64 = (1 << 64) - 1


def available() -> bool:
    return platform.machine() in ("x86_64", "AMD64")


def assemble_hook() -> bytes:
    """void hook(uc_engine *uc, uint64_t pc, uint32_t size, void *table): System V x86-64.

    The source of ``HOOK_CODE``, which the runtime uses as is (assembling imports iced-x86,
    30 ms of every start-up; tests/test_tiers.py checks the two agree).
    """
    from tcg2wasm.asm import Assembler, dword, qword, r8, r9, r9d, r10, r11, rax, rcx, rsi

    a = Assembler(base=0)
    probe, first, count, compiled, done = (a.label() for _ in range(5))
    a.mov(rax, rsi)
    a.mov(r8, _HASH)
    a.imul(rax, r8)  # rax = pc * _HASH: both tables index by its bits
    a.cmp(qword[rcx + _FIRST], 0)
    a.jne(first)
    a.mov(r9, rax)
    a.shr(r9, 32)
    a.mov(r10, qword[rcx + _SET_SLOTS])
    a.bind(probe)
    a.and_(r9, qword[rcx + _SET_MASK])
    a.mov(r11, qword[r10 + r9 * 8])
    a.cmp(r11, rsi)
    a.je(compiled)
    a.test(r11, r11)
    a.jz(count)  # an empty slot ends the probe: not compiled
    a.add(r9, 1)
    a.jmp(probe)
    a.bind(first)
    a.mov(qword[rcx + _FIRST], 0)
    a.bind(count)
    a.shr(rax, 64 - TABLE_BITS)
    a.mov(r9d, dword[rcx + rax * 4])
    a.add(r9d, 1)
    a.mov(dword[rcx + rax * 4], r9d)
    a.cmp(r9d, dword[rcx + _THRESHOLD])
    a.jb(done)
    a.mov(dword[rcx + rax * 4], 1)  # counting starts again (1: the block stays known to have run)
    a.mov(qword[rcx + _HOT_PC], rsi)
    a.mov(rax, qword[rcx + _STOP])
    a.jmp(rax)  # tail call uc_emu_stop(uc): rdi still holds uc
    a.bind(compiled)
    a.mov(qword[rcx + _STOPPED_AT], rsi)
    a.mov(rax, qword[rcx + _STOP])
    a.jmp(rax)
    a.bind(done)
    a.ret()
    return a.assemble()


HOOK_CODE = bytes.fromhex(
    "4889f049b8157c4a7fb979379e490fafc04883b9280004000075294989c149c1e9204c8b91180004004c238920000400"
    "4f8b1cca4939f374464d85db74114983c101ebe548c781280004000000000048c1e830448b0c814183c10144890c8144"
    "3b89000004007227c70481010000004889b108000400488b8110000400ffe04889b130000400488b8110000400ffe0c3")


def slot(pc: int) -> int:
    """The table slot the hook counts ``pc`` in (the same hash in Python)."""
    return ((pc * _HASH) & _MASK64) >> (64 - TABLE_BITS)


class PcSet:
    """A set of u64 pcs the native hook probes: open addressing, linear probing, tombstones.

    At most half of the slots are in use (pcs and tombstones), so a probe ends
    after about two slots; the table doubles (and drops its tombstones) when
    it would pass that. pc 0 is never a member (0 marks a free slot).
    """

    def __init__(self, bits: int = 10) -> None:
        self._members: set[int] = set()
        self._allocate(bits)

    def _allocate(self, bits: int) -> None:
        self._bits = bits
        self._mask = (1 << bits) - 1
        self.slots = (ctypes.c_uint64 * (1 << bits))()
        self._used = 0  # members and tombstones

    @property
    def address(self) -> int:
        return ctypes.addressof(self.slots)

    @property
    def mask(self) -> int:
        return self._mask

    def __contains__(self, pc: int) -> bool:
        return pc in self._members

    def __len__(self) -> int:
        return len(self._members)

    def _home(self, pc: int) -> int:
        return (((pc * _HASH) & _MASK64) >> 32) & self._mask

    def add(self, pcs: Iterable[int]) -> None:
        for pc in pcs:
            if pc == _EMPTY or pc in self._members:
                continue
            if 2 * (self._used + 1) > len(self.slots):
                self._rebuild(self._bits + 1)
            self._members.add(pc)
            self._place(pc)

    def _place(self, pc: int) -> None:
        index = self._home(pc)
        while self.slots[index] not in (_EMPTY, _DELETED):
            index = (index + 1) & self._mask
        if self.slots[index] == _EMPTY:
            self._used += 1
        self.slots[index] = pc

    def discard(self, pcs: Iterable[int]) -> None:
        for pc in pcs:
            if pc not in self._members:
                continue
            self._members.discard(pc)
            index = self._home(pc)
            while self.slots[index] != pc:
                index = (index + 1) & self._mask
            self.slots[index] = _DELETED

    def _rebuild(self, bits: int) -> None:
        """A table of ``2**bits`` slots holding the members (the hook is not running: Unicorn is stopped)."""
        while 2 * (len(self._members) + 1) > (1 << bits):
            bits += 1
        self._allocate(bits)
        for pc in self._members:
            self._place(pc)


class BlockCounter:
    """The native block hook on one Unicorn, its count table and its compiled-pc set."""

    def __init__(self, mu: uc.Uc, threshold: int) -> None:
        code = HOOK_CODE
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(code)
        self._table = (ctypes.c_uint8 * _SIZE)()
        self._base = ctypes.addressof(self._table)
        self._counts = (ctypes.c_uint32 * (1 << TABLE_BITS)).from_address(self._base)
        self._hot = ctypes.c_uint64.from_address(self._base + _HOT_PC)
        self._first = ctypes.c_uint64.from_address(self._base + _FIRST)
        self._stopped_at = ctypes.c_uint64.from_address(self._base + _STOPPED_AT)
        self._set_slots = ctypes.c_uint64.from_address(self._base + _SET_SLOTS)
        self._set_mask = ctypes.c_uint64.from_address(self._base + _SET_MASK)
        self.compiled = PcSet()
        self._publish_set()
        ctypes.c_uint32.from_address(self._base + _THRESHOLD).value = threshold
        stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        if not stop:
            raise uc.UcError(uc.UC_ERR_HANDLE)
        ctypes.c_uint64.from_address(self._base + _STOP).value = stop
        function = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(mu._uch, ctypes.byref(self._handle), uc.UC_HOOK_BLOCK,  # noqa: SLF001
                                   ctypes.c_void_p(function), ctypes.c_void_p(self._base),
                                   ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != uc.UC_ERR_OK:
            raise uc.UcError(status)

    def _publish_set(self) -> None:
        self._set_slots.value = self.compiled.address
        self._set_mask.value = self.compiled.mask

    def add_compiled(self, pcs: Iterable[int]) -> None:
        """Slices stop before these pcs from now on (unless a slice starts there)."""
        self.compiled.add(pcs)
        self._publish_set()

    def discard_compiled(self, pcs: Iterable[int]) -> None:
        self.compiled.discard(pcs)

    def start_slice(self) -> None:
        """Called before each ``emu_start``: its first block runs even if compiled."""
        self._first.value = 1
        self._stopped_at.value = 0

    def take_stopped_at(self) -> int | None:
        """The compiled pc the last slice stopped before, or None."""
        pc = self._stopped_at.value
        self._stopped_at.value = 0
        return pc or None

    def take_hot(self) -> int | None:
        """The pc whose count reached the threshold in the last run (cleared), or None."""
        pc = self._hot.value
        if not pc:
            return None
        self._hot.value = 0
        return pc

    def ran(self, pc: int) -> bool:
        """Whether a block at ``pc`` has run in Unicorn (or one sharing its slot)."""
        return self._counts[slot(pc)] > 0
