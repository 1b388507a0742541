"""Runtime pieces: guest memory and soft TLB, jump cache, table slots, the in-wasm dispatcher."""

from __future__ import annotations

import struct

import pytest

from tcg2wasm import abi
from tcg2wasm.errors import GuestFault, GuestMemoryError, TranslationError
from tcg2wasm.ir import GLOBALS, Cond, Excp, Exit, GuestInsn, IRBuilder, MemOp
from tcg2wasm.ir.core import TranslationBlock
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.runtime.memory import BytearrayLinearMemory, GuestMemory
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

PAGE = abi.PAGE_SIZE


@pytest.fixture
def mem() -> GuestMemory:
    return GuestMemory(BytearrayLinearMemory())


# -- mapping --------------------------------------------------------------------
def test_map_read_write_across_pages(mem: GuestMemory) -> None:
    mem.map(0x10000, 3 * PAGE, "rw")
    data = bytes(range(256)) * 20
    mem.write(0x10000 + PAGE - 100, data)
    assert mem.read(0x10000 + PAGE - 100, len(data)) == data
    assert mem.read(0x10000, 16) == bytes(16)


def test_high_addresses_are_guest_addresses(mem: GuestMemory) -> None:
    top = (1 << 64) - PAGE
    mem.map(top, PAGE, "r")
    mem.write(top + PAGE - 8, b"\x01" * 8)
    assert mem.load(top + PAGE - 8, 8) == 0x0101010101010101
    assert mem.regions() == [(top, PAGE, "r")]


def test_overlap_names_address(mem: GuestMemory) -> None:
    mem.map(0x20000, 2 * PAGE)
    with pytest.raises(GuestMemoryError, match="0x21000"):
        mem.map(0x21000, 4 * PAGE)
    with pytest.raises(GuestMemoryError, match="page-aligned"):
        mem.map(0x30001, PAGE)
    with pytest.raises(GuestMemoryError, match="page-aligned"):
        mem.map(0x30000, 0)
    with pytest.raises(GuestMemoryError, match="subset of 'rwx'"):
        mem.map(0x30000, PAGE, "rwz")


def test_unmapped_host_access_names_address(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE)
    with pytest.raises(GuestMemoryError, match="0x11000"):
        mem.read(0x10ff0, 0x20)
    with pytest.raises(GuestMemoryError, match="0x9000"):
        mem.write(0x9000, b"x")
    with pytest.raises(GuestMemoryError, match="not mapped"):
        mem.unmap(0x10000, 2 * PAGE)


def test_regions_merge_and_split(mem: GuestMemory) -> None:
    mem.map(0x10000, 4 * PAGE, "rw")
    mem.protect(0x11000, PAGE, "r")
    assert mem.regions() == [(0x10000, PAGE, "rw"), (0x11000, PAGE, "r"), (0x12000, 2 * PAGE, "rw")]
    mem.unmap(0x12000, PAGE)
    assert mem.regions() == [(0x10000, PAGE, "rw"), (0x11000, PAGE, "r"), (0x13000, PAGE, "rw")]


def test_freed_host_pages_are_reused_zeroed(mem: GuestMemory) -> None:
    mem.map(0x10000, 2 * PAGE)
    host = mem.page(0x10000).host
    mem.write(0x10000, b"\xff" * 2 * PAGE)
    mem.unmap(0x10000, 2 * PAGE)
    mem.map(0x50000, 2 * PAGE)
    assert mem.page(0x50000).host == host
    assert mem.read(0x50000, 2 * PAGE) == bytes(2 * PAGE)


def test_host_runs_are_contiguous_in_host_memory(mem: GuestMemory) -> None:
    mem.map(0x10000, 2 * PAGE, "rw")
    mem.map(0x12000, PAGE, "rw")  # guest-adjacent, allocated separately
    runs = mem.host_runs()
    for run in runs:
        assert mem.page(run.addr + run.size - PAGE).host == run.host + run.size - PAGE
    assert sum(r.size for r in runs) == 3 * PAGE


# -- guest accesses -------------------------------------------------------------
@pytest.mark.parametrize(("perms", "op", "kind"), [
    ("w", "load", Excp.READ_PROT), ("r", "store", Excp.WRITE_PROT), ("rw", "fetch", Excp.FETCH_PROT),
])
def test_guest_permission_faults(mem: GuestMemory, perms: str, op: str, kind: Excp) -> None:
    mem.map(0x10000, PAGE, perms)
    with pytest.raises(GuestFault) as e:
        {"load": lambda: mem.load(0x10008, 8), "store": lambda: mem.store(0x10008, 8, 1),
         "fetch": lambda: mem.fetch(0x10008, 15)}[op]()
    assert (e.value.kind, e.value.addr) == (kind, 0x10008)


