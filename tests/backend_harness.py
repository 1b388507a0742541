"""A minimal wasmtime harness for backend tests (test-only; the real runtime is tcg2wasm/runtime).

It provides one linear memory with the state block and a soft TLB mapping a
few guest pages, host helpers written in Python, and a reference that runs the
same region through the IR interpreter on an independent copy of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from tcg2wasm.abi import (
    GUEST_BASE,
    MAX_WASM_PAGES,
    PAGE_MASK,
    PAGE_SIZE,
    REGION_EXPORT,
    STATE_OFFSET,
    STATE_SIZE,
    TLB_ADDEND,
    TLB_BASE,
    TLB_ENTRIES,
    TLB_ENTRY_SIZE,
    TLB_INVALID,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
    WASM_PAGE,
    tlb_index,
)
from tcg2wasm.backend import CompiledRegion
from tcg2wasm.cfg import Region
from tcg2wasm.errors import GuestFault
from tcg2wasm.ir.core import N_GLOBALS
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.ir.ops import MASK64, Excp, Exit, memop_size, to_signed


@dataclass
class Page:
    guest: int  # page-aligned guest address
    perms: str  # subset of "rw"
    in_tlb: bool  # pre-filled in the soft TLB (fast path) or left to the slow path
    data: bytearray


@dataclass
class Outcome:
    exit: Exit
    rip: int
    globals: list[int]
    fault_kind: int
    fault_addr: int
    icount_left: int
    memory: dict[int, bytes]


class PagedMemory:
    """Guest pages for the interpreter (GuestMemory protocol) with the harness's fault rules."""

    def __init__(self, pages: dict[int, Page]) -> None:
        self.pages = pages

    def _page(self, addr: int, want: str) -> Page:
        page = self.pages.get(addr & PAGE_MASK)
        write = want == "w"
        if page is None:
            raise GuestFault(Excp.WRITE_UNMAPPED if write else Excp.READ_UNMAPPED, addr)
        if want not in page.perms:
            raise GuestFault(Excp.WRITE_PROT if write else Excp.READ_PROT, addr)
        return page

    def check(self, addr: int, size: int, want: str) -> None:
        for i in range(size):
            self._page((addr + i) & MASK64, want)

    def load(self, addr: int, size: int) -> int:
        self.check(addr, size, "r")
        out = bytearray()
        for i in range(size):
            a = (addr + i) & MASK64
            out.append(self._page(a, "r").data[a & (PAGE_SIZE - 1)])
        return int.from_bytes(out, "little")

    def load_for_write(self, addr: int, size: int) -> int:
        self.check(addr, size, "w")
        return self.load(addr, size)

    def store(self, addr: int, size: int, value: int) -> None:
        self.check(addr, size, "w")
        for i, byte in enumerate(value.to_bytes(size, "little")):
            a = (addr + i) & MASK64
            self._page(a, "w").data[a & (PAGE_SIZE - 1)] = byte


