"""The public API: a guest x86-64 machine that runs code translated to WebAssembly.

``Machine.run`` sets rip, the stop address and the instruction budget in the
state block and calls the in-wasm dispatcher (``runtime/wasm_runtime.py``).
The dispatcher only returns to Python when it needs help: a jump-cache miss
(translate a region and install it), an exhausted budget, an instruction the
lifter lacks (run it in Unicorn), cpuid/rdtsc, a syscall, a fault or the stop
address. ``engine="interp"`` runs the same loop with the IR interpreter in
place of wasm: the reference backend.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tcg2wasm import abi
from tcg2wasm.errors import GuestFault, GuestMemoryError, RegisterError, TranslationError
from tcg2wasm.ir.core import N_GLOBALS, TranslationBlock
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.ir.ops import MASK64, Excp, Exit, memop_size
from tcg2wasm.runtime.cpuid import cpuid
from tcg2wasm.runtime.fallback import UnicornFallback
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

ENGINES = ("wasm", "interp")
NO_STOP = MASK64  # stop_pc meaning "no stop address"
UNLIMITED = 1 << 62  # the instruction budget of a run without count
MAX_TB_INSNS = 64
#: A pc starts a compiled region only after this many misses there; until then its TB runs in the
#: IR interpreter (~50 us a block), which is cheaper than compiling (tens of ms a region) for cold code
#: such as start-up paths. QEMU's wasm backend tiers the same way (TCI first, DESIGN.md).
HOT_THRESHOLD = 16
_MEMORY_FAULTS = frozenset({Excp.READ_UNMAPPED, Excp.WRITE_UNMAPPED, Excp.FETCH_UNMAPPED,
                            Excp.READ_PROT, Excp.WRITE_PROT, Excp.FETCH_PROT})
_FLAG_MASK = sum(1 << bit for bit in abi.FLAG_BITS.values())
_TSC_BASE = 0x1_0000_0000


def _subregisters() -> dict[str, tuple[str, int, int]]:
    """name -> (64-bit register, bit shift, width) for the 32/16/8-bit views."""
    out: dict[str, tuple[str, int, int]] = {}
    for legacy in ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di"):
        full = "r" + legacy
        out["e" + legacy] = (full, 0, 32)
        out[legacy] = (full, 0, 16)
    for letter in "abcd":
        out[letter + "l"] = ("r" + letter + "x", 0, 8)
        out[letter + "h"] = ("r" + letter + "x", 8, 8)
    for legacy in ("sp", "bp", "si", "di"):
        out[legacy + "l"] = ("r" + legacy, 0, 8)
    for n in range(8, 16):
        out[f"r{n}d"] = (f"r{n}", 0, 32)
        out[f"r{n}w"] = (f"r{n}", 0, 16)
        out[f"r{n}b"] = (f"r{n}", 0, 8)
    out["eip"] = ("rip", 0, 32)
    out["eflags"] = ("rflags", 0, 32)
    return out


SUBREGISTERS = _subregisters()
REGISTERS: tuple[str, ...] = abi.GPR_NAMES + ("rip", "rflags") + abi.SEG_BASE_NAMES + abi.XMM_NAMES + ("mxcsr", "fpcw")
_XMM = frozenset(abi.XMM_NAMES)
_WIDTHS = {name: 128 for name in abi.XMM_NAMES} | {"fpcw": 16}  # full registers that are not 64 bits wide
_XMM_LO = {name: abi.GLOBAL_INDEX[f"{name}_lo"] for name in abi.XMM_NAMES}  # the _hi half follows it
_FLAG_INDEX_BITS = tuple((abi.GLOBAL_INDEX[flag], bit) for flag, bit in abi.FLAG_BITS.items())


@dataclass
class StopReason:
    """Why ``Machine.run`` returned."""

    kind: str  # "until" | "count" | "fault" | "syscall" | "hlt" | "interrupt"
    pc: int  # rip when stopped (the faulting instruction for faults)
    fault: str | None = None  # Excp name for faults, e.g. "READ_UNMAPPED", "DIVIDE"; "UNSUPPORTED"
    address: int | None = None  # faulting data address of memory faults
    message: str = ""
    vector: int | None = None  # interrupt number for kind == "interrupt"


def _weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A host helper that does not keep its Machine alive.

    wasmtime keeps the Python callables of host functions alive as long as
    the store, and the store belongs to the Machine: a strong reference from
    the helper would make a cycle that the garbage collector cannot see
    through, and every Machine (with its 4 GiB reservation) would leak.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: int) -> Any:
        return ref()(*args)  # type: ignore[misc]

    return call


@dataclass
class Stats:
    """Counters over the machine's lifetime."""

    blocks_translated: int = 0
    regions_translated: int = 0
    modules: int = 0  # wasm modules instantiated (regions and one-off blocks)
    guest_insns: int = 0  # exact: budget consumed, fallback instructions included
    fallback_insns: int = 0
    translate_seconds: float = 0.0  # lifting, optimizing, compiling and instantiating
    host_exits: int = 0  # returns from translated code / the dispatcher to Python
    invalidations: int = 0  # pages whose translations were dropped
    code_write_restarts: int = 0  # guest stores into translated code, re-executed after invalidation
    blocks_interpreted: int = 0  # cold blocks run by the IR interpreter before their pc got hot

    def as_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)