def test_page_crossing_fault_names_second_page(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE, "rw")
    with pytest.raises(GuestFault) as e:
        mem.load(0x10ffc, 8)
    assert (e.value.kind, e.value.addr) == (Excp.READ_UNMAPPED, 0x11000)
    with pytest.raises(GuestFault) as e:
        mem.store(0xfffc, 8, 0)
    assert (e.value.kind, e.value.addr) == (Excp.WRITE_UNMAPPED, 0xfffc)


def test_fetch_stops_where_execute_ends(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE, "rx")
    mem.map(0x11000, PAGE, "rw")
    mem.write(0x10ff8, bytes(range(1, 17)))
    assert mem.fetch(0x10ff8, 15) == bytes(range(1, 9))
    with pytest.raises(GuestFault) as e:
        mem.fetch(0x12000, 1)
    assert e.value.kind == Excp.FETCH_UNMAPPED


# -- soft TLB ---------------------------------------------------------------------
def test_tlb_fill_follows_permissions(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE, "rx")
    page = 0x10000 >> abi.PAGE_BITS
    assert mem.tlb_entry(page)[:3] == (abi.TLB_INVALID,) * 3
    mem.load(0x10010, 4)
    read, write, execute, addend = mem.tlb_entry(page)
    assert (read, write, execute) == (0x10000, abi.TLB_INVALID, 0x10000)
    assert (0x10010 + addend) & (2**64 - 1) == mem.page(0x10000).host + 0x10


def test_code_page_withholds_write_tag_and_store_reports_it(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE, "rwx")
    mem.store(0x10100, 8, 1)
    assert mem.tlb_entry(0x10)[1] == 0x10000
    invalidated: list[list[int]] = []
    mem.on_invalidate = invalidated.append
    mem.mark_code(0x10000, 0x10010)
    assert mem.tlb_entry(0x10)[1] != 0x10000  # flushed on marking
    mem.load(0x10100, 8)
    assert mem.tlb_entry(0x10)[:2] == (0x10000, abi.TLB_INVALID)
    with pytest.raises(GuestFault) as e:
        mem.store(0x10100, 8, 2)
    assert e.value.kind == Excp.NONE and mem.load(0x10100, 8) == 1
    mem.code_write_passthrough = True
    mem.store(0x10100, 8, 2)
    assert invalidated == [[0x10]] and mem.load(0x10100, 8) == 2
    assert 0x10 not in mem.code_pages


def test_host_write_and_unmap_invalidate_code(mem: GuestMemory) -> None:
    mem.map(0x10000, 2 * PAGE, "rwx")
    invalidated: list[list[int]] = []
    mem.on_invalidate = invalidated.append
    mem.mark_code(0x10ff0, 0x11008)
    mem.write(0x11000, b"\x90")
    mem.unmap(0x10000, 2 * PAGE)
    assert invalidated == [[0x11], [0x10]]


def test_unmap_and_protect_flush_tlb(mem: GuestMemory) -> None:
    mem.map(0x10000, PAGE, "rw")
    mem.load(0x10000, 1)
    mem.protect(0x10000, PAGE, "r")
    assert mem.tlb_entry(0x10)[:2] == (abi.TLB_INVALID, abi.TLB_INVALID)
    mem.load(0x10000, 1)
    mem.unmap(0x10000, PAGE)
    assert mem.tlb_entry(0x10)[0] == abi.TLB_INVALID


# -- wasm runtime: jump cache, table, dispatcher -------------------------------------
_REGION_WAT = """
(module
  (import "env" "memory" (memory 1 {max_pages}))
  (func (export "region") (result i32)
    (i64.store (i32.const {rax}) (i64.add (i64.load (i32.const {rax})) (i64.const 1)))
    (i64.store (i32.const {rip}) (i64.const {next_pc}))
    (i32.const {code})))
"""


def _region(next_pc: int, code: Exit) -> str:
    return _REGION_WAT.format(max_pages=abi.MAX_WASM_PAGES, rax=abi.STATE_OFFSET["rax"], rip=abi.STATE_OFFSET["rip"],
                              next_pc=next_pc, code=int(code))


