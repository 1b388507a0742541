"""Unicorn over the guest's own pages and state block: the cold tier of a run, and the fallback executor.

One Unicorn per machine maps every run of guest pages with ``mem_map_ptr``
onto the wasm linear memory, so nothing is copied; registers go between
Unicorn and the state block in one C call each way (``ucadapter.StateSync``).
The same instance runs

- *slices* of cold code (``run``): until a region entry (the native block
  hook of ``runtime/block_counter.py`` looks every block pc up in a set of
  them; on a host where that hook cannot run, they are Unicorn's exit list), a
  syscall, a fault, the stop address or a block that got hot -- the first tier
  of ``tcg2wasm run``, at Unicorn's own speed, while the hot code is compiled;
- *one instruction* the lifter lacks (``step``), so x87 state that the IR
  does not model yet persists between fallback instructions and slices.

Translated code stays coherent both ways. Pages holding translated code are
write-protected in Unicorn's mapping: a Unicorn store there stops it with a
write fault, which is turned into an invalidation of those translations and a
restart of the instruction. Stores by translated code or the host into pages
that are both writable and executable are watched (``GuestMemory.watch_exec_writes``)
and drop whatever Unicorn translated there.

Pages holding x87 instructions are mapped without execute permission
(``runtime/x87_pages.py``): Unicorn's x87 is neither the CPU's nor shared with
translated code, so a fetch there stops the slice before the instruction and
the machine runs that code itself (``must_not_run``).

Unicorn cannot count instructions without a per-instruction hook, so slices
run only in runs without an instruction budget, and what they execute is
counted in ``Stats.unicorn_seconds``, not in ``guest_insns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from unicorn import UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_MEM_FETCH_PROT, UC_MEM_WRITE_PROT, Uc, UcError
from unicorn import x86_const as X

from tcg2wasm import abi
from tcg2wasm.abi import MASK64, Excp, Exit
from tcg2wasm.errors import GuestMemoryError
from tcg2wasm.runtime.block_counter import BlockCounter
from tcg2wasm.runtime.block_counter import available as block_counter_available
from tcg2wasm.runtime.code_cache import CodeCache
from tcg2wasm.runtime.cpuid import cpuid
from tcg2wasm.runtime.memory import PERM_W, PERM_X, GuestMemory, format_perms
from tcg2wasm.runtime.registers import RegisterFile
from tcg2wasm.runtime.stops import NO_STOP, Stats, has_stop_pc
from tcg2wasm.runtime.wasm_runtime import WasmRuntime
from tcg2wasm.runtime.x87_pages import cached_x87_pages, x87_pages
from tcg2wasm.ucadapter import (
    ACCESS_FAULTS,
    VECTOR_FAULTS,
    StateSync,
    fault_of_error,
        new_uc,
    perms_to_uc,
)

__all__ = ["SliceOutcome", "UnicornCPU"]

#: x87 registers only Unicorn holds (the state block has fpcw): kept across _forget_exception
_X87_REGS = (*(getattr(X, f"UC_X86_REG_FP{i}") for i in range(8)), X.UC_X86_REG_FPSW, X.UC_X86_REG_FPTAG,
             X.UC_X86_REG_FPCW, X.UC_X86_REG_FIP, X.UC_X86_REG_FCS, X.UC_X86_REG_FDP, X.UC_X86_REG_FDS,
             X.UC_X86_REG_FOP)

_HLT = b"\xf4"
#: A visit from Unicorn to compiled code costs two hand-overs (~60 us here: ~3,000 instructions at
#: Unicorn's speed). An entry whose first ``VISITS_JUDGED`` visits ran fewer guest instructions
#: than this on average (a short function called from cold code, say) is not worth them: slices
#: run through it from then on (docs/performance.md has what it bought).
MIN_VISIT_INSNS = 2_000
VISITS_JUDGED = 16
#: Legacy prefixes and REX bytes (an hlt may carry them).
_PREFIX_BYTES = frozenset(bytes.fromhex("262e363e64656667f0f2f3") + bytes(range(0x40, 0x50)))
EXIT_UPDATE_SECONDS = 0.01  # newly compiled pcs join Unicorn's exit list at most this often
#: Runs of a block in Unicorn before it is hot (its region is compiled): ~50 us of Unicorn time at
#: ~20 ns a block... times the hash table's sharing; a region costs milliseconds to build.
HOT_BLOCK_RUNS = 20_000


@dataclass
class SliceOutcome:
    """How a slice ended beyond its exit code: a trap's vector, a block that got hot."""

    vector: int | None = None  # Exit.TRAP: the interrupt number (rip is past the instruction)
    hot_pc: int | None = None  # a block that ran HOT_BLOCK_RUNS times (the slice stopped before it)


