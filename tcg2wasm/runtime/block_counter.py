"""Counting the blocks Unicorn runs, at C speed: how cold code becomes hot without Python per block.

A Python block hook costs ~0.5 us a block (it slows real programs 20-30x), and
stopping Unicorn asynchronously (its ``timeout``, or ``emu_stop`` from another
thread) is not precise: measured here, busybox ``wc -c`` counted one to three
bytes too many when slices were cut that way (an instruction runs twice;
Unicorn issues #1105 and #1565 describe the same). So the hook is a few machine
instructions, written with ``tcg2wasm.asm`` into an executable page and given
to ``uc_hook_add`` as a native function: it counts each block start in a
hashed table of u32 and, when a count reaches the threshold, records the pc,
clears the count and calls ``uc_emu_stop`` -- from inside a hook, which stops
precisely, before the block runs. Measured on SQLite in Unicorn: +30% CPU
time, against 20-30x for a Python hook.

The table doubles as the profile: a block whose slot counted at least once has
run (hash collisions can only add blocks, which is harmless for region growth).
Only on an x86-64 host (``available()``), since the hook is x86-64 code.
"""

from __future__ import annotations

import ctypes
import mmap
import platform

import unicorn as uc
from unicorn.unicorn_py3.unicorn import uclib

from tcg2wasm.asm import Assembler, dword, qword, r8, r9d, rax, rcx, rsi

__all__ = ["BlockCounter", "available"]

TABLE_BITS = 16  # 65,536 slots of u32: 256 KiB
_HASH = 0x9E37_79B9_7F4A_7C15  # Fibonacci hashing: the top TABLE_BITS bits of pc * _HASH
_THRESHOLD = 4 << TABLE_BITS  # offset of the threshold (u32) after the counters
_HOT_PC = _THRESHOLD + 8  # offset of the pc that reached it (u64, 0: none)
_STOP = _HOT_PC + 8  # offset of uc_emu_stop's address
_SIZE = _STOP + 8


def available() -> bool:
    return platform.machine() in ("x86_64", "AMD64")


def _hook_code() -> bytes:
    """void hook(uc_engine *uc, uint64_t pc, uint32_t size, void *table): System V x86-64."""
    a = Assembler(base=0)
    done = a.label()
    a.mov(rax, rsi)
    a.mov(r8, _HASH)
    a.imul(rax, r8)
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
    a.bind(done)
    a.ret()
    return a.assemble()


def slot(pc: int) -> int:
    """The table slot the hook counts ``pc`` in (the same hash in Python)."""
    return ((pc * _HASH) & ((1 << 64) - 1)) >> (64 - TABLE_BITS)


class BlockCounter:
    """The native block hook on one Unicorn, and its table."""

    def __init__(self, mu: uc.Uc, threshold: int) -> None:
        code = _hook_code()
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(code)
        self._table = (ctypes.c_uint8 * _SIZE)()
        self._base = ctypes.addressof(self._table)
        self._counts = (ctypes.c_uint32 * (1 << TABLE_BITS)).from_address(self._base)
        self._hot = ctypes.c_uint64.from_address(self._base + _HOT_PC)
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
