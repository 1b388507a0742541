"""The hooks of one ``Uc``: their records, the ranges they cover, and the calls of their callbacks.

``HookSet`` is the ``HookHost`` of ``tcg2wasm.runtime.hooks``: the runtime asks it
which pcs and addresses are hooked (answered from merged ranges, rebuilt when a
hook comes or goes) and hands it each event, which it dispatches as Unicorn does:
hooks of a type run in the order they were added, a hook whose range
(``begin``..``end``, inclusive; ``begin > end`` is everything) holds the address;
a hook deleted meanwhile is skipped; after a callback that called ``emu_stop`` no
other runs; a rip written by a callback redirects execution once all of them ran.
A callback that raises stops the run; ``emu_start`` raises the exception then.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tcg2wasm.unicorn.unicorn_const as U
import tcg2wasm.unicorn.x86_const as X
from tcg2wasm import abi
from tcg2wasm.cpu_state import MASK64
from tcg2wasm.runtime.hooks import STOP, Action, MemAccess, Redirect

if TYPE_CHECKING:
    from tcg2wasm.unicorn.uc import Uc

__all__ = ["Hook", "HookSet", "Ranges", "signed64"]

CODE, BLOCK = U.UC_HOOK_CODE, U.UC_HOOK_BLOCK
MEM_READ, MEM_WRITE, MEM_READ_AFTER = U.UC_HOOK_MEM_READ, U.UC_HOOK_MEM_WRITE, U.UC_HOOK_MEM_READ_AFTER
_MEM_ACCESS = {MemAccess.READ: (MEM_READ, U.UC_MEM_READ), MemAccess.WRITE: (MEM_WRITE, U.UC_MEM_WRITE),
               MemAccess.READ_AFTER: (MEM_READ_AFTER, U.UC_MEM_READ_AFTER)}
MMIO = 1 << 40  # not a Unicorn hook type: the callbacks of an mmio_map range


def signed64(value: int) -> int:
    """A 64-bit value as Unicorn's callbacks get it (int64_t)."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


@dataclass(eq=False)
class Hook:
    """One ``hook_add``: the type bits, the callback, its range and (instruction hooks) the instruction."""

    types: int
    callback: Callable[..., Any]
    user_data: Any
    begin: int
    end: int
    insn: int = 0
    deleted: bool = False
    mmio: tuple[Any, Any, Any, Any] | None = None  # (read_cb, read_ud, write_cb, write_ud) of an mmio range

    def covers(self, addr: int) -> bool:
        return self.begin > self.end or self.begin <= addr <= self.end


