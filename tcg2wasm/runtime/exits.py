"""What the host does when an engine returns: one handler per exit code.

``ExitHandler.handle(code, pc)`` returns the pc to enter next, or the
``StopReason`` that ends the run. The path of a guest pc from a jump-cache miss
to an installed region is all here: ``on_miss`` asks the tiering policy whether
the pc is hot; a cold block runs once in the IR interpreter, a hot one gets a
region from the translator, which the code cache installs and links.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tcg2wasm.abi import Excp, Exit
from tcg2wasm.cfg.region import Region
from tcg2wasm.errors import GuestFault, TranslationError
from tcg2wasm.runtime.background import FinishedRegion
from tcg2wasm.runtime.code_cache import CodeCache, InstalledRegion
from tcg2wasm.runtime.cpuid import cpuid
from tcg2wasm.runtime.engines import Engine
from tcg2wasm.runtime.hooks import Arrival
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.region_cache import RegionCache
from tcg2wasm.runtime.registers import RegisterFile
from tcg2wasm.runtime.stops import Stats, StopReason, fault_stop
from tcg2wasm.runtime.tiering import Tiering
from tcg2wasm.runtime.translator import Translator
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["ExitHandler", "Outcome"]

Outcome = StopReason | int  # a stop, or the pc to enter next
_TSC_BASE = 0x1_0000_0000
#: Set to 0 to compile hot regions on the main thread when Unicorn is the cold tier (runtime/background.py).
BACKGROUND_ENV = "TCG2WASM_BACKGROUND"


#: instructions that raise #GP at CPL 3 with IOPL 0 although iced-x86 marks them usable at CPL 3
_IOPL_SENSITIVE = ("IN", "OUT", "INSB", "INSW", "INSD", "OUTSB", "OUTSW", "OUTSD", "CLI", "STI")


class ExitHandler:
    """Exit codes to actions, for one machine's parts."""

    def __init__(self, *, rt: WasmRuntime, regs: RegisterFile, memory: GuestMemory, translator: Translator,
                 code_cache: CodeCache, tiering: Tiering, engine: Engine, cold: Engine, stats: Stats,
                 cpu: Any, insns_retired: Callable[[], int], fallback: bool, unicorn_tier: bool = False,
                 region_cache: RegionCache | None = None) -> None:
        self._rt = rt
        self._regs = regs
        self._memory = memory
        self._translator = translator
        self._code = code_cache
        self._tiering = tiering
        self._engine = engine  # the machine's engine (wasm, or the interpreter as reference)
        self._cold = cold  # what runs one block of cold code (the interpreter)
        self._compiles = engine is not cold
        self._stats = stats
        self._cpu = cpu  # what the syscall handler is given (the Machine)
        self._insns_retired = insns_retired
        self.fallback_enabled = fallback
        self._unicorn: Any = None  # runtime.unicorn_cpu.UnicornCPU, made when first needed (imports Unicorn)
        self._tier: Any = None  # runtime.unicorn_tier.UnicornTier when cold code runs in Unicorn
        self._use_unicorn_tier = unicorn_tier and self._compiles
        self._region_cache = region_cache if self._compiles else None
        #: Whether the current run has no instruction budget (only then may cold code run in Unicorn).
        self.unlimited = False
        #: Called as ``handler(cpu)`` on a syscall exit (rip already past the syscall); the run then continues.
        self.syscall_handler: Callable[[Any], None] | None = None
        #: Hook points (runtime/hooks.py ``Hooks``), when the machine has hooks: arrivals at hooked pcs,
        #: memory hooks' accesses and instruction hooks go there.
        self.hooks: Any = None

    def handle(self, code: Exit, pc: int) -> Outcome:
        match code:
            case Exit.CONTINUE:
                return pc
            case Exit.STOP:
                return StopReason("until", pc, message=f"stopped at {pc:#x}")
            case Exit.MISS:
                return self.on_miss(pc)
            case Exit.ICOUNT:
                return self.on_icount(pc)
            case Exit.FALLBACK:
                return self.on_fallback(pc)
            case Exit.FAULT:
                return self.on_fault(pc)
            case Exit.SYSCALL:
                return self.on_syscall(pc)
            case Exit.HLT:
                return StopReason("hlt", pc, message=f"hlt at {pc:#x}")
            case Exit.INT:
                return self.on_software_interrupt(pc)
            case Exit.TRAP:
                vector = self._rt.state_read("fault_kind")
                return StopReason("interrupt", pc, vector=vector, message=f"interrupt {vector:#x} before {pc:#x}")
            case Exit.CPUID:
                if self.hooks is not None:
                    return self.hooks.on_insn_exit("cpuid", pc, self, self.do_cpuid)
                self.do_cpuid()
                return pc
            case Exit.RDTSC:
                if self.hooks is not None:
                    return self.hooks.on_insn_exit("rdtsc", pc, self, self.do_rdtsc)
                self.do_rdtsc()
                return pc
            case Exit.HOOK:
                return self.hooks.arrive(pc, self, Arrival.CONTINUATION)
        raise TranslationError(f"unknown exit code {code} at rip {pc:#x}")

    def _unicorn_cpu(self) -> Any:
        if self._unicorn is None:
            from tcg2wasm.runtime.unicorn_cpu import UnicornCPU  # imports Unicorn: only when needed

            self._unicorn = UnicornCPU(self._rt, self._regs, self._memory, self._stats, self._code)
        return self._unicorn

    def _unicorn_tier(self) -> Any:
        if self._tier is None:
            from tcg2wasm.runtime.background import BackgroundCompiler
            from tcg2wasm.runtime.unicorn_tier import UnicornTier

            background = None
            if os.environ.get(BACKGROUND_ENV, "1") != "0":
                background = BackgroundCompiler(self._rt.engine, self._memory.fetch, self._tiering.may_join_region,
                                                lambda: self._translator.stop_pcs, self._translator.max_insns)
            if background is not None:
                background.log = self._translator.log
            self._tier = UnicornTier(self._unicorn_cpu(), self._tiering, self._code, self.install_region,
                                     background, self.install_finished, self.install_looping_region)
            if self._region_cache is not None:  # Unicorn stops where an earlier run had compiled code
                self._unicorn_cpu().stop_at_candidates(self._region_cache.entries())
        return self._tier

    def install_finished(self, job: FinishedRegion) -> None:
        """Install a region the background compiler made, if the guest bytes are still the ones it read."""
        if job.module is None or any(self._read_code(pc, size) != raw
                                     for (pc, size), raw in zip(job.extents, job.code, strict=True)):
            return
        for pc, size in job.extents:
            self._memory.mark_code(pc, pc + size)
        self._code.install(job.entry, job.module, job.extents)
        self._stats.regions_translated += 1
        self._stats.background_seconds += job.seconds
        if self._region_cache is not None:
            self._region_cache.store(job.entry, self._translator.stop_pcs, list(job.extents), list(job.code),
                                     bytes(job.module.serialize()))

    # -- misses: tiering and installing ------------------------------------------------------
    def on_miss(self, pc: int) -> Outcome:
        if self.hooks is not None and self.hooks.intercepts(pc):
            return self.hooks.arrive(pc, self)
        region = self._code.region_at(pc) or self._install_cached(pc)
        if region is not None:
            self._code.link(pc, region)
            return pc
        if self._use_unicorn_tier and self.unlimited and not self._unicorn_cpu().must_not_run(pc):
            return self._unicorn_miss(pc)
        try:
            entry_tb = self._translator.lifted(pc)
        except GuestFault as f:
            return self.fault_stop(pc, f.kind, f.addr)
        if not self._compiles:
            self._translator.optimized(pc)
            return pc
        if entry_tb.n_insns == 0 and entry_tb.fallback_insns:
            return self.on_fallback(pc)  # no module for a lone fallback instruction
        if not self._tiering.compile_now(pc):
            self._stats.blocks_interpreted += 1
            return self.handle(*self._cold.run_block(entry_tb))
        self._code.link(pc, self.install_region(pc))
        return pc

    def _unicorn_miss(self, pc: int) -> Outcome:
        """Cold code runs in Unicorn; a hot pc is profiled there, then compiled (see runtime/unicorn_tier.py)."""
        tier = self._unicorn_tier()
        self._unicorn_cpu().not_compiled(pc)  # a cached entry whose bytes differ now, if it was one
        result = tier.on_miss(pc)
        if result is None:
            region = self._code.region_at(pc)
            assert region is not None
            self._code.link(pc, region)
            return pc
        return self._unicorn_outcome(*result)

    def _unicorn_outcome(self, code: Exit, pc: int, outcome: Any) -> Outcome:
        if code == Exit.TRAP:
            return StopReason("interrupt", pc, vector=outcome.vector,
                              message=f"interrupt {outcome.vector:#x} before {pc:#x}")
        return self.handle(code, pc)

    def _install_cached(self, entry: int) -> InstalledRegion | None:
        """The region at ``entry`` from the persistent cache, if it has one for the bytes there now.

        Taken at the first miss, whatever the tiering says: it was hot in an earlier run, and
        installing it translates nothing.
        """
        cache = self._region_cache
        if cache is None or not cache.has_entry(entry):
            return None
        cached = cache.lookup(entry, self._translator.stop_pcs, self._read_code)
        if cached is None:
            return None
        module = self._rt.deserialize_module(cached.module)
        if module is None:
            cache.forget(cached)
            return None
        for pc, size in cached.extents:
            self._memory.mark_code(pc, pc + size)
        self._stats.regions_from_cache += 1
        log = self._translator.log
        if log is not None and log.wants("out_asm"):
            log.compiled(entry, ";; from the persistent translation cache (TCG2WASM_CACHE=0 translates it)")
        return self._code.install(entry, module, cached.extents)

    def install_region(self, entry: int) -> InstalledRegion:
        """Install the region at ``entry``: from the persistent cache when it has these bytes, else translated."""
        cached = self._install_cached(entry)
        if cached is not None:
            return cached
        return self._compile_and_install(self._translator.region(entry, self._tiering.may_join_region))

    def install_looping_region(self, entry: int) -> bool:
        """Install the region at ``entry`` only if it has a loop (see ``UnicornTier``); whether it did."""
        if self._install_cached(entry) is not None:
            return True
        region = self._translator.region(entry, self._tiering.may_join_region)
        if not region.back_edges(through_calls=True):
            return False
        self._compile_and_install(region)
        return True

    def _compile_and_install(self, region: Region) -> InstalledRegion:
        entry = region.entry
        stops = self._translator.stop_pcs
        cache = self._region_cache
        extents = [(pc, region.blocks[pc].size) for pc in region.reachable()]
        wasm = self._translator.compile(region)
        t0 = time.perf_counter()
        module = self._rt.compile_module(wasm)
        self._stats.translate_seconds += time.perf_counter() - t0
        installed = self._code.install(entry, module, extents)
        self._stats.regions_translated += 1
        if cache is not None:
            code = [self._read_code(pc, size) or b"" for pc, size in extents]
            cache.store(entry, stops, extents, code, bytes(module.serialize()))
        return installed

    def _read_code(self, pc: int, size: int) -> bytes | None:
        try:
            return self._memory.fetch(pc, size)
        except GuestFault:
            return None

    # -- the instruction budget ---------------------------------------------------------------
    def budget_left(self) -> int:
        return self._rt.state_read("icount_left")

    def _count_stop(self, pc: int) -> StopReason:
        return StopReason("count", pc, message=f"instruction count reached at {pc:#x}")

    def on_icount(self, pc: int) -> Outcome:
        """The budget ends inside the next TB: run just the instructions left, then stop at the count."""
        left = self.budget_left()
        if left == 0:
            return self._count_stop(pc)
        try:
            if not self._compiles or self._tiering.interprets_cold_code:
                code, next_pc = self._cold.run_block(self._translator.lifted(pc), max_insns=left)
            else:
                code, next_pc = self._engine.run_block(self._translator.translate(pc, max_insns=left))
        except GuestFault as f:
            return self.fault_stop(pc, f.kind, f.addr)
        if code == Exit.CONTINUE and self.hooks is not None:
            return self.hooks.after_step(pc, next_pc, self, cut=True)
        return self.handle(code, next_pc)

    # -- faults ----------------------------------------------------------------------------------
    def on_fault(self, pc: int) -> Outcome:
        kind = Excp(self._rt.state_read("fault_kind"))
        if kind == Excp.NONE:
            return self._restart_code_write(pc)
        if kind == Excp.WATCH:
            return self.hooks.on_watch(pc, self)
        if self.budget_left() == 0:
            return self._count_stop(pc)
        return self.fault_stop(pc, kind, self._rt.state_read("fault_addr"))

    def _restart_code_write(self, pc: int) -> Outcome:
        """A store hit a page holding translated code: drop those translations and redo the instruction.

        The instruction runs once in the IR interpreter with code writes let through (its store
        invalidates the page); the next dispatch then retranslates from the new bytes.
        """
        self._stats.code_write_restarts += 1
        if self.budget_left() == 0:
            return self._count_stop(pc)
        try:
            tb = self._translator.translate(pc, max_insns=1)
        except GuestFault as f:
            return self.fault_stop(pc, f.kind, f.addr)
        self._memory.code_write_passthrough = True
        try:
            result = self._cold.run_block(tb)
        finally:
            self._memory.code_write_passthrough = False
        return self._after_host_step(pc, *result)

    def _after_host_step(self, pc: int, code: Exit, next_pc: int) -> Outcome:
        """The host ran the instruction at ``pc``; with hooks, arriving at ``next_pc`` may run some."""
        if code == Exit.CONTINUE and self.hooks is not None:
            return self.hooks.after_step(pc, next_pc, self)
        return self.handle(code, next_pc)

    def fault_stop(self, pc: int, kind: Excp | str, addr: int | None) -> StopReason:
        return fault_stop(pc, kind, addr, self.describe_insn(pc))

    def describe_insn(self, pc: int) -> str:
        insn = self._translator.insn_at(pc)
        if insn is not None:
            return f"{insn.raw.hex(' ')}: {insn.asm}"
        try:
            raw = self._memory.fetch(pc, 15)
        except GuestFault:
            return "no executable bytes"
        return describe_bytes(raw, pc)

    # -- the host's share of guest instructions --------------------------------------------------
    def on_fallback(self, pc: int) -> Outcome:
        """Run the instruction at ``pc`` in Unicorn over the same pages (counted in ``fallback_insns``)."""
        if self.budget_left() == 0:
            return self._count_stop(pc)
        if self.hooks is not None:
            handled = self.hooks.on_fallback(pc, self)
            if handled is not None:
                return handled
        if not self.fallback_enabled:
            return self.fault_stop(pc, "UNSUPPORTED", None)
        if self._privileged(pc):
            return self.fault_stop(pc, Excp.GP, None)
        code, next_pc, outcome = self._unicorn_cpu().step(pc)
        if code == Exit.TRAP:
            return StopReason("interrupt", pc, vector=outcome.vector,
                              message=f"interrupt {outcome.vector:#x} at {pc:#x} ({self.describe_insn(pc)})")
        if code == Exit.FAULT:
            return self.on_fault(pc)
        self._rt.state_write("icount_left", self.budget_left() - 1)  # the instruction ran
        self._stats.fallback_insns += 1
        return self._after_host_step(pc, code, next_pc)

    def _privileged(self, pc: int) -> bool:
        """Whether the instruction at ``pc`` raises #GP in user mode (CPL 3, IOPL 0): CPL 0 only (mov cr, lgdt,
        lldt, wrmsr...) or I/O-privilege sensitive (in, out, cli, sti). Unicorn runs at CPL 0 and executes
        them (found by ``tcg2wasm fuzz blobs``: lldt r13w ran as a nop); hlt stays the documented hlt stop."""
        import iced_x86  # (here: a run that lifts nothing imports no iced-x86)

        try:
            ins = iced_x86.Decoder(64, self._memory.fetch(pc, 15), ip=pc).decode()
        except GuestFault:
            return False
        if ins.is_invalid or ins.mnemonic == iced_x86.Mnemonic.HLT:
            return False
        mnemonics = iced_x86.Mnemonic
        return not ins.op_code().cpl3 or ins.mnemonic in {getattr(mnemonics, name) for name in _IOPL_SENSITIVE}

    def on_syscall(self, pc: int) -> Outcome:
        if self.syscall_handler is None:
            return StopReason("syscall", pc, message=f"syscall before {pc:#x}")
        self.syscall_handler(self._cpu)
        return self._rt.state_read("rip")  # the handler may have moved it (sigreturn, exec...)

    def on_software_interrupt(self, pc: int) -> StopReason:
        """int3 / int n stop at the instruction; like Unicorn (a trap), rip moves past it."""
        import iced_x86

        ins = iced_x86.Decoder(64, self._memory.fetch(pc, 15), ip=pc).decode()
        vector = {iced_x86.Mnemonic.INT3: 3, iced_x86.Mnemonic.INT1: 1, iced_x86.Mnemonic.INTO: 4}.get(
            ins.mnemonic, ins.immediate(0) if ins.op_count else 0)
        self._rt.state_write("rip", ins.next_ip)
        asm = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL).format(ins)
        return StopReason("interrupt", ins.next_ip, vector=vector, message=f"interrupt {vector:#x} at {pc:#x} ({asm})")

    def do_cpuid(self) -> None:
        leaf = self._rt.state_read("rax") & 0xFFFF_FFFF
        subleaf = self._rt.state_read("rcx") & 0xFFFF_FFFF
        for name, value in zip(("rax", "rbx", "rcx", "rdx"), cpuid(leaf, subleaf), strict=True):
            self._rt.state_write(name, value)

    def do_rdtsc(self) -> None:
        """A deterministic time-stamp counter: one tick per retired guest instruction."""
        tsc = _TSC_BASE + self._insns_retired()
        self._rt.state_write("rax", tsc & 0xFFFF_FFFF)
        self._rt.state_write("rdx", (tsc >> 32) & 0xFFFF_FFFF)


def describe_bytes(raw: bytes, pc: int) -> str:
    """The first instruction of ``raw`` (at ``pc``) as "bytes: asm", or the bytes and "undecodable"."""
    import iced_x86

    ins = iced_x86.Decoder(64, raw, ip=pc).decode()
    if ins.is_invalid:
        return f"{raw.hex(' ')}: undecodable"
    return f"{raw[:ins.len].hex(' ')}: {iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL).format(ins)}"