@pytest.fixture
def rt() -> WasmRuntime:
    runtime = WasmRuntime()
    runtime.define_host_imports({"ld_slow": lambda a, m: 0, "st_slow": lambda a, v, m: None,
                                 "div128": lambda nl, nh, d, s: 0, "x87": lambda *args: 0})
    runtime.jc_clear()
    runtime.state_write("stop_pc", 2**64 - 1)
    return runtime


def _install(rt: WasmRuntime, pc: int, wat: str) -> int:
    slot = rt.allocate_slot(rt.instantiate_region(wat.encode()))
    rt.jc_set(pc, slot)
    return slot


def test_dispatcher_chains_regions_inside_wasm(rt: WasmRuntime) -> None:
    # a -> b -> a ... is a loop through the jump cache; c ends it with HLT
    _install(rt, 0x1000, _region(0x2000, Exit.CONTINUE))
    _install(rt, 0x2000, _region(0x3000, Exit.CONTINUE))
    _install(rt, 0x3000, _region(0x4000, Exit.HLT))
    rt.state_write("rip", 0x1000)
    assert rt.dispatch() == Exit.HLT
    assert rt.state_read("rax") == 3 and rt.state_read("rip") == 0x4000


def test_dispatcher_miss_and_stop(rt: WasmRuntime) -> None:
    _install(rt, 0x1000, _region(0x2000, Exit.CONTINUE))
    rt.state_write("rip", 0x1000)
    assert rt.dispatch() == Exit.MISS and rt.state_read("rip") == 0x2000
    rt.state_write("rip", 0x1000)
    rt.state_write("stop_pc", 0x2000)
    assert rt.dispatch() == Exit.STOP and rt.state_read("rax") == 2
    rt.state_write("rip", 0x1000)
    rt.state_write("stop_pc", 0x1000)
    assert rt.dispatch() == Exit.STOP and rt.state_read("rax") == 2  # stop checked before entering


def test_jump_cache_hash_matches_wasm(rt: WasmRuntime) -> None:
    # two pcs with the same slot: the later install evicts the earlier one
    a = 0x401000
    index_bits = abi.JC_ENTRIES.bit_length() - 1
    b = a + (1 << (12 + index_bits))  # this bit reaches only bits above the mask in pc ^ (pc >> 12)
    assert abi.jc_index(a) == abi.jc_index(b) and a != b
    _install(rt, a, _region(0x9000, Exit.HLT))
    _install(rt, b, _region(0x9000, Exit.HLT))
    rt.state_write("rip", a)
    assert rt.dispatch() == Exit.MISS
    rt.state_write("rip", b)
    assert rt.dispatch() == Exit.HLT
    rt.jc_remove(a)  # not the holder: no effect
    assert rt.jc_get(b)[0] == b
    rt.jc_remove(b)
    assert rt.jc_get(b)[0] == abi.JC_INVALID_PC


def test_table_slots_are_freed_and_reused(rt: WasmRuntime) -> None:
    slots = [_install(rt, 0x1000 * (i + 1), _region(0, Exit.HLT)) for i in range(100)]  # forces table growth
    assert len(set(slots)) == 100 and 0 not in slots
    rt.free_slot(slots[7])
    assert rt.slot_count() == 99
    assert _install(rt, 0x99000, _region(0, Exit.HLT)) == slots[7]


def test_host_helper_sees_unsigned_values() -> None:
    seen: list[tuple[int, int]] = []
    runtime = WasmRuntime()

    def ld_slow(addr: int, memop: int) -> int:
        seen.append((addr, memop))
        return 2**64 - 2

    runtime.define_host_imports({"ld_slow": ld_slow, "st_slow": lambda a, v, m: None,
                                 "div128": lambda nl, nh, d, s: 0, "x87": lambda *args: 0})
    wat = f"""(module (import "env" "ld_slow" (func $ld (param i64 i32) (result i64)))
      (import "env" "memory" (memory 1 {abi.MAX_WASM_PAGES}))
      (func (export "region") (result i32)
        (i64.store (i32.const {abi.STATE_OFFSET["rbx"]}) (call $ld (i64.const -16) (i32.const 3)))
        (i32.const {int(Exit.HLT)})))"""
    runtime.jc_clear()
    runtime.state_write("stop_pc", 1)
    _install(runtime, 0x5000, wat)
    runtime.state_write("rip", 0x5000)
    assert runtime.dispatch() == Exit.HLT
    assert seen == [(2**64 - 16, 3)] and runtime.state_read("rbx") == 2**64 - 2


