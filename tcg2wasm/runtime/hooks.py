"""Hooks compiled into the translation: the runtime side of ``tcg2wasm.unicorn``'s ``hook_add``.

The owner of the hooks (a ``HookHost``: ``tcg2wasm.unicorn.Uc``) says which pcs and
addresses are hooked and runs the callbacks; this module makes translated code
leave for the host only there, and gives the callbacks Unicorn's view of the
machine (rip at the instruction, the registers of its start, memory as it is):

- **Hooked pcs** -- an instruction in a code hook's range, a block start in a
  block hook's range, an exit address -- are never entered through the jump
  cache and never join a region, and the front end ends a TB before a code-hooked
  instruction (``TBShape``). Every arrival at one returns to the host: a branch to
  it is the dispatcher's miss (a block starts there), a TB cut before it leaves
  with ``Exit.HOOK`` (the middle of a block). ``arrive`` then runs the block
  hooks, the instruction-count check, the code hooks, and the code at the pc
  (its TB: interpreted while cold, compiled alone once hot). Code outside every
  hooked range is translated and run as without hooks.
- **Memory hooks**: the pages their ranges overlap carry ``PT_SLOW_READ`` /
  ``PT_SLOW_WRITE`` (``GuestMemory.watch``), so their accesses leave the inline
  TLB path; the slow path checks the exact range, and an access inside it
  leaves translated code as a precise ``Excp.WATCH`` fault. ``on_watch`` redoes
  that one instruction in the IR interpreter with the callbacks around each
  access. Accesses to a watched page outside every range cost a call into
  Python each (docs/unicorn-api.md).
- **Instruction hooks** (cpuid, rdtsc, in/out) at the exits those instructions
  already take; syscall, interrupts and faults reach the host as ``StopReason``s.

TBs are shaped as Unicorn's blocks (``unicorn_blocks``), so that block hooks
report Unicorn's blocks and counts and hooks see rep loops as Unicorn runs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import iced_x86 as ix

from tcg2wasm.abi import MASK64, Exit
from tcg2wasm.cfg.region import Region
from tcg2wasm.errors import GuestFault
from tcg2wasm.frontend.x86_64.unicorn_blocks import block_extent, ends_block, unicorn_insn_size
from tcg2wasm.ir.core import Op, TranslationBlock
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.runtime.engines import Engine
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.registers import RegisterFile
from tcg2wasm.runtime.stops import Stats, StopReason
from tcg2wasm.runtime.translator import Translator
from tcg2wasm.runtime.wasm_runtime import WasmRuntime, i32_caller

__all__ = ["STOP", "Action", "Arrival", "HookHost", "Hooks", "MemAccess", "Redirect"]


class Arrival(Enum):
    """How execution reached a hooked pc."""

    BLOCK = "block"  # a branch, the start of a run, a redirect: a block starts here (block hooks run)
    CONTINUATION = "continuation"  # the middle of a block (code hooks only)
    RETRY = "retry"  # the instruction is retried after an invalid-memory hook mapped memory (no hooks)


class MemAccess(Enum):
    READ = "read"
    WRITE = "write"
    READ_AFTER = "read_after"


@dataclass(frozen=True)
class Redirect:
    """A callback wrote rip: execution goes on there, as a new block."""

    pc: int


class _Stop:
    def __repr__(self) -> str:
        return "STOP"


STOP = _Stop()  # a callback called emu_stop()
Action = Redirect | _Stop | None  # what the host asks for after its callbacks (None: go on)


class HookHost(Protocol):
    """What the runtime asks the owner of the hooks (``tcg2wasm.unicorn.Uc``)."""

    def code_hooked(self, pc: int) -> bool: ...

    def block_hooked(self, pc: int) -> bool: ...

    def exit_at(self, pc: int) -> bool: ...

    def memory_page_flags(self, page: int) -> int: ...

    def memory_hooked(self, addr: int, size: int, write: bool) -> bool: ...

    def on_block(self, pc: int, size: int) -> Action: ...

    def on_code(self, pc: int, size: int) -> Action: ...

    def on_memory(self, access: MemAccess, addr: int, size: int, value: int) -> tuple[Action, int | None]: ...

    def on_insn(self, mnemonic: str, pc: int) -> tuple[bool, Action]: ...

    def on_port(self, pc: int, port: int, size: int, value: int | None) -> tuple[int, Action]: ...


class _Abort(Exception):
    """A memory callback asked to stop or redirect: the instruction is abandoned (see ``_HookedMemory``)."""

    def __init__(self, action: Action) -> None:
        super().__init__(repr(action))
        self.action = action


class _HookedMemory:
    """Guest memory for an instruction redone with its memory hooks: the callbacks around each access.

    As in Unicorn, a read hook runs before the load, a write hook before the store (with the
    value), a read-after hook after the load (with the value read). ``emu_stop`` or a rip write
    abandons the instruction -- after the store, for a write hook, as Unicorn's store happens.
    A callback may give the value a load returns instead of memory (mmio).
    """

    def __init__(self, memory: GuestMemory, host: HookHost) -> None:
        self._memory = memory
        self._host = host

    def load(self, addr: int, size: int) -> int:
        addr &= MASK64
        hooked = self._host.memory_hooked(addr, size, False)
        replaced = None
        if hooked:
            action, replaced = self._host.on_memory(MemAccess.READ, addr, size, 0)
            if action is not None:
                raise _Abort(action)
        value = self._memory.load(addr, size)
        if replaced is not None:
            value = replaced & ((1 << (8 * size)) - 1)
        if hooked:
            action, _ = self._host.on_memory(MemAccess.READ_AFTER, addr, size, value)
            if action is not None:
                raise _Abort(action)
        return value

    def load_for_write(self, addr: int, size: int) -> int:
        """The read of a read-modify-write: the write fault first (as the CPU), then the hooked load."""
        self._memory.check_writable(addr & MASK64, size)
        return self.load(addr, size)

    def store(self, addr: int, size: int, value: int) -> None:
        addr &= MASK64
        action = None
        if self._host.memory_hooked(addr, size, True):
            action, _ = self._host.on_memory(MemAccess.WRITE, addr, size, value)
        self._memory.store(addr, size, value)
        if action is not None:
            raise _Abort(action)


_PORT_MNEMONICS = {ix.Mnemonic.IN: True, ix.Mnemonic.OUT: False}  # -> is an input
_ACCUMULATOR_BITS = {ix.Register.AL: 8, ix.Register.AX: 16, ix.Register.EAX: 32}


class Hooks:
    """One machine's hook points: what its translator, exit handler and guest memory ask (module docstring)."""

    unicorn_blocks = True  # TBShape: TBs end where Unicorn's blocks end

    def __init__(self, host: HookHost, *, rt: WasmRuntime, regs: RegisterFile, memory: GuestMemory,
                 translator: Translator, cold: Engine, stats: Stats, hot_threshold: int) -> None:
        self.host = host
        self._rt = rt
        self._regs = regs
        self._memory = memory
        self._translator = translator
        self._cold = cold
        self._stats = stats
        self._hot_threshold = max(1, hot_threshold)
        self._body_runs: dict[int, int] = {}
        self._bodies: dict[int, tuple[TranslationBlock, Callable[[], int]]] = {}
        self._single: dict[int, TranslationBlock] = {}  # one-instruction TBs redone with memory hooks
        self._expected: tuple[int, Arrival] | None = None

    # -- what the front end and guest memory ask (TBShape, Watch) ----------------------------
    def cut_before(self, pc: int) -> bool:
        return self.host.code_hooked(pc) or self.host.exit_at(pc)

    def hooked(self, pc: int) -> bool:
        host = self.host
        return host.code_hooked(pc) or host.block_hooked(pc) or host.exit_at(pc)

    intercepts = hooked  # the exit handler: a miss at this pc is an arrival for the host

    def page_flags(self, page: int) -> int:
        return self.host.memory_page_flags(page)

    def hits(self, addr: int, size: int, write: bool) -> bool:
        return self.host.memory_hooked(addr, size, write)

    def expect(self, pc: int, arrival: Arrival | None) -> None:
        """How the next run's first arrival at ``pc`` is reached (a resumed or retried instruction)."""
        self._expected = None if arrival is None else (pc, arrival)

    # -- arrivals -----------------------------------------------------------------------------
    def arrive(self, pc: int, exits: Any, arrival: Arrival = Arrival.BLOCK) -> Any:
        """Execution reached hooked ``pc``: block hooks, the count check, code hooks, then the code there."""
        arrival = self._take_expected(pc, arrival)
        if pc == self._rt.state_read("stop_pc") or self.host.exit_at(pc):
            return StopReason("until", pc, message=f"stopped at {pc:#x}")
        self._rt.state_write("rip", pc)
        try:
            if arrival is Arrival.BLOCK and self.host.block_hooked(pc):
                action = self.host.on_block(pc, self._block_size(pc))
                if action is not None:
                    return self._act(action, pc)
            if exits.budget_left() == 0:
                return StopReason("count", pc, message=f"instruction count reached at {pc:#x}")
            if arrival is not Arrival.RETRY and self.host.code_hooked(pc):
                action = self.host.on_code(pc, self._insn_size(pc))
                if isinstance(action, Redirect):  # Unicorn's count is a code hook: the skipped instruction counted
                    self._rt.state_write("icount_left", exits.budget_left() - 1)
                if action is not None:
                    return self._act(action, pc)
        except GuestFault as f:
            return exits.fault_stop(pc, f.kind, f.addr)
        return self._run_body(pc, exits)

    def _take_expected(self, pc: int, arrival: Arrival) -> Arrival:
        expected, self._expected = self._expected, None
        return expected[1] if expected is not None and expected[0] == pc else arrival

    def _block_size(self, pc: int) -> int:
        stops = _Stops(self._rt.state_read("stop_pc"), self.host.exit_at)
        return block_extent(self._memory.fetch, pc, stops).size

    def _insn_size(self, pc: int) -> int:
        """The size the code hook reports: the lifted TB's first instruction (cached), else decoded here."""
        tb = self._translator.lifted(pc)
        first = tb.insns[0] if tb.insns else None
        if first is not None and first.pc == pc and first.lifted:
            return len(first.raw)
        ins = ix.Decoder(64, self._memory.fetch(pc, 15), ip=pc).decode()
        return unicorn_insn_size(ins)

    def _act(self, action: Redirect | _Stop, pc: int) -> Any:
        if isinstance(action, Redirect):
            return action.pc  # a new block: the dispatcher misses there if it is hooked
        return StopReason("stop", self._rt.state_read("rip"), message=f"emu_stop() from a hook at {pc:#x}")

    def after_step(self, insn_pc: int, next_pc: int, exits: Any, *, cut: bool = False) -> Any:
        """The host ran the instruction at ``insn_pc`` (or up to ``next_pc``, ``cut``); execution goes on at next_pc."""
        if not self.hooked(next_pc):
            return next_pc
        if cut:
            return self.arrive(next_pc, exits, Arrival.CONTINUATION)
        try:
            ins = ix.Decoder(64, self._memory.fetch(insn_pc, 15), ip=insn_pc).decode()
        except GuestFault:
            return self.arrive(next_pc, exits, Arrival.BLOCK)
        return self.arrive(next_pc, exits, Arrival.BLOCK if ends_block(ins) else Arrival.CONTINUATION)

    # -- the code at a hooked pc -----------------------------------------------------------------
    def _run_body(self, pc: int, exits: Any) -> Any:
        try:
            tb = self._translator.lifted(pc)
        except GuestFault as f:
            return exits.fault_stop(pc, f.kind, f.addr)
        if tb.n_insns == 0 and tb.fallback_insns:
            return exits.on_fallback(pc)
        runs = self._body_runs[pc] = self._body_runs.get(pc, 0) + 1
        if runs < self._hot_threshold:
            self._stats.blocks_interpreted += 1
            return exits.handle(*self._cold.run_block(tb))
        call = self._body(pc, tb)
        self._rt.state_write("rip", pc)
        self._rt.state_write("exit_pending", 0)
        code = Exit(call())
        return exits.handle(code, self._rt.state_read("rip"))

    def _body(self, pc: int, tb: TranslationBlock) -> Callable[[], int]:
        """The compiled TB at hooked ``pc`` alone (every edge leaves it), made again when the TB changed."""
        cached = self._bodies.get(pc)
        if cached is not None and cached[0] is tb:
            return cached[1]
        body = _leaving_at(self._translator.optimized(pc), pc)
        wasm = self._translator.compile(Region(pc, {pc: body}))
        func = self._rt.instantiate_region(wasm)
        self._stats.modules += 1
        call = i32_caller(self._rt.store, func)
        self._bodies[pc] = (tb, call)
        return call

    # -- memory hooks ---------------------------------------------------------------------------------
    def on_watch(self, pc: int, exits: Any) -> Any:
        """An access inside a memory hook's range: redo the instruction at ``pc`` with its memory hooks."""
        if exits.budget_left() == 0:
            return StopReason("count", pc, message=f"instruction count reached at {pc:#x}")
        try:
            tb = self._single_insn(pc)
        except GuestFault as f:
            return exits.fault_stop(pc, f.kind, f.addr)
        self._rt.state_write("rip", pc)
        outcome = self._redo(tb)
        if not isinstance(outcome, tuple):
            return self._act(outcome, pc)
        code, next_pc = outcome
        if code == Exit.CONTINUE:
            return self.after_step(pc, next_pc, exits)
        return exits.handle(code, next_pc)

    def _single_insn(self, pc: int) -> TranslationBlock:
        tb = self._single.get(pc)
        if tb is None or not tb.insns or self._memory.fetch(pc, len(tb.insns[0].raw)) != tb.insns[0].raw:
            tb = self._single[pc] = self._translator.translate(pc, max_insns=1)
        return tb

    def _redo(self, tb: TranslationBlock) -> tuple[Exit, int] | Redirect | _Stop:
        """Run ``tb`` (one instruction) with the memory callbacks; registers the callbacks wrote stay written.

        A register the instruction does not write keeps what a callback wrote into it (as in
        Unicorn, where callbacks write the CPU state directly); one it writes gets the
        instruction's value, computed from the registers of its start (as Unicorn's TCG code
        holds them across the access).
        """
        rt, memory = self._rt, self._memory
        values = self._regs.load_globals()
        memory.watch_passthrough = memory.code_write_passthrough = True
        try:
            result = run_tb(tb, values, _HookedMemory(memory, self.host))
        except _Abort as abort:
            assert abort.action is not None
            return abort.action
        finally:
            memory.watch_passthrough = memory.code_write_passthrough = False
        hooked = self._regs.load_globals()
        outputs = _written_globals(tb)
        self._regs.store_globals([value if i in outputs else by_hook
                                  for i, (value, by_hook) in enumerate(zip(values, hooked, strict=True))])
        if result.exit == Exit.FAULT:
            rt.state_write("fault_kind", int(result.fault_kind))
            rt.state_write("fault_addr", result.fault_addr)
        else:
            rt.state_write("icount_left", rt.state_read("icount_left") - tb.n_insns)
        rt.state_write("rip", result.pc)
        return result.exit, result.pc

    # -- instruction hooks ---------------------------------------------------------------------------
    def on_insn_exit(self, mnemonic: str, next_pc: int, exits: Any, run: Callable[[], None]) -> Any:
        """cpuid / rdtsc (rip is past it): the hooks (rip at the instruction), which may skip it, then ``run``."""
        pc = self.insn_before(next_pc)
        self._rt.state_write("rip", pc)
        skip, action = self.host.on_insn(mnemonic, pc)
        if isinstance(action, Redirect):
            return action.pc
        if not skip:
            run()
        self._rt.state_write("rip", next_pc)
        if action is STOP:
            return StopReason("stop", next_pc, message=f"emu_stop() from a hook at {pc:#x}")
        return self.after_step(pc, next_pc, exits)

    def insn_before(self, next_pc: int) -> int:
        """The pc of the 2-byte instruction (cpuid, rdtsc, syscall) that ends at ``next_pc``."""
        for length in (2, 3, 4):  # prefixes (rex, 66) are possible but rare
            insn = self._translator.insn_at(next_pc - length)
            if insn is not None and len(insn.raw) == length:
                return next_pc - length
        return next_pc - 2

    def on_fallback(self, pc: int, exits: Any) -> Any:
        """in/out (not lifted) run here, with the port hooks; other instructions go to the fallback (None)."""
        try:
            ins = ix.Decoder(64, self._memory.fetch(pc, 15), ip=pc).decode()
        except GuestFault:
            return None
        is_in = _PORT_MNEMONICS.get(ins.mnemonic)
        if is_in is None:
            return None
        if exits.budget_left() == 0:
            return StopReason("count", pc, message=f"instruction count reached at {pc:#x}")
        action = self._port(ins, is_in)
        self._rt.state_write("icount_left", exits.budget_left() - 1)
        if isinstance(action, Redirect):
            return action.pc
        self._rt.state_write("rip", ins.next_ip)
        if action is STOP:
            return StopReason("stop", ins.next_ip, message=f"emu_stop() from a hook at {pc:#x}")
        return self.after_step(pc, ins.next_ip, exits)

    def _port(self, ins: ix.Instruction, is_in: bool) -> Action:
        accumulator = ins.op0_register if is_in else ins.op1_register
        bits = _ACCUMULATOR_BITS[accumulator]
        port_operand = 1 if is_in else 0
        by_dx = ins.op_kind(port_operand) == ix.OpKind.REGISTER
        port = self._regs.read("dx") if by_dx else ins.immediate(port_operand)
        name = {8: "al", 16: "ax", 32: "eax"}[bits]
        self._rt.state_write("rip", ins.ip)
        value, action = self.host.on_port(ins.ip, port, bits // 8, None if is_in else self._regs.read(name))
        if is_in and action is None:
            self._regs.write("rax" if bits == 32 else name, value & ((1 << bits) - 1))  # eax zero-extends
        return action

    # -- hooks changed ---------------------------------------------------------------------------------
    def retranslate(self, changed: Callable[[int], bool], drop_region: Callable[[int], None]) -> int:
        """Code or block hook ranges changed where ``changed(pc)``: drop the TBs and regions that depend on them.

        A TB depends on a range if an instruction inside it lies there (it must be cut), or it was
        cut before a pc there (how it leaves depends on whether that pc is hooked); a region does
        if a block of it starts there (hooked pcs are no members) or it holds such a TB. Returns
        how many TBs were dropped.
        """
        dropped = 0
        for tb in self._translator.lifted_blocks():
            if any(changed(insn.pc) for insn in tb.insns) or changed(tb.meta.get("cut_at", tb.pc)):
                self._translator.drop(tb.pc)
                drop_region(tb.pc)
                dropped += 1
        self._body_runs.clear()
        self._single.clear()
        return dropped


def _written_globals(tb: TranslationBlock) -> frozenset[int]:
    """Indices of the globals some op of ``tb`` writes."""
    return frozenset(out.index for op in tb.ops for out in op.outputs if out.is_global)


def _leaving_at(tb: TranslationBlock, pc: int) -> TranslationBlock:
    """``tb`` with its jumps to ``pc`` (a rep loop, a loop onto itself) leaving the region instead.

    Compiled alone, a TB that jumps to its own pc would loop inside wasm and skip the hooks
    there; ``exit_tb CONTINUE`` returns to the host, which arrives at ``pc`` again.
    """
    ops = [Op("exit_tb", [int(Exit.CONTINUE), pc]) if op.name == "goto_tb" and op.args[0] == pc else op
           for op in tb.ops]
    return dataclasses.replace(tb, ops=ops, meta={})


@dataclass(frozen=True)
class _Stops:
    """The addresses a Unicorn block ends before: the run's stop address and the exits."""

    stop_pc: int
    exit_at: Callable[[int], bool]

    def __contains__(self, pc: object) -> bool:
        return isinstance(pc, int) and (pc == self.stop_pc or self.exit_at(pc))
