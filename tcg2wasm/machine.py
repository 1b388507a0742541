"""The public API: a guest x86-64 machine that runs code translated to WebAssembly.

``Machine`` is a facade over the runtime's parts (``tcg2wasm.runtime``): guest
memory, the register file over the state block, the translator, the code cache,
the tiering policy, an engine and the exit handler. ``run`` enters the engine
at a pc; the engine returns when it needs the host (a jump-cache miss, an
exhausted budget, an instruction the lifter lacks, cpuid/rdtsc, a syscall, a
fault or the stop address), and the exit handler either gives the pc to enter
next or the reason to stop. ``engine="interp"`` runs the same loop with the IR
interpreter in place of wasm: the reference backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tcg2wasm.cpu_state import MASK64
from tcg2wasm.errors import GuestMemoryError, RegisterError, TranslationError
from tcg2wasm.runtime.code_cache import CodeCache
from tcg2wasm.runtime.engines import Engine, InterpEngine, WasmEngine
from tcg2wasm.runtime.exits import ExitHandler
from tcg2wasm.runtime.hooks import HookHost, Hooks
from tcg2wasm.runtime.host_helpers import HostHelpers
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.region_cache import RegionCache
from tcg2wasm.runtime.registers import REGISTERS, SUBREGISTERS, RegisterFile
from tcg2wasm.runtime.stops import NO_STOP, Stats, StopReason, no_stop_for
from tcg2wasm.runtime.tiering import HOT_THRESHOLD, Tiering
from tcg2wasm.runtime.translation_log import TranslationLog
from tcg2wasm.runtime.translator import MAX_TB_INSNS, Translator
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["ENGINES", "HOT_THRESHOLD", "MAX_TB_INSNS", "REGISTERS", "SUBREGISTERS", "GuestMemoryError", "Machine",
           "RegisterError", "Stats", "StopReason", "TranslationError"]

ENGINES = ("wasm", "interp")
COLD_TIERS = ("interp", "unicorn")
UNLIMITED = 1 << 62  # the instruction budget of a run without count


class Machine:
    """A guest x86-64 CPU with paged memory, running translated code (see the module docstring)."""

    def __init__(self, *, engine: str = "wasm", fallback: bool = True, hot_threshold: int = HOT_THRESHOLD,
                 cold_tier: str = "interp", translation_cache: bool = False) -> None:
        """``hot_threshold``: misses at a pc before it gets a compiled region (1 = compile at once).

        ``cold_tier``: what runs code that is not compiled yet on the wasm engine: ``"interp"``, the IR
        interpreter (exact instruction counts, deterministic), or ``"unicorn"``, Unicorn slices over the
        same pages (much faster on programs with a lot of cold code; runs with a ``count`` still use
        the interpreter, and what Unicorn runs is not in ``stats.guest_insns``; runtime/unicorn_tier.py).

        ``translation_cache``: keep compiled regions on disk and reuse them when the same guest
        code runs again, in this process or a later one (runtime/region_cache.py).
        """
        if engine not in ENGINES:
            raise ValueError(f"Machine: engine must be one of {ENGINES}, got {engine!r}")
        if cold_tier not in COLD_TIERS:
            raise ValueError(f"Machine: cold_tier must be one of {COLD_TIERS}, got {cold_tier!r}")
        self.engine = engine
        self.stats = Stats()
        self._rt = WasmRuntime()
        self.memory = GuestMemory(self._rt.linear)
        self._helpers = HostHelpers(self._rt, self.memory, self.stats)
        self._helpers.install()
        self._rt.jc_clear()
        self._regs = RegisterFile(self._rt)
        self._regs.reset()
        self._rt.state_write("stop_pc", NO_STOP)  # (runtime/stops.py: a non-canonical pc)
        self._translator = Translator(self.memory, self.stats)
        self._code = CodeCache(self._rt, self.stats)
        self._tiering = Tiering(hot_threshold)
        cold = self._cold = InterpEngine(self._rt, self._regs, self.memory, self._translator)
        main: Engine = WasmEngine(self._rt, self._translator, self.stats) if engine == "wasm" else cold
        self._engine = main
        self._exits = ExitHandler(rt=self._rt, regs=self._regs, memory=self.memory, translator=self._translator,
                                  code_cache=self._code, tiering=self._tiering, engine=main, cold=cold,
                                  stats=self.stats, cpu=self, insns_retired=self._insns_retired, fallback=fallback,
                                  unicorn_tier=cold_tier == "unicorn",
                                  region_cache=RegionCache.open_default() if translation_cache else None)
        self.memory.on_invalidate = self._invalidate_pages
        self._retired = 0  # instructions retired before the current run (rdtsc model)
        self._run_budget = 0

    # -- configuration --------------------------------------------------------------------------
    @property
    def hot_threshold(self) -> int:
        return self._tiering.hot_threshold

    @property
    def fallback(self) -> bool:
        return self._exits.fallback_enabled

    @property
    def syscall_handler(self) -> Callable[[Machine], None] | None:
        """Called as ``handler(machine)`` on a syscall exit (rip already past the syscall); run() then continues."""
        return self._exits.syscall_handler

    @syscall_handler.setter
    def syscall_handler(self, handler: Callable[[Machine], None] | None) -> None:
        self._exits.syscall_handler = handler

    def set_translation_log(self, log: TranslationLog | None) -> None:
        """Log what the translator does from now on, as QEMU's ``-d in_asm,op,op_opt,out_asm`` (or stop)."""
        self._translator.log = log

    # -- hooks ----------------------------------------------------------------------------------
    @property
    def hooks(self) -> Hooks | None:
        """The hook points (runtime/hooks.py) when a host of hooks is set, else None."""
        return self._exits.hooks

    def set_hooks(self, host: HookHost | None) -> None:
        """Send hooked pcs and accesses to memory hooks' ranges to ``host`` (``tcg2wasm.unicorn``); None: no hooks.

        With a host, TBs are shaped as Unicorn's blocks (runtime/hooks.py); every translation is dropped.
        """
        hooks = None if host is None else Hooks(
            host, rt=self._rt, regs=self._regs, memory=self.memory, translator=self._translator, cold=self._cold,
            stats=self.stats, hot_threshold=self.hot_threshold)
        self._exits.hooks = hooks
        self._translator.shape = hooks
        self.memory.watch = hooks
        self.memory.rewatch()
        self.flush_translations()

    def hooks_changed(self, changed: Callable[[int], bool]) -> None:
        """Code, block or exit ranges changed where ``changed(pc)``: drop just the translations that depend on them."""
        hooks = self._exits.hooks
        if hooks is None:
            return
        hooks.retranslate(changed, self._code.drop_containing)
        self._code.drop_blocks_where(changed)

    def flush_translations(self, begin: int = 0, end: int = 1 << 64) -> None:
        """Drop the TBs and regions of code starting in [begin, end) (all of them by default)."""
        def inside(pc: int) -> bool:
            return begin <= pc < end

        for pc in self._translator.block_pcs():
            if inside(pc):
                self._translator.drop(pc)
        self._code.drop_blocks_where(inside)
        if self._exits.hooks is not None:
            self._exits.hooks.retranslate(inside, self._code.drop_containing)

    # -- memory ---------------------------------------------------------------------------------
    def mem_map(self, addr: int, size: int, perms: str = "rwx") -> None:
        self.memory.map(addr, size, perms)

    def mem_unmap(self, addr: int, size: int) -> None:
        self.memory.unmap(addr, size)

    def mem_protect(self, addr: int, size: int, perms: str) -> None:
        self.memory.protect(addr, size, perms)

    def mem_write(self, addr: int, data: bytes) -> None:
        self.memory.write(addr, data)

    def mem_read(self, addr: int, size: int) -> bytes:
        return self.memory.read(addr, size)

    def mem_regions(self) -> list[tuple[int, int, str]]:
        return self.memory.regions()

    # -- registers ------------------------------------------------------------------------------
    def reg_read(self, name: str) -> int:
        return self._regs.read(name)

    def reg_write(self, name: str, value: int) -> None:
        self._regs.write(name, value)

    def regs(self, names: Iterable[str] = REGISTERS) -> dict[str, int]:
        """Several full registers at once (names as in ``REGISTERS``): for snapshots and checkpoints."""
        return self._regs.snapshot(names)

    # -- running --------------------------------------------------------------------------------
    def run(self, begin: int, until: int | None = None, count: int | None = None) -> StopReason:
        """Run from ``begin`` until rip == ``until``, ``count`` instructions ran, or an exit stops it."""
        _check_run_args(begin, until, count)
        self._set_stop(until)
        budget = UNLIMITED if count is None else count
        self._rt.state_write("stop_pc", no_stop_for(begin) if until is None else until)
        self._rt.state_write("icount_left", budget)
        self._run_budget = budget
        self._exits.unlimited = count is None
        pc = begin
        try:
            while True:
                self._rt.state_write("exit_pending", 0)
                code, pc = self._engine.enter(pc)
                self.stats.host_exits += 1
                outcome = self._exits.handle(code, pc)
                if isinstance(outcome, StopReason):
                    return outcome
                pc = outcome
        finally:
            used = self.insns_this_run()
            self.stats.guest_insns += used
            self._retired += used
            self._run_budget = 0

    def insns_this_run(self) -> int:
        """Guest instructions the current ``run`` has executed so far (0 outside a run)."""
        return self._run_budget - self._rt.state_read("icount_left") if self._run_budget else 0

    def _insns_retired(self) -> int:
        return self._retired + self.insns_this_run()

    def _set_stop(self, until: int | None) -> None:
        """Stop pcs are block boundaries at translation time: drop translations that run across ``until``."""
        stops = frozenset() if until is None else frozenset({until})
        for pc in self._translator.set_stop_pcs(stops):
            self._code.drop_containing(pc)
        if until is not None:
            self._code.drop_inner_stop(until)

    def seed_profile(self, pcs: Iterable[int], hot: Iterable[int] = ()) -> None:
        """Blocks known to run, e.g. the block graph Unicorn executed (``tcg2wasm.oracle.capture``).

        Regions then grow only along these blocks (and those the interpreter tier sees run),
        instead of along every statically reachable block. ``hot`` pcs are known to run often
        (a trace's block counts): they are compiled at their first miss.
        """
        self._tiering.seed(pcs, hot)

    def _invalidate_pages(self, pages: list[int]) -> None:
        """Drop every cached TB and installed region touching ``pages`` (called by GuestMemory)."""
        self.stats.invalidations += len(pages)
        for page in pages:
            self._translator.drop_pages([page])
            self._code.drop_pages([page])

    # -- introspection --------------------------------------------------------------------------
    def cached_regions(self) -> list[int]:
        """Entry pcs of the installed regions, sorted."""
        return self._code.entries()

    def cached_blocks(self) -> list[int]:
        return self._translator.block_pcs()


def _check_run_args(begin: int, until: int | None, count: int | None) -> None:
    for what, value in (("begin", begin), ("until", until), ("count", count)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"run: {what} must be a non-negative int, got {value!r}")
    if max(begin, until or 0, count or 0) > MASK64:  # (count=2**64 ran nothing and reported 2^64 instructions)
        raise ValueError("run: begin, until and count must fit in 64 bits (begin and until are guest addresses)")