@dataclass
class InstalledRegion:
    entry: int
    slot: int
    pages: frozenset[int]
    block_pcs: frozenset[int]


def _pages_of(tb: TranslationBlock) -> range:
    last = max(tb.pc, tb.end - 1)
    return range(tb.pc >> abi.PAGE_BITS, (last >> abi.PAGE_BITS) + 1)


def _hex_bytes(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw)


class Machine:
    """A guest x86-64 CPU with paged memory, running translated code (see module docstring)."""

    def __init__(self, *, engine: str = "wasm", fallback: bool = True, hot_threshold: int = HOT_THRESHOLD) -> None:
        """``hot_threshold``: misses at a pc before it gets a compiled region (1 = compile at once)."""
        if engine not in ENGINES:
            raise ValueError(f"Machine: engine must be one of {ENGINES}, got {engine!r}")
        self.engine = engine
        self.fallback = fallback
        self.max_insns = MAX_TB_INSNS
        self.stats = Stats()
        #: Called as ``handler(machine)`` on a syscall exit (rip already past the syscall); run() then continues.
        self.syscall_handler: Callable[[Machine], None] | None = None
        self._rt = WasmRuntime()
        self.memory = GuestMemory(self._rt.linear)
        self.memory.on_invalidate = self._invalidate_pages
        self.memory.on_layout_change = self._layout_changed
        self._rt.define_host_imports({name: _weak_method(fn) for name, fn in (
            ("ld_slow", self._ld_slow), ("st_slow", self._st_slow), ("div128", self._div128))})
        self._rt.jc_clear()
        for name in abi.STATE_FIELDS:
            self._rt.state_write(name, 0)
        self._rt.state_write("rflags_rest", abi.RFLAGS_FIXED)
        self._rt.state_write("mxcsr", abi.MXCSR_DEFAULT)
        self._rt.state_write("fpcw", abi.FPCW_DEFAULT)
        self._rt.state_write("stop_pc", NO_STOP)
        self._tbs: dict[int, TranslationBlock] = {}  # as lifted
        self._opt_tbs: dict[int, TranslationBlock] = {}  # optimized, made on demand
        self._block_region: dict[int, InstalledRegion] = {}  # any block pc -> a region containing it
        self._misses: dict[int, int] = {}  # wasm engine: misses per pc, for tiering
        self._seen: set[int] = set()  # TB pcs the interpreter tier ran: the profile regions grow along
        self._seeded = False  # seed_profile() was given a captured block graph
        self._hot: set[int] = set()  # pcs seed_profile() named hot: compiled at their first miss
        # The IR globals are the first fields of the state block, in order (abi.STATE_FIELDS).
        self._globals_view = self._rt.linear.u64_array(abi.STATE_BASE, N_GLOBALS)
        self.hot_threshold = max(1, hot_threshold)
        self._insn_tb: dict[int, TranslationBlock] = {}  # guest insn pc -> a cached TB holding it
        self._regions: dict[int, InstalledRegion] = {}
        self._page_tbs: dict[int, set[int]] = {}
        self._page_regions: dict[int, set[int]] = {}
        self._stop_pcs: frozenset[int] = frozenset()
        self._unicorn: UnicornFallback | None = None
        self._retired = 0  # instructions retired before the current run (rdtsc model)
        self._run_budget = 0

    # -- memory API -------------------------------------------------------------
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

    # -- registers ----------------------------------------------------------------
    def reg_read(self, name: str) -> int:
        key = self._reg_name(name)
        if key in SUBREGISTERS:
            full, shift, width = SUBREGISTERS[key]
            return (self._read_full(full) >> shift) & ((1 << width) - 1)
        return self._read_full(key)

    def reg_write(self, name: str, value: int) -> None:
        key = self._reg_name(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RegisterError(f"reg_write({name!r}): value must be an int, got {value!r}")
        full, shift, width = SUBREGISTERS.get(key, (key, 0, _WIDTHS.get(key, 64)))
        if not -(1 << (width - 1)) <= value < 1 << width:
            raise RegisterError(f"reg_write({name!r}): {value:#x} does not fit {width} bits")
        field = ((1 << width) - 1) << shift
        old = self._read_full(full)
        self._write_full(full, (old & ~field) | ((value << shift) & field))

    @staticmethod
    def _reg_name(name: str) -> str:
        key = name.lower() if isinstance(name, str) else name
        if key not in REGISTERS and key not in SUBREGISTERS:
            raise RegisterError(f"unknown register {name!r}; known: {', '.join(REGISTERS)} and their sub-registers")
        return key

    def regs(self, names: Iterable[str] = REGISTERS) -> dict[str, int]:
        """Several full registers at once (names as in ``REGISTERS``): for snapshots and checkpoints."""
        return {name: self._read_full(name) for name in names}

    def _read_full(self, name: str) -> int:
        index = abi.GLOBAL_INDEX.get(name)
        if index is not None:
            return self._globals_view[index]
        if name in _XMM:
            return self._globals_view[_XMM_LO[name]] | self._globals_view[_XMM_LO[name] + 1] << 64
        if name == "rflags":
            view = self._globals_view
            value = self._rt.state_read("rflags_rest") | abi.RFLAGS_FIXED
            for index, bit in _FLAG_INDEX_BITS:
                value |= (view[index] & 1) << bit
            return value
        return self._rt.state_read(name)

    def _write_full(self, name: str, value: int) -> None:
        if name in _XMM:
            self._rt.state_write(f"{name}_lo", value & MASK64)
            self._rt.state_write(f"{name}_hi", (value >> 64) & MASK64)
            return
        value &= MASK64
        if name == "rflags":
            for flag, bit in abi.FLAG_BITS.items():
                self._rt.state_write(flag, (value >> bit) & 1)
            self._rt.state_write("rflags_rest", (value & ~_FLAG_MASK) | abi.RFLAGS_FIXED)
        else:
            self._rt.state_write(name, value)

    def _regs_snapshot(self) -> dict[str, int]:
        return self.regs()

    # -- running ------------------------------------------------------------------
    def run(self, begin: int, until: int | None = None, count: int | None = None) -> StopReason:
        """Run from ``begin`` until rip == ``until``, ``count`` instructions ran, or an exit stops it."""
        for what, value in (("begin", begin), ("until", until), ("count", count)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"run: {what} must be a non-negative int, got {value!r}")
        if begin > MASK64 or (until is not None and until > MASK64):
            raise ValueError("run: begin and until must be 64-bit guest addresses")
        self._set_stop(until)
        budget = UNLIMITED if count is None else count
        self._rt.state_write("rip", begin)
        self._rt.state_write("stop_pc", NO_STOP if until is None else until)
        self._rt.state_write("icount_left", budget)
        self._run_budget = budget
        try:
            return self._loop()
        finally:
            used = budget - self._rt.state_read("icount_left")
            self.stats.guest_insns += used
            self._retired += used
            self._run_budget = 0

    def _executed_this_run(self) -> int:
        return self._run_budget - self._rt.state_read("icount_left")

    def _loop(self) -> StopReason:
        while True:
            self._rt.state_write("exit_pending", 0)
            code = self._enter()
            self.stats.host_exits += 1
            stop = self._handle_exit(code)
            if stop is not None:
                return stop

    def _enter(self) -> int:
        if self.engine == "wasm":
            try:
                return self._rt.dispatch()
            except Exception as e:  # a trap in translated code or an exception raised by a host helper
                raise TranslationError(f"translated code trapped near rip {self._rt.state_read('rip'):#x}: {e}") from e
        return self._interp_dispatch()

    def _handle_exit(self, code: int) -> StopReason | None:
        rip = self._rt.state_read("rip")
        match Exit(code):
            case Exit.CONTINUE:
                return None
            case Exit.STOP:
                return StopReason("until", rip, message=f"stopped at {rip:#x}")
            case Exit.MISS:
                return self._on_miss(rip)
            case Exit.ICOUNT:
                return self._on_icount(rip)
            case Exit.FALLBACK:
                return self._on_fallback(rip)
            case Exit.FAULT:
                return self._on_fault(rip)
            case Exit.SYSCALL:
                if self.syscall_handler is None:
                    return StopReason("syscall", rip, message=f"syscall before {rip:#x}")
                self.syscall_handler(self)
                return None
            case Exit.HLT:
                return StopReason("hlt", rip, message=f"hlt at {rip:#x}")
            case Exit.INT:
                return self._on_software_interrupt(rip)
            case Exit.CPUID:
                self._do_cpuid()
                return None
            case Exit.RDTSC:
                self._do_rdtsc()
                return None
        raise TranslationError(f"unknown exit code {code} at rip {rip:#x}")

    def _on_software_interrupt(self, rip: int) -> StopReason:
        """int3 / int n stop at the instruction; like Unicorn (a trap), rip moves past it."""
        import iced_x86

        ins = iced_x86.Decoder(64, self.memory.fetch(rip, 15), ip=rip).decode()
        vector = {iced_x86.Mnemonic.INT3: 3, iced_x86.Mnemonic.INT1: 1, iced_x86.Mnemonic.INTO: 4}.get(
            ins.mnemonic, ins.immediate(0) if ins.op_count else 0)
        self._rt.state_write("rip", ins.next_ip)
        asm = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL).format(ins)
        return StopReason("interrupt", ins.next_ip, vector=vector, message=f"interrupt {vector:#x} at {rip:#x} ({asm})")

    # -- translation --------------------------------------------------------------
    def _set_stop(self, until: int | None) -> None:
        """Stop pcs are block boundaries at translation time: drop translations that run across ``until``."""
        stops = frozenset() if until is None else frozenset({until})
        if stops == self._stop_pcs:
            return
        self._stop_pcs = stops
        if until is None:
            return
        for pc, tb in list(self._tbs.items()):
            if tb.pc < until < tb.end:
                self._drop_tb(pc)
        for entry, region in list(self._regions.items()):
            if until in region.block_pcs and until != entry:
                self._drop_region(entry)

    def _translate_tb(self, pc: int, *, max_insns: int | None = None) -> TranslationBlock:
        """Lift the TB at ``pc``; raises GuestFault when pc cannot be fetched."""
        from tcg2wasm.frontend.x86_64.translate import translate_block

        t0 = time.perf_counter()
        tb = translate_block(self.memory.fetch, pc, max_insns=max_insns or self.max_insns, stop_pcs=self._stop_pcs)
        self.stats.translate_seconds += time.perf_counter() - t0
        self.stats.blocks_translated += 1
        return tb

    def _cached_tb(self, pc: int) -> TranslationBlock:
        tb = self._tbs.get(pc)
        if tb is None:
            tb = self._translate_tb(pc)
            self._tbs[pc] = tb
            for page in _pages_of(tb):
                self._page_tbs.setdefault(page, set()).add(pc)
            for insn in tb.insns:
                self._insn_tb[insn.pc] = tb
            self.memory.mark_code(tb.pc, tb.end)
        return tb

    def seed_profile(self, pcs: Iterable[int], hot: Iterable[int] = ()) -> None:
        """Blocks known to run, e.g. the block graph Unicorn executed (``tcg2wasm.oracle.capture_blocks``).

        Regions then grow only along these blocks (and those the interpreter tier sees run),
        instead of along every statically reachable block. ``hot`` pcs are known to run often
        (a trace's block counts): they are compiled at their first miss, skipping the
        interpreter tier, and their regions are built whole at once.
        """
        hot = set(hot)
        self._seen.update(pcs)
        self._seen.update(hot)
        self._hot.update(hot)
        self._seeded = True

    def _optimized_tb(self, pc: int) -> TranslationBlock:
        """The optimized TB at ``pc``: what regions compile and the interp engine runs.

        Optimizing costs several times what lifting does, so the cold tier runs TBs as lifted
        and only code that gets compiled (or the reference engine) pays for it.
        """
        tb = self._opt_tbs.get(pc)
        if tb is None:
            lifted = self._cached_tb(pc)
            t0 = time.perf_counter()
            tb = self._opt_tbs[pc] = _optimize(lifted)
            self.stats.translate_seconds += time.perf_counter() - t0
        return tb

    def _region_member(self, pc: int) -> TranslationBlock | None:
        """What region discovery may add: None for stop pcs and unfetchable code (they stay exits).

        With tiering, only blocks the interpreter tier has seen run join a region (a profile, as
        in trace-based JITs): code that never ran is not worth compiling, and stays an exit.
        """
        if pc in self._stop_pcs or ((self.hot_threshold > 1 or self._seeded) and pc not in self._seen):
            return None
        try:
            return self._optimized_tb(pc)
        except GuestFault:
            return None

    def _on_miss(self, rip: int) -> StopReason | None:
        try:
            entry_tb = self._cached_tb(rip)
        except GuestFault as f:
            return self._fault_stop(rip, f.kind, f.addr)
        if self.engine == "interp":
            self._optimized_tb(rip)
            return None
        if entry_tb.n_insns == 0 and entry_tb.fallback_insns:
            return self._on_fallback(rip)  # no module for a lone fallback instruction
        region = self._regions.get(rip) or self._block_region.get(rip)
        if region is None:
            misses = self._misses[rip] = self._misses.get(rip, 0) + 1
            if misses < self.hot_threshold and rip not in self._hot:
                self.stats.blocks_interpreted += 1
                self._seen.add(rip)
                return self._handle_exit(self._interp_run_tb(entry_tb))
        if region is None:
            region = self._install_region(rip)
        self._rt.jc_set(rip, region.slot)
        return None

    def _install_region(self, entry: int) -> InstalledRegion:
        from tcg2wasm.backend.wasm import compile_region
        from tcg2wasm.cfg.region import discover_region

        region = discover_region(self._region_member, entry)
        t0 = time.perf_counter()
        compiled = compile_region(region)
        func = self._rt.instantiate_region(compiled.wasm)
        self.stats.translate_seconds += time.perf_counter() - t0
        self.stats.regions_translated += 1
        self.stats.modules += 1
        pages = frozenset(p for tb in region.blocks.values() for p in _pages_of(tb))
        installed = InstalledRegion(entry, self._rt.allocate_slot(func), pages, frozenset(region.blocks))
        self._regions[entry] = installed
        for pc in region.blocks:  # every block is an entry of the region function (entry dispatch)
            self._block_region.setdefault(pc, installed)
        for page in pages:
            self._page_regions.setdefault(page, set()).add(entry)
        return installed

    def _run_oneoff(self, tb: TranslationBlock) -> int:
        """Run an uncached TB once; returns its exit code.

        It runs once, so with tiering on it is interpreted (compiling it would cost ~10 ms);
        with ``hot_threshold=1`` it is compiled, so that count stops exercise the wasm path too.
        """
        if self.engine == "interp" or self.hot_threshold > 1:
            return self._interp_run_tb(tb)
        from tcg2wasm.backend.wasm import compile_region
        from tcg2wasm.cfg.region import Region

        t0 = time.perf_counter()
        func = self._rt.instantiate_region(compile_region(Region(tb.pc, {tb.pc: tb})).wasm)
        self.stats.translate_seconds += time.perf_counter() - t0
        self.stats.modules += 1
        self._rt.state_write("exit_pending", 0)
        return func(self._rt.store)

    # -- invalidation -------------------------------------------------------------
    def _invalidate_pages(self, pages: list[int]) -> None:
        """Drop every cached TB and installed region touching ``pages`` (called by GuestMemory)."""
        for page in pages:
            self.stats.invalidations += 1
            for pc in sorted(self._page_tbs.pop(page, ())):
                self._drop_tb(pc)
            for entry in sorted(self._page_regions.pop(page, ())):
                self._drop_region(entry)

    def _drop_tb(self, pc: int) -> None:
        self._opt_tbs.pop(pc, None)
        tb = self._tbs.pop(pc, None)
        if tb is None:
            return
        for insn in tb.insns:
            if self._insn_tb.get(insn.pc) is tb:
                del self._insn_tb[insn.pc]
        for entry, region in list(self._regions.items()):
            if pc in region.block_pcs:
                self._drop_region(entry)

    def _drop_region(self, entry: int) -> None:
        region = self._regions.pop(entry, None)
        if region is None:
            return
        for pc in region.block_pcs:
            if self._block_region.get(pc) is region:
                del self._block_region[pc]
            if self._rt.jc_get(pc) == (pc, region.slot):
                self._rt.jc_remove(pc)
        self._rt.free_slot(region.slot)

    def _layout_changed(self) -> None:
        if self._unicorn is not None:
            self._unicorn.layout_dirty = True

    # -- exits --------------------------------------------------------------------
    def _budget_left(self) -> int:
        return self._rt.state_read("icount_left")

    def _count_stop(self, rip: int) -> StopReason:
        return StopReason("count", rip, message=f"instruction count reached at {rip:#x}")

    def _on_icount(self, rip: int) -> StopReason | None:
        left = self._budget_left()
        if left == 0:
            return self._count_stop(rip)
        if self.engine == "interp" or self.hot_threshold > 1:  # run the first `left` insns of the lifted TB
            try:
                tb = self._cached_tb(rip)
            except GuestFault as f:
                return self._fault_stop(rip, f.kind, f.addr)
            return self._handle_exit(self._interp_run_tb(tb, max_insns=left))
        try:
            tb = self._translate_tb(rip, max_insns=left)
        except GuestFault as f:
            return self._fault_stop(rip, f.kind, f.addr)
        return self._handle_exit(self._run_oneoff(tb))

    @staticmethod
    def _unexecuted(tb: TranslationBlock, pc: int) -> int:
        """Lifted instructions of ``tb`` from the one at ``pc`` on: the budget an exit before them gives back.

        The backend gives back the same (``emit._exit_tb``) so both engines count exactly."""
        return sum(1 for insn in tb.insns if insn.lifted and insn.pc >= pc)

    def _on_fault(self, rip: int) -> StopReason | None:
        kind = Excp(self._rt.state_read("fault_kind"))
        addr = self._rt.state_read("fault_addr")
        if kind == Excp.NONE:
            return self._restart_code_write(rip)
        if self._budget_left() == 0:
            return self._count_stop(rip)
        return self._fault_stop(rip, kind, addr)

    def _restart_code_write(self, rip: int) -> StopReason | None:
        """A store hit a page holding translated code: drop those translations and redo the instruction.

        The instruction runs once in the IR interpreter with code writes let through (its store
        invalidates the page); the next dispatch then retranslates from the new bytes.
        """
        self.stats.code_write_restarts += 1
        if self._budget_left() == 0:
            return self._count_stop(rip)
        try:
            tb = self._translate_tb(rip, max_insns=1)
        except GuestFault as f:
            return self._fault_stop(rip, f.kind, f.addr)
        self.memory.code_write_passthrough = True
        try:
            code = self._interp_run_tb(tb)
        finally:
            self.memory.code_write_passthrough = False
        return self._handle_exit(code)

    def _fault_stop(self, pc: int, kind: Excp | str, addr: int | None) -> StopReason:
        name = kind.name if isinstance(kind, Excp) else kind
        address = addr if isinstance(kind, Excp) and kind in _MEMORY_FAULTS else None
        insn = self._describe_insn(pc)
        where = f" accessing {address:#x}" if address is not None else ""
        message = f"{name} at pc {pc:#x} ({insn}){where}"
        return StopReason("fault", pc, name, address, message)

    def _describe_insn(self, pc: int) -> str:
        tb = self._insn_tb.get(pc)
        for insn in tb.insns if tb is not None else ():
            if insn.pc == pc:
                return f"{_hex_bytes(insn.raw)}: {insn.asm}"
        try:
            raw = self.memory.fetch(pc, 15)
        except GuestFault:
            return "no executable bytes"
        return f"{_hex_bytes(raw)}: undecoded"

    def _on_fallback(self, rip: int) -> StopReason | None:
        if self._budget_left() == 0:
            return self._count_stop(rip)
        if not self.fallback:
            return self._fault_stop(rip, "UNSUPPORTED", None)
        if self._unicorn is None:
            self._unicorn = UnicornFallback(self.memory, lambda: self._rt.linear.base)
        result = self._unicorn.step(self._regs_snapshot())
        if result.vector is not None:
            return StopReason("interrupt", rip, vector=result.vector,
                              message=f"interrupt {result.vector:#x} at {rip:#x} ({self._describe_insn(rip)})")
        if result.regs is None:
            return self._fault_stop(rip, result.fault, result.address)
        for name, value in result.regs.items():
            self._write_full(name, value)
        self._rt.state_write("icount_left", self._budget_left() - 1)
        self.stats.fallback_insns += 1
        return None

    def _do_cpuid(self) -> None:
        leaf = self._rt.state_read("rax") & 0xFFFF_FFFF
        subleaf = self._rt.state_read("rcx") & 0xFFFF_FFFF
        for name, value in zip(("rax", "rbx", "rcx", "rdx"), cpuid(leaf, subleaf), strict=True):
            self._rt.state_write(name, value)

    def _do_rdtsc(self) -> None:
        """A deterministic time-stamp counter: one tick per retired guest instruction."""
        tsc = _TSC_BASE + self._retired + self._executed_this_run()
        self._rt.state_write("rax", tsc & 0xFFFF_FFFF)
        self._rt.state_write("rdx", (tsc >> 32) & 0xFFFF_FFFF)

    # -- host helpers imported by translated code -------------------------------------
    def _ld_slow(self, addr: int, memop: int) -> int:
        size = memop_size(memop)
        try:
            value = self.memory.load(addr, size)
        except GuestFault as f:
            self._raise_pending(f)
            return 0
        if memop & 4:
            sign = 1 << (8 * size - 1)
            value = ((value ^ sign) - sign) & MASK64
        return value

    def _st_slow(self, addr: int, value: int, memop: int) -> None:
        try:
            self.memory.store(addr, memop_size(memop), value)
        except GuestFault as f:
            self._raise_pending(f)

    def _raise_pending(self, fault: GuestFault) -> None:
        self._rt.state_write("fault_kind", int(fault.kind))
        self._rt.state_write("fault_addr", fault.addr)
        self._rt.state_write("exit_pending", 1)

    def _div128(self, nl: int, nh: int, d: int, is_signed: int) -> int:
        if is_signed:
            n = ((nh << 64) | nl) - ((nh >> 63) << 128)
            sd = d - ((d >> 63) << 64)
            q = abs(n) // abs(sd)
            q = q if (n < 0) == (sd < 0) else -q
            r = n - q * sd
        else:
            q, r = divmod((nh << 64) | nl, d)
        self._rt.state_write("scratch", r & MASK64)
        return q & MASK64

    # -- interpreter engine ---------------------------------------------------------
    def _interp_dispatch(self) -> int:
        """The dispatcher loop of the wasm module, written in Python over cached TBs.

        Globals, rip and the budget stay in Python variables while TBs chain, and go back
        to the state block when control returns to the exit handlers.
        """
        state = self._rt
        stop_pc = state.state_read("stop_pc")
        values = self._load_globals()
        pc = state.state_read("rip")
        left = state.state_read("icount_left")
        code = Exit.CONTINUE
        fault = None
        while code == Exit.CONTINUE:
            if pc == stop_pc:
                code = Exit.STOP
                break
            tb = self._opt_tbs.get(pc)
            if tb is None:
                code = Exit.MISS
                break
            if left < tb.n_insns:
                code = Exit.ICOUNT
                break
            left -= tb.n_insns
            result = run_tb(tb, values, self.memory)
            pc, code = result.pc, result.exit
            if code != Exit.CONTINUE:
                left += self._unexecuted(tb, pc)
            fault = result
        self._store_globals(values)
        state.state_write("rip", pc)
        state.state_write("icount_left", left)
        if code == Exit.FAULT and fault is not None:
            state.state_write("fault_kind", int(fault.fault_kind))
            state.state_write("fault_addr", fault.fault_addr)
        return int(code)

    def _interp_run_tb(self, tb: TranslationBlock, max_insns: int | None = None) -> int:
        """Run one TB like a region function would: budget check, globals through the state block.

        ``max_insns`` cuts a lifted TB after that many instructions (exact count stops).
        """
        state = self._rt
        left = state.state_read("icount_left")
        charge = tb.n_insns if max_insns is None else min(tb.n_insns, max_insns)
        if left < charge:
            state.state_write("rip", tb.pc)
            return Exit.ICOUNT
        values = self._load_globals()
        result = run_tb(tb, values, self.memory, max_insns)
        self._store_globals(values)
        state.state_write("rip", result.pc)
        if result.exit != Exit.CONTINUE:
            left += self._unexecuted(tb, result.pc) - (tb.n_insns - charge)
        state.state_write("icount_left", left - charge)
        if result.exit == Exit.FAULT:
            state.state_write("fault_kind", int(result.fault_kind))
            state.state_write("fault_addr", result.fault_addr)
        return int(result.exit)

    def _load_globals(self) -> list[int]:
        return self._globals_view[:]

    def _store_globals(self, values: list[int]) -> None:
        self._globals_view[:] = values[:N_GLOBALS]

    # -- introspection ----------------------------------------------------------------
    def cached_regions(self) -> list[int]:
        """Entry pcs of the installed regions, sorted."""
        return sorted(self._regions)

    def cached_blocks(self) -> list[int]:
        return sorted(self._tbs)


def _optimize(tb: TranslationBlock) -> TranslationBlock:
    try:
        from tcg2wasm.opt import optimize_tb
    except ImportError:
        return tb
    return optimize_tb(tb)


__all__ = ["Machine", "StopReason", "Stats", "GuestMemoryError", "RegisterError", "TranslationError"]
