"""Unicorn as the cold tier, the background compiler and the persistent translation cache.

Each program runs on Machine(cold_tier="unicorn") and on the default Machine (the IR interpreter as
the cold tier, exact), and must end in the same state; the tier's own mechanisms (where Unicorn stops,
its native block counter, write protection of translated code, hlt detection) each get a case
built to exercise them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tcg2wasm import Machine
from tcg2wasm.asm import Assembler, byte, r8, r9, rax, rbx, rcx, rdx, rip, rsi
from tcg2wasm.runtime import block_counter, region_cache, tiering, unicorn_cpu

CODE, DATA, STACK_TOP = 0x10000, 0x20000, 0x7F000
REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "rsp", "rip", "rflags")


def _calls_loop(iterations: int) -> bytes:
    """A loop that calls a function with two paths and reads data: hot code with cold edges."""
    a = Assembler(base=CODE)
    f, g, top = a.label("f"), a.label("g"), a.label()
    a.mov(rcx, iterations)
    a.xor(rax, rax)
    a.mov(rsi, DATA)
    a.bind(top)
    a.call(f)
    a.movzx(rdx, byte[rsi + r8])
    a.adc(rax, rdx)
    a.inc(r8)
    a.and_(r8, 0xFFF)
    a.dec(rcx)
    a.jnz(top)
    a.hlt()
    a.bind(f)  # right after the hlt: a compiled entry one byte after an hlt
    a.add(rbx, rcx)
    a.rol(rbx, 3)
    a.test(rcx, 7)
    a.jnz(g)
    a.imul(r9, rbx, 7)
    a.xor(rbx, r9)
    a.bind(g)
    a.cmp(rbx, rax)
    a.ret()
    return a.assemble()


def _machine(code: bytes, **kw: object) -> Machine:
    m = Machine(**kw)  # type: ignore[arg-type]
    m.mem_map(CODE, 0x1000, "rx")
    m.mem_write(CODE, code)
    m.mem_map(DATA, 0x1000, "rw")
    m.mem_write(DATA, bytes((i * 37) & 0xFF for i in range(0x1000)))
    m.mem_map(STACK_TOP - 0xF000, 0x10000, "rw")
    m.reg_write("rsp", STACK_TOP)
    return m


def _final(code: bytes, **kw: object) -> tuple[str, dict[str, int], Machine]:
    m = _machine(code, **kw)
    stop = m.run(CODE)
    return stop.kind, m.regs(REGS), m


def test_unicorn_tier_ends_in_the_interpreter_tier_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCG2WASM_BACKGROUND", "0")  # compiled at once: the hand-overs happen on a loaded machine too
    code = _calls_loop(300_000)
    kind, want, _ = _final(code)
    assert kind == "hlt"
    for _ in range(3):  # the points where control moves between Unicorn and wasm vary from run to run
        got_kind, got, m = _final(code, cold_tier="unicorn")
        assert (got_kind, got) == (kind, want)
        assert m.stats.regions_translated >= 1 and m.stats.unicorn_slices >= 2


def test_a_block_run_often_in_unicorn_gets_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    a = Assembler(base=CODE)
    top = a.label()
    monkeypatch.setenv("TCG2WASM_BACKGROUND", "0")  # the run may end before a loaded machine's compiler is done
    a.mov(rcx, 2_000_000)
    a.bind(top)
    a.add(rax, rcx)
    a.dec(rcx)
    a.jnz(top)
    a.hlt()
    _, _, m = _final(a.assemble(), cold_tier="unicorn")
    assert m.reg_read("rax") == sum(range(1, 2_000_001)) % (1 << 64)
    if block_counter.available():
        assert m.stats.regions_translated >= 1  # found hot by the block counter, not by misses: there are none


def test_a_unicorn_store_into_translated_code_drops_it() -> None:
    """The code patches an instruction of a loop it ran compiled, from code that runs in Unicorn."""
    a = Assembler(base=CODE)
    top, patch, imm = a.label(), a.label(), a.label()
    a.mov(rcx, 200_000)
    a.bind(top)
    a.bind(imm)
    a.add(rax, 1)  # 48 83 c0 01: the immediate byte is patched to 2 below
    a.dec(rcx)
    a.jnz(top)
    a.bind(patch)
    a.cmp(rbx, 0)
    a.jnz(a.label("done"))
    a.inc(rbx)
    a.mov(byte[rip + imm + 3], 2)
    a.mov(rcx, 1000)
    a.jmp(top)
    a.bind("done")
    a.hlt()
    code = a.assemble()
    for tier in ("interp", "unicorn"):
        m = Machine(cold_tier=tier)
        m.mem_map(CODE, 0x1000, "rwx")
        m.mem_write(CODE, code)
        assert m.run(CODE).kind == "hlt"
        assert m.reg_read("rax") == 200_000 + 2 * 1000, tier


def test_runs_with_a_count_never_use_unicorn() -> None:
    code = _calls_loop(1000)
    m = _machine(code, cold_tier="unicorn")
    stop = m.run(CODE, count=5000)
    assert stop.kind == "count" and m.stats.unicorn_slices == 0 and m.stats.guest_insns == 5000


def test_the_persistent_cache_gives_the_regions_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCG2WASM_CACHE_DIR", str(tmp_path))
    code = _calls_loop(100_000)
    first = _final(code, hot_threshold=1, translation_cache=True)
    second = _final(code, hot_threshold=1, translation_cache=True)
    assert first[:2] == second[:2]
    assert first[2].stats.regions_translated >= 1 and first[2].stats.regions_from_cache == 0
    assert second[2].stats.regions_translated == 0 and second[2].stats.regions_from_cache >= 1
    changed = bytearray(code)
    changed[code.index(bytes.fromhex("48c1c303"))+3] = 5  # rol rbx, 5: the same pcs, other bytes
    third = _final(bytes(changed), hot_threshold=1, translation_cache=True)
    assert third[2].stats.regions_from_cache == 0 and third[1] != first[1]


def _as_in_a_new_process() -> None:
    """Write what this process stored and forget its cache object, as a process that ends does."""
    for cache in list(region_cache._OPEN.values()):
        cache.flush()
    region_cache._OPEN.clear()


def test_a_damaged_cache_is_rebuilt_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCG2WASM_CACHE_DIR", str(tmp_path))
    code = _calls_loop(10_000)
    want = _final(code, hot_threshold=1, translation_cache=True)[:2]
    _as_in_a_new_process()
    (db_path,) = tmp_path.glob("regions-*.sqlite")
    with sqlite3.connect(db_path) as db:  # every stored module damaged: its checksum no longer matches
        db.execute("UPDATE region SET module = substr(module, 1, length(module) - 1)")
    kind, regs, m = _final(code, hot_threshold=1, translation_cache=True)
    assert (kind, regs) == want and m.stats.regions_from_cache == 0 and m.stats.regions_translated >= 1
    _as_in_a_new_process()
    db_path.write_bytes(b"this is not a database" * 100)
    kind, regs, m = _final(code, hot_threshold=1, translation_cache=True)
    assert (kind, regs) == want and m.stats.regions_translated >= 1


def test_the_background_compiler_installs_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCG2WASM_BACKGROUND", "1")
    monkeypatch.setattr(unicorn_cpu, "HOT_BLOCK_RUNS", 2_000)  # hot early: the compiler has most of the run
    code = _calls_loop(600_000)
    want = _final(code)[:2]
    kind, regs, m = _final(code, cold_tier="unicorn")
    assert (kind, regs) == want
    assert m.stats.background_seconds > 0 and m.stats.translate_seconds < m.stats.background_seconds


def test_hot_addresses_hash_into_the_counter_table_as_python_computes() -> None:
    if not block_counter.available():
        pytest.skip("the native block counter is x86-64 code")  # the tier then runs without it
    assert len({block_counter.slot(CODE + 16 * i) for i in range(1000)}) > 900
    assert all(0 <= block_counter.slot(pc) < 1 << block_counter.TABLE_BITS for pc in (0, 1 << 63, (1 << 64) - 1))


def test_the_compiled_pc_set_keeps_members_through_growth_and_removal() -> None:
    pcs = block_counter.PcSet(bits=2)
    members = [CODE + 7 * i for i in range(1, 300)]
    pcs.add(members)
    pcs.discard(members[::3])
    kept = set(members) - set(members[::3])
    assert set(p for p in pcs.slots if p not in (0, (1 << 64) - 1)) == kept == {p for p in members if p in pcs}
    assert 2 * len(kept) <= len(pcs.slots) and len(pcs) == len(kept)
    pcs.add([0])  # 0 marks a free slot: never a member
    assert 0 not in pcs


def _unicorn_cpu(m: Machine) -> object:
    return m._exits._unicorn_cpu()  # noqa: SLF001 - the tier's Unicorn, to look at its stops


def test_unicorn_stops_before_a_compiled_entry_not_at_the_slice_start() -> None:
    if not block_counter.available():
        pytest.skip("the native block counter is x86-64 code")
    a = Assembler(base=CODE)
    top = a.label()
    a.mov(rcx, 50)
    a.bind(top)
    a.add(rax, rcx)
    a.dec(rcx)
    a.jnz(top)
    a.hlt()
    code = a.assemble()
    entry = a.labels[top]
    m = _machine(code, cold_tier="unicorn")
    cpu = _unicorn_cpu(m)
    cpu._start_counting()  # type: ignore[attr-defined]
    cpu.counter.add_compiled([entry])  # type: ignore[attr-defined]
    # The hook sees block starts: Unicorn's first block runs on into the loop (the entry is inside
    # it), so the first stop is at the back edge, after one pass.
    exit_code, pc, _ = cpu.run(CODE)  # type: ignore[attr-defined]
    assert (exit_code.name, pc, m.reg_read("rcx")) == ("CONTINUE", entry, 49)
    exit_code, pc, _ = cpu.run(entry)  # type: ignore[attr-defined]
    assert (exit_code.name, pc, m.reg_read("rcx")) == ("CONTINUE", entry, 48)  # a slice starting there runs it


def test_short_visits_to_compiled_code_are_run_through_by_unicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled function called from cold code: two hand-overs a call, for a few instructions."""
    if not block_counter.available():
        pytest.skip("the native block counter is x86-64 code")
    monkeypatch.setenv("TCG2WASM_BACKGROUND", "0")
    monkeypatch.setattr(unicorn_cpu, "HOT_BLOCK_RUNS", 1 << 30)  # the caller stays cold
    monkeypatch.setattr(tiering, "UNICORN_HOT_MISSES", 1 << 30)
    calls = 200
    code = _calls_loop(calls)
    f = CODE + code.index(bytes.fromhex("4801cb"))  # add rbx, rcx: f's first instruction
    want = _final(code)[:2]
    m = _machine(code, cold_tier="unicorn")
    m.seed_profile([], hot=[f])
    m.mem_write(DATA + 0xFF0, b"\xf4")  # f returns to an hlt: compiled by a run of its own
    m.mem_protect(DATA, 0x1000, "rwx")
    m.reg_write("rsp", STACK_TOP - 8)
    m.mem_write(STACK_TOP - 8, (DATA + 0xFF0).to_bytes(8, "little"))
    assert m.run(f).kind == "hlt" and f in m.cached_regions()
    m.mem_protect(DATA, 0x1000, "rw")
    m.mem_write(DATA + 0xFF0, bytes([(0xFF0 * 37) & 0xFF]))  # the data byte the hlt replaced
    for name in REGS:
        m.reg_write(name, 0)
    m.reg_write("rsp", STACK_TOP)
    m.reg_write("rflags", 2)
    stop = m.run(CODE)
    assert (stop.kind, m.regs(REGS)) == want
    assert m.stats.entries_run_through == 1
    visits = unicorn_cpu.VISITS_JUDGED
    assert visits < m.stats.unicorn_slices < visits + 10  # then Unicorn ran the calls itself


def test_the_hook_code_the_runtime_uses_is_what_its_source_assembles_to() -> None:
    assert block_counter.assemble_hook() == block_counter.HOOK_CODE