# -- the backend's regions in the runtime ------------------------------------------
def _loop_tb() -> TranslationBlock:
    """0x1000: rax += [rbx]; rcx -= 1; if rcx != 0 goto 0x1000 else goto 0x2000 (hand-built IR)."""
    b = IRBuilder()
    b.insn_start(0x1000)
    value = b.load(GLOBALS["rbx"], MemOp.UQ)
    b.set_global("rax", b.add(GLOBALS["rax"], value))
    b.insn_start(0x1004)
    b.set_global("rcx", b.addi(GLOBALS["rcx"], -1))
    b.flush()
    done = b.new_label()
    b.brcondi(Cond.EQ, GLOBALS["rcx"], 0, done)
    b.goto_tb(0x1000)
    b.set_label(done)
    b.goto_tb(0x2000)
    return b.finish(0x1000, 8, [GuestInsn(0x1000, b"\x48\x03\x03\x90", "add rax, [rbx]"),
                                GuestInsn(0x1004, b"\x48\xff\xc9\x90", "dec rcx")])


def test_backend_region_loops_inside_wasm_and_matches_interpreter() -> None:
    from tcg2wasm.backend.wasm import compile_region
    from tcg2wasm.cfg.region import Region

    mem_values: dict[int, int] = {}
    runtime = WasmRuntime()
    guest = GuestMemory(runtime.linear)
    guest.map(0x8000, PAGE, "rw")
    guest.write(0x8000, struct.pack("<Q", 7))

    def ld_slow(addr: int, memop: int) -> int:
        mem_values[addr] = mem_values.get(addr, 0) + 1
        return guest.load(addr, 1 << (memop & 3))

    runtime.define_host_imports({"ld_slow": ld_slow, "st_slow": lambda a, v, m: None,
                                 "div128": lambda nl, nh, d, s: 0, "x87": lambda *args: 0})
    runtime.jc_clear()
    runtime.state_write("stop_pc", 0x2000)
    tb = _loop_tb()
    func = runtime.instantiate_region(compile_region(Region(0x1000, {0x1000: tb})).wasm)
    runtime.jc_set(0x1000, runtime.allocate_slot(func))
    for name, value in (("rbx", 0x8000), ("rcx", 1000), ("rax", 5), ("rip", 0x1000), ("icount_left", 10**9)):
        runtime.state_write(name, value)
    assert runtime.dispatch() == Exit.STOP
    values = [0] * len(abi.GLOBAL_NAMES)
    values[abi.GLOBAL_INDEX["rbx"]], values[abi.GLOBAL_INDEX["rcx"]], values[abi.GLOBAL_INDEX["rax"]] = 0x8000, 1000, 5
    pc = 0x1000
    while pc != 0x2000:
        pc = run_tb(tb, values, guest).pc
    assert runtime.state_read("rax") == values[abi.GLOBAL_INDEX["rax"]] == 5 + 7 * 1000
    assert runtime.state_read("icount_left") == 10**9 - 2 * 1000
    # The first load missed the TLB and was refilled in wasm from the page table: Python never saw one.
    assert sum(mem_values.values()) == 0


def test_i32_caller_returns_traps_and_reraises_host_exceptions() -> None:
    """The dispatcher's fast caller behaves as wasmtime's Func.__call__ does."""
    import wasmtime

    from tcg2wasm.runtime.wasm_runtime import i32_caller

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)

    def host() -> None:
        raise KeyError("raised by a host function")

    wat = """(module (import "" "h" (func $h))
      (func (export "seven") (result i32) i32.const 7)
      (func (export "trap") (result i32) unreachable)
      (func (export "host") (result i32) call $h i32.const 1)
      (func (export "takes") (param i32) (result i32) local.get 0))"""
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wat),
                                 [wasmtime.Func(store, wasmtime.FuncType([], []), host)])
    exports = instance.exports(store)
    assert i32_caller(store, exports["seven"])() == 7
    with pytest.raises(wasmtime.Trap):
        i32_caller(store, exports["trap"])()
    with pytest.raises(KeyError, match="raised by a host function"):
        i32_caller(store, exports["host"])()
    with pytest.raises(TranslationError):
        i32_caller(store, exports["takes"])