class UnicornCPU:
    """A Unicorn sharing the guest pages and registers of one machine."""

    def __init__(self, rt: WasmRuntime, regs: RegisterFile, memory: GuestMemory, stats: Stats,
                 code: CodeCache) -> None:
        """``code``: the installed regions; a slice stops before their entries.

        Entries, not every block: stopping at every compiled block made Unicorn and
        wasm hand over six times as often on SQLite (94,000 slices against 14,000), and the
        run took 2.8x as long. Unicorn still stops at other compiled blocks once they are
        hot (the block counter), and the machine then enters the region there. The native
        block hook looks the entries up; without it, they are Unicorn's exit list, and each
        costs every ``emu_start`` a translation dropped (see ``block_counter``).
        """
        self._compiled_pcs: Callable[[], frozenset[int]] = code.compiled_entries
        self._code = code
        self._rt = rt
        self._regs = regs
        self._memory = memory
        self._stats = stats
        self.uc = new_uc()
        base = rt.linear.base
        self._sync = StateSync(self.uc, lambda name: base + abi.STATE_OFFSET[name])
        self._mapped: dict[int, tuple[int, int, int]] = {}  # guest addr -> (size, uc perms, host ptr)
        self._layout_version = -1
        self._code_version = -1
        self._protected: set[int] = set()  # pages write-protected in Unicorn because they hold translations
        self._x87_runs: dict[tuple[int, int], set[int]] = {}  # executable run (addr, size) -> its x87 pages
        self._x87_pages: set[int] = set()  # mapped without execute permission: Unicorn must not run them
        self._x87_stops: set[int] = set()  # pcs where a fetch from such a page stopped a slice
        self._rescan: set[int] = set()  # executable pages written since they were scanned
        self._exits: frozenset[int] = frozenset()
        self._exits_from: frozenset[int] = frozenset()  # the compiled pcs the exits were made from
        self._exits_time = 0.0
        self._hlt_before: dict[int, bool] = {}
        self._stepped_from: int | None = None  # where the last step started (None: the last run was a slice)
        self._pending_access: tuple[int, int] | None = None
        self._syscall = False
        self._vector: int | None = None
        self._fresh_context = self.uc.context_save()  # the CPU as created: see _forget_exception
        self._exception_seen = False
        self.counter: BlockCounter | None = None  # made by the first slice (a block hook costs ~30%)
        self._until = NO_STOP  # the stop address a hooked slice runs to (NO_STOP, a non-canonical pc: none)
        self._candidates: set[int] = set()  # stops where compiled code may exist (stop_at_candidates)
        self._visit: tuple[int, int] | None = None  # (entry, icount_left) of the visit under way
        self._visits: dict[int, tuple[int, int]] = {}  # entry -> (visits, guest instructions they ran)
        self._run_through: set[int] = set()  # entries not worth a visit (MIN_VISIT_INSNS)
        self.uc.ctl_exits_enabled(True)
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self.uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        self.uc.hook_add(UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        if not memory.watch_exec_writes:
            memory.set_watch_exec_writes(True)
        memory.on_exec_write = self._forget_translations

    # -- hooks ---------------------------------------------------------------------------------
    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, data: object) -> bool:
        self._pending_access = (access, address & MASK64)
        return False

    def _on_interrupt(self, uc: Uc, vector: int, data: object) -> None:
        self._vector = vector
        uc.emu_stop()

    def _on_syscall(self, uc: Uc, data: object) -> None:
        self._syscall = True
        uc.emu_stop()

    def _on_cpuid(self, uc: Uc, data: object) -> int:
        """Our CPU model, not Unicorn's: libc picks its routines by it, and they must be the ones we lift."""
        leaf = uc.reg_read(X.UC_X86_REG_RAX) & 0xFFFF_FFFF
        subleaf = uc.reg_read(X.UC_X86_REG_RCX) & 0xFFFF_FFFF
        for reg, value in zip((X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX),
                              cpuid(leaf, subleaf), strict=True):
            uc.reg_write(reg, value)
        return 1  # the instruction is done

    def _forget_translations(self, addr: int, size: int) -> None:
        """Host or translated code wrote executable memory: Unicorn's own translations there go."""
        self.uc.ctl_remove_cache(addr, min(addr + max(size, 1), MASK64))
        end = min(addr + max(size, 1), MASK64)
        self._rescan.update(range(addr >> abi.PAGE_BITS, ((end - 1) >> abi.PAGE_BITS) + 1))

    # -- x87 code: never run by Unicorn ----------------------------------------------------------
    def must_not_run(self, pc: int) -> bool:
        """Whether the code at ``pc`` holds x87 instructions Unicorn must not run (runtime/x87_pages.py)."""
        if self._layout_version != self._memory.layout_version:
            self._sync_layout()
        if self._rescan:
            self._rescan_written()
        return pc in self._x87_stops or (pc >> abi.PAGE_BITS) in self._x87_pages

    def _scan_layout(self) -> None:
        """The x87 pages of every executable run (runs scanned before are not decoded again)."""
        runs: dict[tuple[int, int], set[int]] = {}
        for run in self._memory.host_runs():
            if run.perms & PERM_X:
                key = (run.addr, run.size)
                known = self._x87_runs.get(key)
                if known is None:
                    known = cached_x87_pages(self._memory.read(run.addr, run.size), run.addr)
                runs[key] = known
        self._x87_runs = runs
        self._x87_pages = set().union(*runs.values()) if runs else set()
        self._rescan.clear()

    def _rescan_written(self) -> None:
        """Pages written since their scan: decoded again from their start, their protection made to match."""
        for page in sorted(self._rescan):
            entry = self._memory.page(page << abi.PAGE_BITS)
            if entry is None or not entry.perms & PERM_X:
                continue
            holds_x87 = bool(x87_pages(self._memory.read(page << abi.PAGE_BITS, abi.PAGE_SIZE), page << abi.PAGE_BITS)
                             & {page})
            if holds_x87 != (page in self._x87_pages):
                (self._x87_pages.add if holds_x87 else self._x87_pages.discard)(page)
                self._protect_page(page)
        written = self._rescan
        self._rescan = set()
        for key in [k for k in self._x87_runs if any(k[0] >> abi.PAGE_BITS <= p < (k[0] + k[1]) >> abi.PAGE_BITS
                                                     for p in written)]:
            del self._x87_runs[key]  # its contents changed: scanned again at the next layout change

    def _uc_perms(self, page: int) -> int | None:
        """Unicorn's permissions for ``page``: the guest's, without write while it holds translations
        and without execute while it holds x87 code."""
        entry = self._memory.page(page << abi.PAGE_BITS)
        if entry is None:
            return None
        perms = entry.perms
        if page in self._protected:
            perms &= ~PERM_W
        if page in self._x87_pages:
            perms &= ~PERM_X
        return perms_to_uc(format_perms(perms))

    def _protect_page(self, page: int) -> None:
        perms = self._uc_perms(page)
        if perms is not None:
            self.uc.mem_protect(page << abi.PAGE_BITS, abi.PAGE_SIZE, perms)

    # -- keeping Unicorn's view right ---------------------------------------------------------
    def _prepare(self, pc: int) -> None:
        """Mappings, protections and the exit list as they must be for a run from ``pc``.

        The exits are every compiled pc and the stop address, but never ``pc`` itself (a run
        from an exit would stop at once, and the machine only enters Unicorn where nothing is
        compiled -- or for one fallback instruction inside a compiled block).
        """
        if self._layout_version != self._memory.layout_version:
            self._sync_layout()
        if self._code_version != self._memory.code_version:
            self._sync_protection()
        stop_pc = self._rt.state_read("stop_pc")
        if self.counter is not None:
            self._prepare_until(stop_pc if has_stop_pc(stop_pc) and stop_pc != pc else NO_STOP)
            return
        compiled = self._compiled_pcs()
        stale = pc in self._exits or (has_stop_pc(stop_pc) and stop_pc not in self._exits)
        if stale or (compiled is not self._exits_from
                     and time.perf_counter() - self._exits_time >= EXIT_UPDATE_SECONDS):
            self._set_exits(compiled, stop_pc, pc)

    def _set_exits(self, compiled: frozenset[int], stop_pc: int, pc: int) -> None:
        """Unicorn's exit list: the compiled pcs and the stop address, without ``pc``.

        Compiled pcs may join late (Unicorn then runs code that is compiled, at its own speed,
        until the next update); the stop address and the removal of ``pc`` may not.
        """
        exits = (frozenset(p for p in compiled if not self._after_hlt_byte(p))
                 | ({stop_pc} if has_stop_pc(stop_pc) else frozenset())) - {pc}
        new = exits - self._exits
        self.uc.ctl_set_exits(sorted(exits))
        for exit_pc in new:  # blocks Unicorn translated before must stop at the new exits
            # (a block running into an exit at 2^64-1 holds the byte before it: Unicorn's end is below 2^64)
            self.uc.ctl_remove_cache(min(exit_pc, MASK64 - 1), min(exit_pc + 1, MASK64))
        self._exits, self._exits_from, self._exits_time = exits, compiled, time.perf_counter()

    def _prepare_until(self, stop_pc: int) -> None:
        """With the hook, the only exit is the stop address, given as ``emu_start``'s ``until``.

        Blocks translated before it became the stop address run through it, so its
        translations go first (Unicorn drops the one at ``until`` after each run). A slice
        that starts at the stop address has none (as it is left out of the exit list).
        """
        if stop_pc != self._until:
            if has_stop_pc(stop_pc):  # (an until at 2^64-1: Unicorn's end stays below 2^64)
                self.uc.ctl_remove_cache(min(stop_pc, MASK64 - 1), min(stop_pc + 1, MASK64))
            self._until = stop_pc

    def _start_counting(self) -> None:
        """The block hook replaces Unicorn's exit list from the first slice on."""
        counter = BlockCounter(self.uc, HOT_BLOCK_RUNS)
        counter.add_compiled(self._code.entries())
        counter.add_compiled(self._candidates)
        self._code.watch_entries(self._compiled_changed)
        self.uc.ctl_exits_enabled(False)
        self._exits = frozenset()
        self._until = NO_STOP
        self.counter = counter

    def _compiled_changed(self, added: list[int], removed: list[int]) -> None:
        if self.counter is not None:
            self.counter.add_compiled(pc for pc in added if pc not in self._run_through)
            self.counter.discard_compiled(pc for pc in removed if pc not in self._candidates)

    def _begin_visit(self, pc: int) -> None:
        if pc not in self._run_through:
            self._visit = (pc, self._rt.state_read("icount_left"))

    def _end_visit(self) -> None:
        """Judge the visit to compiled code that ended with this slice (see ``MIN_VISIT_INSNS``)."""
        if self._visit is None:
            return
        entry, left = self._visit
        self._visit = None
        visits, insns = self._visits.get(entry, (0, 0))
        visits, insns = visits + 1, insns + left - self._rt.state_read("icount_left")
        self._visits[entry] = (visits, insns)
        if visits == VISITS_JUDGED and insns < MIN_VISIT_INSNS * visits and self.counter is not None:
            self._run_through.add(entry)
            self.counter.discard_compiled([entry])
            self._stats.entries_run_through += 1

    def stop_at_candidates(self, pcs: Iterable[int]) -> None:
        """Slices also stop before these pcs, where compiled code may exist (the persistent cache's entries).

        Only with the native block hook (a long exit list costs every slice). The machine
        says at the stop whether the pc had code (``not_compiled`` otherwise).
        """
        self._candidates.update(pcs)
        if self.counter is None and block_counter_available():
            self._start_counting()
        elif self.counter is not None:
            self.counter.add_compiled(self._candidates)

    def not_compiled(self, pc: int) -> None:
        """``pc``, a candidate stop, has no compiled code after all: slices run through it from now on."""
        if pc in self._candidates:
            self._candidates.discard(pc)
            if self.counter is not None and self._code.region_at(pc) is None:
                self.counter.discard_compiled([pc])

    def _after_hlt_byte(self, pc: int) -> bool:
        """Whether the byte before ``pc`` could be an ``hlt``.

        Unicorn stops after an hlt without saying why; a stop right after one, at a pc that is
        also an exit, would look like reaching compiled code. Such pcs are left out of the exit
        list (Unicorn then runs on through them), so a stop there can only be the hlt.
        """
        known = self._hlt_before.get(pc)
        if known is None:
            try:
                known = self._memory.read(pc - 1, 1) == _HLT
            except GuestMemoryError:
                known = False
            self._hlt_before[pc] = known
        return known

    def _sync_layout(self) -> None:
        """Unicorn's mappings: the guest's host runs (unmapping and mapping whole runs only)."""
        base = self._rt.linear.base
        wanted = {run.addr: (run.size, perms_to_uc(format_perms(run.perms)), base + run.host)
                  for run in self._memory.host_runs()}
        for addr, spec in sorted(self._mapped.items()):
            if wanted.get(addr) != spec:
                self.uc.mem_unmap(addr, spec[0])
                del self._mapped[addr]
        for addr, spec in sorted(wanted.items()):
            if addr not in self._mapped:
                size, perms, ptr = spec
                self.uc.mem_map_ptr(addr, size, perms, ptr)
                self._mapped[addr] = spec
        self._layout_version = self._memory.layout_version
        self._protected.clear()
        self._code_version = -1
        self._scan_layout()
        for page in sorted(self._x87_pages):
            self._protect_page(page)

    def _sync_protection(self) -> None:
        wanted = set()
        for page in self._memory.code_pages:
            entry = self._memory.page(page << abi.PAGE_BITS)
            if entry is not None and entry.perms & PERM_W:
                wanted.add(page)
        changed = wanted ^ self._protected
        self._protected = wanted
        for page in sorted(changed):
            self._protect_page(page)
        self._code_version = self._memory.code_version

    # -- running -----------------------------------------------------------------------------
    def step(self, pc: int) -> tuple[Exit, int, SliceOutcome]:
        """Run the one instruction at ``pc`` (the fallback executor), on an x87 page too."""
        self.uc.ctl_remove_cache(pc, min(pc + 16, MASK64))  # its bytes may have changed since last time
        self.must_not_run(pc)  # the layout and the x87 pages are current
        pages = {pc >> abi.PAGE_BITS, (pc + 15) >> abi.PAGE_BITS} & self._x87_pages
        self._x87_pages -= pages
        try:
            for page in pages:
                self._protect_page(page)
            return self._run(pc, count=1)
        finally:
            self._x87_pages |= pages
            for page in pages:
                self._protect_page(page)

    def run(self, pc: int) -> tuple[Exit, int, SliceOutcome]:
        """Run cold code from ``pc`` until a compiled pc, a host exit or a block that gets hot."""
        if self.counter is None and block_counter_available():
            self._start_counting()
        self._end_visit()
        code, rip, outcome = self._run(pc)
        if self.counter is not None and code == Exit.CONTINUE and rip in self.counter.compiled:
            self._begin_visit(rip)
        return code, rip, outcome

    def _run(self, pc: int, count: int = 0) -> tuple[Exit, int, SliceOutcome]:
        stop_pc = self._rt.state_read("stop_pc")
        if self._exception_seen:
            self._forget_exception()
        self._prepare(pc)
        fpcw = self._regs.read_full("fpcw")
        rflags = self._regs.read_full("rflags")
        self._sync.to_unicorn(rflags)
        t0 = time.perf_counter()
        try:
            while True:
                self._pending_access, self._syscall, self._vector = None, False, None
                error = self._start(pc, count)
                if error is None or not self._is_code_write(error):
                    break
                pc = self.uc.reg_read(X.UC_X86_REG_RIP)  # restart the store after the invalidation
        finally:
            self._stats.unicorn_seconds += time.perf_counter() - t0
            self._stats.unicorn_slices += 1
            rflags_now = self._sync.from_unicorn()
            if rflags_now != rflags:
                self._regs.write_full("rflags", rflags_now)
            if self._regs.read_full("fpcw") != fpcw:  # loaded (fldcw, fldenv, frstor...): as the CPU keeps it
                self._regs.write_full("fpcw", abi.fpcw_as_loaded(self._regs.read_full("fpcw")))
        self._stepped_from = pc if count else None
        return self._outcome(error, stop_pc)

    def _forget_exception(self) -> None:
        """QEMU keeps the last CPU exception it raised (``old_exception``: the hook stops before delivery, which
        would clear it), so the next #GP or #DE became a double fault, vector 8, and the one after that ran on
        (found by ``tcg2wasm fuzz blobs``: two xrstor with a bad header). The CPU as created comes back; the
        registers the state block holds are written right after, the x87 ones only Unicorn holds are kept."""
        x87 = [(reg, self.uc.reg_read(reg)) for reg in _X87_REGS]
        self.uc.context_restore(self._fresh_context)
        for reg, value in x87:
            self.uc.reg_write(reg, value)
        self._exception_seen = False

    def _start(self, pc: int, count: int) -> UcError | None:
        if self.counter is not None:
            self.counter.start_slice()
        try:
            self.uc.emu_start(pc, self._until if self.counter is not None else 0, 0, count)
        except UcError as e:
            return e
        return None

    def _is_code_write(self, error: UcError) -> bool:
        """A store into a page we write-protected for its translations: drop them, let the store through."""
        if self._pending_access is None or self._pending_access[0] != UC_MEM_WRITE_PROT:
            return False
        page = self._pending_access[1] >> abi.PAGE_BITS
        if page not in self._protected:
            return False
        self._stats.code_write_restarts += 1
        self._memory.invalidate_range(page << abi.PAGE_BITS, abi.PAGE_SIZE)  # drops the regions there too
        self._prepare(self.uc.reg_read(X.UC_X86_REG_RIP))
        return True

    def _outcome(self, error: UcError | None, stop_pc: int) -> tuple[Exit, int, SliceOutcome]:
        rip = self._rt.state_read("rip")
        counter = self.counter
        hot = counter.take_hot() if counter is not None else None
        compiled = counter.take_stopped_at() if counter is not None else None
        if error is not None and self._fetched_x87_page():
            self._x87_stops.add(rip)  # stopped before code the machine runs itself
            return Exit.CONTINUE, rip, SliceOutcome()
        if error is not None:
            return self._fault(error, rip)
        if self._syscall:
            return Exit.SYSCALL, rip, SliceOutcome()
        if self._vector is not None:
            self._exception_seen = True
            fault = VECTOR_FAULTS.get(self._vector)
            if fault is not None:
                return self._report(fault, 0), rip, SliceOutcome()
            return Exit.TRAP, rip, SliceOutcome(vector=self._vector)
        if rip == stop_pc:
            return Exit.STOP, rip, SliceOutcome()
        if rip in self._exits or (compiled is not None and compiled == rip):
            return Exit.CONTINUE, rip, SliceOutcome()
        if hot is not None and hot == rip:
            return Exit.CONTINUE, rip, SliceOutcome(hot_pc=hot)
        if self._just_halted(rip):
            return Exit.HLT, rip, SliceOutcome()
        return Exit.CONTINUE, rip, SliceOutcome()

    def _fetched_x87_page(self) -> bool:
        if self._pending_access is None or self._pending_access[0] != UC_MEM_FETCH_PROT:
            return False
        return (self._pending_access[1] >> abi.PAGE_BITS) in self._x87_pages

    def _just_halted(self, rip: int) -> bool:
        """Unicorn stopped after an hlt. A step (one instruction, from ``_stepped_from``) may end after an
        0xf4 byte of another instruction (a ModRM of 0xf4: ``cvtdq2ps xmm6, xmm4``): then it was an hlt
        only if every byte before the 0xf4 is a prefix (found by ``tcg2wasm fuzz streams``)."""
        first = rip - 1 if self._stepped_from is None else self._stepped_from
        if not 0 < rip - first <= 15:
            return False
        try:
            raw = bytes(self.uc.mem_read(first, rip - first))
        except UcError:
            return False
        return raw[-1:] == _HLT and all(b in _PREFIX_BYTES for b in raw[:-1])

    def _fault(self, error: UcError, rip: int) -> tuple[Exit, int, SliceOutcome]:
        if self._pending_access is not None:
            access, address = self._pending_access
            kind = ACCESS_FAULTS.get(access, Excp.READ_UNMAPPED)
            fetch = kind in (Excp.FETCH_UNMAPPED, Excp.FETCH_PROT)
            return self._report(kind, address), address if fetch else rip, SliceOutcome()
        known = fault_of_error(error)
        return self._report(Excp.GP if known is None else known, 0), rip, SliceOutcome()

    def _report(self, kind: Excp, address: int) -> Exit:
        self._rt.state_write("fault_kind", int(kind))
        self._rt.state_write("fault_addr", address)
        return Exit.FAULT