class Harness:
    """One wasmtime store/memory; guest pages are copied into linear memory for each run."""

    def __init__(self, pages: list[tuple[int, str, bool]] | None = None) -> None:
        config = wasmtime.Config()
        config.wasm_simd = True
        config.wasm_tail_call = True
        self.engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(self.engine)
        self.pages: dict[int, Page] = {}
        self.host_of: dict[int, int] = {}
        for i, (guest, perms, in_tlb) in enumerate(pages or []):
            self.pages[guest] = Page(guest, perms, in_tlb, bytearray(PAGE_SIZE))
            self.host_of[guest] = GUEST_BASE + i * PAGE_SIZE
        n_wasm_pages = (GUEST_BASE + len(self.pages) * PAGE_SIZE) // WASM_PAGE + 1
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(n_wasm_pages, MAX_WASM_PAGES)))
        table_type = wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(0, None))
        self.table = wasmtime.Table(self.store, table_type, None)
        self.linker = wasmtime.Linker(self.engine)
        self._define_imports()
        self.helper_calls = 0

    # -- host helpers ----------------------------------------------------------------
    def _define_imports(self) -> None:
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        self.linker.define(self.store, "env", "memory", self.memory)
        self.linker.define(self.store, "env", "table", self.table)
        self.linker.define_func("env", "ld_miss", wasmtime.FuncType([i64, i32], [i64]), self._ld_slow)
        self.linker.define_func("env", "st_miss", wasmtime.FuncType([i64, i64, i32], []), self._st_slow)
        self.linker.define_func("env", "div128", wasmtime.FuncType([i64, i64, i64, i32], [i64]), self._div128)
        self.linker.define_func("env", "x87", wasmtime.FuncType([i32] + [i64] * 7, [i64]), self._x87)

    def _fault(self, err: GuestFault) -> None:
        self.write_state("fault_kind", int(err.kind))
        self.write_state("fault_addr", err.addr)
        self.write_state("exit_pending", 1)

    def _live_memory(self) -> PagedMemory:
        return _LinearPages(self)

    def _ld_slow(self, addr: int, memop: int) -> int:
        self.helper_calls += 1
        try:
            value = self._live_memory().load(addr & MASK64, memop_size(memop))
        except GuestFault as err:
            self._fault(err)
            return 0
        return to_signed(value)

    def _st_slow(self, addr: int, value: int, memop: int) -> None:
        self.helper_calls += 1
        size = memop_size(memop)
        try:
            self._live_memory().store(addr & MASK64, size, value & ((1 << (8 * size)) - 1))
        except GuestFault as err:
            self._fault(err)

    def _x87(self, code: int, *args: int) -> int:
        from tcg2wasm.abi import X87_OUTPUTS
        from tcg2wasm.ir.ops_x87 import x87_host_call

        self.helper_calls += 1
        first, *rest = x87_host_call(code, tuple(a & MASK64 for a in args))
        for field, value in zip(X87_OUTPUTS, rest, strict=False):
            self.write_state(field, value)
        return to_signed(first)

    def _div128(self, nl: int, nh: int, d: int, is_signed: int) -> int:
        self.helper_calls += 1
        nl, nh, d = nl & MASK64, nh & MASK64, d & MASK64
        if is_signed:
            n, dv = (to_signed(nh) << 64) | nl, to_signed(d)
            q = abs(n) // abs(dv)
            q = q if (n < 0) == (dv < 0) else -q
            r = n - q * dv
        else:
            q, r = divmod((nh << 64) | nl, d)
        self.write_state("scratch", r & MASK64)
        return to_signed(q & MASK64)

    # -- linear memory ------------------------------------------------------------------
    def write_bytes(self, offset: int, data: bytes) -> None:
        self.memory.write(self.store, data, offset)

    def read_bytes(self, offset: int, size: int) -> bytes:
        return bytes(self.memory.read(self.store, offset, offset + size))

    def write_state(self, field: str, value: int) -> None:
        self.write_bytes(STATE_OFFSET[field], (value & MASK64).to_bytes(8, "little"))

    def read_state(self, field: str) -> int:
        return int.from_bytes(self.read_bytes(STATE_OFFSET[field], 8), "little")

    def _fill_tlb(self) -> None:
        invalid = TLB_INVALID.to_bytes(8, "little")
        self.write_bytes(TLB_BASE, (invalid * 4) * TLB_ENTRIES)
        for guest, page in sorted(self.pages.items()):
            if not page.in_tlb:
                continue
            entry = TLB_BASE + tlb_index(guest) * TLB_ENTRY_SIZE
            tag_r = guest if "r" in page.perms else TLB_INVALID
            tag_w = guest if "w" in page.perms else TLB_INVALID
            self.write_bytes(entry + TLB_TAG_READ, tag_r.to_bytes(8, "little"))
            self.write_bytes(entry + TLB_TAG_WRITE, tag_w.to_bytes(8, "little"))
            addend = (self.host_of[guest] - guest) & MASK64
            self.write_bytes(entry + TLB_ADDEND, addend.to_bytes(8, "little"))

    # -- running ------------------------------------------------------------------------
    def run(self, compiled: CompiledRegion, values: list[int], icount: int = 1 << 40) -> Outcome:
        module = wasmtime.Module(self.engine, compiled.wasm)
        instance = self.linker.instantiate(self.store, module)
        self.write_bytes(STATE_OFFSET["rax"], bytes(STATE_SIZE))
        for i, v in enumerate(values[:N_GLOBALS]):
            self.write_bytes(STATE_OFFSET["rax"] + 8 * i, (v & MASK64).to_bytes(8, "little"))
        self.write_state("icount_left", icount)
        for guest, page in self.pages.items():
            self.write_bytes(self.host_of[guest], bytes(page.data))
        self._fill_tlb()
        code = instance.exports(self.store)[REGION_EXPORT](self.store)
        glob = [int.from_bytes(self.read_bytes(STATE_OFFSET["rax"] + 8 * i, 8), "little") for i in range(N_GLOBALS)]
        memory = {g: self.read_bytes(self.host_of[g], PAGE_SIZE) for g in sorted(self.pages)}
        exit_ = Exit(code)
        fault = exit_ == Exit.FAULT
        return Outcome(exit_, self.read_state("rip"), glob, self.read_state("fault_kind") if fault else 0,
                       self.read_state("fault_addr") if fault else 0, self.read_state("icount_left"), memory)

    def reference(self, region: Region, values: list[int], icount: int = 1 << 40) -> Outcome:
        """The region's semantics (docs/backend.md) on the IR interpreter, on a copy of the pages."""
        pages = {g: Page(p.guest, p.perms, p.in_tlb, bytearray(p.data)) for g, p in self.pages.items()}
        mem = PagedMemory(pages)
        glob = [v & MASK64 for v in values[:N_GLOBALS]] + [0] * (N_GLOBALS - len(values))
        inside = set(region.reachable())
        pc = region.entry
        while True:
            tb = region.blocks[pc]
            n = tb.n_insns
            if icount < n:
                return Outcome(Exit.ICOUNT, pc, glob, 0, 0, icount, _dump(pages))
            icount -= n
            res = run_tb(tb, glob, mem)
            if res.exit == Exit.FAULT:
                starts = [op.args[0] for op in tb.ops if op.name == "insn_start"]
                done = starts.index(res.pc) if res.pc in starts else 0
                icount += n - done
                return Outcome(Exit.FAULT, res.pc, glob, int(res.fault_kind), res.fault_addr, icount, _dump(pages))
            if res.exit == Exit.CONTINUE and res.pc in inside and res.pc in tb.successors():
                pc = res.pc
                continue
            return Outcome(res.exit, res.pc, glob, 0, 0, icount, _dump(pages))


def _dump(pages: dict[int, Page]) -> dict[int, bytes]:
    return {g: bytes(p.data) for g, p in sorted(pages.items())}


class _LinearPages(PagedMemory):
    """The harness pages as they live in linear memory (what the slow-path helpers touch)."""

    def __init__(self, harness: Harness) -> None:
        super().__init__(harness.pages)
        self.h = harness

    def load(self, addr: int, size: int) -> int:
        self.check(addr, size, "r")
        out = bytearray()
        for i in range(size):
            a = (addr + i) & MASK64
            out += self.h.read_bytes(self.h.host_of[a & PAGE_MASK] + (a & (PAGE_SIZE - 1)), 1)
        return int.from_bytes(out, "little")

    def load_for_write(self, addr: int, size: int) -> int:
        self.check(addr, size, "w")
        return self.load(addr, size)

    def store(self, addr: int, size: int, value: int) -> None:
        self.check(addr, size, "w")
        for i, byte in enumerate(value.to_bytes(size, "little")):
            a = (addr + i) & MASK64
            self.h.write_bytes(self.h.host_of[a & PAGE_MASK] + (a & (PAGE_SIZE - 1)), bytes([byte]))