@dataclass
class Ranges:
    """The union of hook ranges as sorted disjoint intervals, for the per-pc and per-access tests."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # inclusive
    everything: bool = False

    @classmethod
    def of(cls, hooks: Iterable[Hook]) -> Ranges:
        spans = []
        for hook in hooks:
            if hook.begin > hook.end:
                return cls(everything=True)
            spans.append((hook.begin, hook.end))
        out = cls()
        for lo, hi in sorted(spans):
            if out.ends and lo <= out.ends[-1] + 1:
                out.ends[-1] = max(out.ends[-1], hi)
            else:
                out.starts.append(lo)
                out.ends.append(hi)
        return out

    def __contains__(self, addr: int) -> bool:
        if self.everything:
            return True
        i = bisect.bisect_right(self.starts, addr) - 1
        return i >= 0 and addr <= self.ends[i]

    def overlaps(self, lo: int, hi: int) -> bool:
        """Whether [lo, hi] (inclusive) meets a range."""
        if self.everything:
            return True
        i = bisect.bisect_right(self.starts, hi) - 1
        return i >= 0 and self.ends[i] >= lo

    def __bool__(self) -> bool:
        return self.everything or bool(self.starts)


class HookSet:
    """The hooks of one Uc (module docstring); ``handles`` maps hook handles to hooks."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self.handles: dict[int, Hook] = {}
        self._next_handle = 1
        self._code = self._block = self._read = self._write = Ranges()
        self.exits: frozenset[int] | None = None  # ctl_set_exits addresses when exits are enabled
        #: A write whose write hooks already ran before an invalid-memory hook mapped its page: (addr, size).
        self.write_reported: tuple[int, int] | None = None

    # -- adding and deleting ------------------------------------------------------------------
    def add(self, hook: Hook) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self.handles[handle] = hook
        self._changed(hook)
        return handle

    def delete(self, handle: int) -> Hook:
        hook = self.handles.pop(handle)
        hook.deleted = True
        self._changed(hook)
        return hook

    def _changed(self, hook: Hook) -> None:
        live = list(self.handles.values())
        if hook.types & (CODE | BLOCK):
            self._code = Ranges.of(h for h in live if h.types & CODE)
            self._block = Ranges.of(h for h in live if h.types & BLOCK)
            changed = Ranges.of([hook])
            self._uc._machine.hooks_changed(changed.__contains__)  # noqa: SLF001 - the Uc owns this set
        if hook.types & (MEM_READ | MEM_WRITE | MEM_READ_AFTER | MMIO):
            self._read = Ranges.of(h for h in live if h.types & (MEM_READ | MEM_READ_AFTER | MMIO))
            self._write = Ranges.of(h for h in live if h.types & (MEM_WRITE | MMIO))
            self._uc._machine.memory.rewatch()  # noqa: SLF001

    def of_type(self, types: int, addr: int | None = None, insn: int | None = None) -> Iterator[Hook]:
        """Live hooks with one of ``types``, in the order they were added (covering ``addr``, for ``insn``)."""
        for hook in list(self.handles.values()):
            if hook.deleted or not hook.types & types:
                continue
            if addr is not None and not hook.covers(addr):
                continue
            if insn is not None and hook.insn != insn:
                continue
            yield hook

    def exits_changed(self, exits: frozenset[int] | None) -> None:
        old = self.exits or frozenset()
        self.exits = exits
        changed = old ^ (exits or frozenset())
        if changed:
            self._uc._machine.hooks_changed(changed.__contains__)  # noqa: SLF001

    # -- HookHost: what is hooked --------------------------------------------------------------
    def code_hooked(self, pc: int) -> bool:
        return pc in self._code

    def block_hooked(self, pc: int) -> bool:
        return pc in self._block

    def exit_at(self, pc: int) -> bool:
        return self.exits is not None and pc in self.exits

    def memory_page_flags(self, page: int) -> int:
        lo = page << abi.PAGE_BITS
        hi = lo + abi.PAGE_SIZE - 1
        return ((abi.PT_SLOW_READ if self._read.overlaps(lo, hi) else 0)
                | (abi.PT_SLOW_WRITE if self._write.overlaps(lo, hi) else 0))

    def memory_hooked(self, addr: int, size: int, write: bool) -> bool:
        return addr in (self._write if write else self._read)

    # -- HookHost: the events ---------------------------------------------------------------------
    def _call(self, hooks: Iterable[Hook], *args: Any) -> Action:
        """Call each hook's callback with ``(uc, *args, user_data)``; stop after one calls emu_stop."""
        uc = self._uc
        uc.rip_written = False
        for hook in hooks:
            if hook.deleted:
                continue
            uc.call_back(hook.callback, *args, hook.user_data)
            if uc.stop_requested:
                return STOP
        return Redirect(uc.reg_read(X.UC_X86_REG_RIP)) if uc.rip_written else None

    def on_block(self, pc: int, size: int) -> Action:
        return self._call(self.of_type(BLOCK, pc), pc, size)

    def on_code(self, pc: int, size: int) -> Action:
        return self._call(self.of_type(CODE, pc), pc, size)

    def on_memory(self, access: MemAccess, addr: int, size: int, value: int) -> tuple[Action, int | None]:
        hook_type, uc_access = _MEM_ACCESS[access]
        if access is MemAccess.WRITE and self.write_reported == (addr, size):
            self.write_reported = None  # its write hooks ran before the invalid-memory hook
            hooks: list[Hook] = []
        else:
            hooks = list(self.of_type(hook_type, addr))
        action = self._call(hooks, uc_access, addr, size, signed64(value))
        replaced = None
        if action is None and access is not MemAccess.READ_AFTER:
            replaced, action = self._mmio(access, addr, size, value)
        return action, replaced

    def _mmio(self, access: MemAccess, addr: int, size: int, value: int) -> tuple[int | None, Action]:
        """An access to an mmio_map range: its callbacks, in pieces of at most 4 bytes as Unicorn makes them."""
        hook = next(self.of_type(MMIO, addr), None)
        if hook is None or hook.mmio is None:
            return None, None
        read_cb, read_ud, write_cb, write_ud = hook.mmio
        uc = self._uc
        uc.rip_written = False
        result = 0
        for offset in range(0, size, 4):
            piece = min(4, size - offset)
            at = addr - hook.begin + offset
            if access is MemAccess.READ:
                got = uc.call_back(read_cb, at, piece, read_ud) if read_cb is not None else 0
                result |= (int(got or 0) & ((1 << (8 * piece)) - 1)) << (8 * offset)
            elif write_cb is not None:
                uc.call_back(write_cb, at, piece, (value >> (8 * offset)) & ((1 << (8 * piece)) - 1), write_ud)
            if uc.stop_requested:
                return None, STOP
        action = Redirect(uc.reg_read(X.UC_X86_REG_RIP)) if uc.rip_written else None
        return (result if access is MemAccess.READ else None), action

    def on_insn(self, mnemonic: str, pc: int) -> tuple[bool, Action]:
        """cpuid / rdtsc hooks: each returns whether the instruction is skipped (a nonzero result)."""
        insn = X.UC_X86_INS_CPUID if mnemonic == "cpuid" else X.UC_X86_INS_RDTSC
        uc = self._uc
        uc.rip_written = False
        skip = False
        for hook in self.of_type(U.UC_HOOK_INSN, insn=insn):
            skip = bool(uc.call_back(hook.callback, hook.user_data)) or skip
            if uc.stop_requested:
                return skip, STOP
        if not skip and mnemonic == "cpuid":
            uc.unicorn_cpuid()
            skip = True
        return skip, (Redirect(uc.reg_read(X.UC_X86_REG_RIP)) if uc.rip_written else None)

    def on_port(self, pc: int, port: int, size: int, value: int | None) -> tuple[int, Action]:
        """in (``value`` None: the hooks' result is read, 0 without one) / out hooks."""
        uc = self._uc
        uc.rip_written = False
        result = 0
        insn = X.UC_X86_INS_IN if value is None else X.UC_X86_INS_OUT
        for hook in self.of_type(U.UC_HOOK_INSN, insn=insn):
            if value is None:
                result = int(uc.call_back(hook.callback, port, size, hook.user_data) or 0)
            else:
                uc.call_back(hook.callback, port, size, value, hook.user_data)
            if uc.stop_requested:
                return result, STOP
        return result, (Redirect(uc.reg_read(X.UC_X86_REG_RIP)) if uc.rip_written else None)
