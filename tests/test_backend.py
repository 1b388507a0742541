"""The wasm backend against the IR interpreter, in a minimal wasmtime harness."""

from __future__ import annotations

import os
import random

import pytest
from backend_harness import Harness, Outcome
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tcg2wasm.abi import GLOBAL_NAMES
from tcg2wasm.backend import BackendError, compile_region, region_wat
from tcg2wasm.backend.emit import missing_emitters
from tcg2wasm.cfg import Region
from tcg2wasm.ir import OPS, Cond, Excp, Exit, GuestInsn, IRBuilder, MemOp, Op, TranslationBlock
from tcg2wasm.ir.core import GLOBALS, Temp
from tcg2wasm.ir.ops import MASK64, to_signed

PAGES = [
    (0x10000, "rw", True),  # fast path
    (0x11000, "rw", False),  # mapped, not in the TLB: slow path
    (0x12000, "r", True),  # read-only: stores fault through the slow path
    (0x410000, "rw", True),  # same TLB slot as 0x10000: one of them always misses
]
INTERESTING = [0, 1, 2, 7, 63, 64, 0x80, 0xFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
               0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, MASK64, MASK64 - 1]
u64 = st.one_of(st.sampled_from(INTERESTING), st.integers(0, MASK64))
settings.register_profile("backend", max_examples=int(os.environ.get("TCG2WASM_EXAMPLES", "40")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SETTINGS = settings.get_profile("backend")


@pytest.fixture(scope="module")
def harness() -> Harness:
    h = Harness(PAGES)
    rng = random.Random(1234)
    for page in h.pages.values():
        page.data[:] = rng.randbytes(len(page.data))
    return h


def _insns(*pcs: int) -> list[GuestInsn]:
    return [GuestInsn(pc, b"\x90", "insn") for pc in pcs]


def _single(tb: TranslationBlock) -> Region:
    return Region(tb.pc, {tb.pc: tb})


def _check(harness: Harness, region: Region, values: list[int], icount: int = 1 << 40) -> Outcome:
    got = harness.run(compile_region(region), values, icount)
    want = harness.reference(region, values, icount)
    assert got == want
    unoptimized = harness.run(compile_region(region, optimize=False), values, icount)
    assert unoptimized == want
    return got


# -- the op table is fully covered --------------------------------------------------------------
def test_every_op_has_an_emitter() -> None:
    assert missing_emitters() == []


def _every_op_tb() -> TranslationBlock:
    """One TB using every op of the op table (no fault fires on the tested inputs)."""
    b = IRBuilder()
    g = GLOBALS
    b.insn_start(0x1000)
    a, c = g["rax"], g["rcx"]
    t = [b.new_temp() for _ in range(8)]
    for name in ("add_i64", "sub_i64", "mul_i64", "and_i64", "or_i64", "xor_i64", "andc_i64", "shl_i64", "shr_i64",
                 "sar_i64", "rotl_i64", "rotr_i64", "clz_i64", "ctz_i64", "divu_i64", "remu_i64", "divs_i64",
                 "rems_i64"):
        b.emit(name, t[0], a, c)
        b.emit("xor_i64", g["rdx"], g["rdx"], t[0])
        b.emit("rotl_i64", g["rdx"], g["rdx"], g["rsi"])
    for name in ("mov_i64", "neg_i64", "not_i64", "ext8s_i64", "ext8u_i64", "ext16s_i64", "ext16u_i64",
                 "ext32s_i64", "ext32u_i64", "bswap16_i64", "bswap32_i64", "bswap64_i64", "ctpop_i64"):
        b.emit(name, t[1], a)
        b.emit("add_i64", g["rbx"], g["rbx"], t[1])
        b.emit("mul_i64", g["rbx"], g["rbx"], g["rdi"])
    b.emit("movi_i64", t[2], 0x1234_5678_9ABC_DEF0)
    b.emit("setcond_i64", g["r8"], a, c, int(Cond.LTU))
    b.emit("movcond_i64", g["r9"], a, c, t[2], g["rdx"], int(Cond.GT))
    b.emit("deposit_i64", g["r10"], a, c, 13, 21)
    b.emit("extract_i64", g["r11"], a, 5, 40)
    b.emit("sextract_i64", g["r12"], c, 3, 17)
    b.emit("mulu2_i64", g["r13"], g["r14"], a, c)
    b.emit("muls2_i64", t[3], t[4], a, c)
    b.emit("add_i64", g["r15"], t[3], t[4])
    b.emit("ext32u_i64", t[5], a)
    b.emit("or_i64", t[6], c, t[2])  # divisor != 0
    b.emit("divu2_i64", t[3], t[4], a, g["rsp"], t[6])  # rsp < divisor (set by the test)
    b.emit("divs2_i64", t[5], t[7], a, g["rbp"], t[6])  # rbp = sign of rax (set by the test)
    b.emit("add_i64", g["rsp"], t[3], t[4])
    b.emit("add_i64", g["rbp"], t[5], t[7])
    _emit_lane_ops(b, a, c)
    _emit_float_ops(b, a, c)
    _emit_x87_ops(b, a, c)
    b.insn_start(0x1004)
    addr = b.const(0x10010)
    b.store(g["rdx"], addr, MemOp.UQ)
    b.emit("qemu_ld_i64", g["rsi"], addr, int(MemOp.SL))
    b.trapcond(Cond.NE, addr, addr, Excp.GP)
    l1, l2, l3 = b.new_label(), b.new_label(), b.new_label()
    b.brcondi(Cond.TSTNE, g["rdi"], 1, l1)
    b.goto_tb(0x5000)
    b.set_label(l1)
    b.brcondi(Cond.TSTNE, g["rdi"], 2, l2)
    b.br(l3)
    b.set_label(l2)
    b.exit_tb(Exit.HLT, 0x1008)
    b.set_label(l3)
    b.goto_ptr(g["r8"])
    return b.finish(0x1000, 8, _insns(0x1000, 0x1004))


def _emit_lane_ops(b: IRBuilder, a: Temp, c: Temp) -> None:
    """Every lane op (tcg2wasm.ir.ops_vec, ops_vec_ext) on rax, rcx (and rdx), folded into xmm0_lo."""
    from tcg2wasm.ir.ops_vec import VEC_OPS
    from tcg2wasm.ir.ops_vec_ext import VEC_EXT_OPS

    g = GLOBALS
    out = b.new_temp()
    for d in VEC_OPS + VEC_EXT_OPS:
        b.emit(d.name, out, *(a, c, g["rdx"])[:d.n_in])
        b.emit("xor_i64", g["xmm0_lo"], g["xmm0_lo"], out)
        b.emit("rotl_i64", g["xmm0_lo"], g["xmm0_lo"], g["rsi"])


def _emit_float_ops(b: IRBuilder, a: Temp, c: Temp) -> None:
    """Every float op (tcg2wasm.ir.ops_float) on rax and rcx, folded into xmm1_lo (setcond: predicate 9)."""
    from tcg2wasm.ir.ops_float import FLOAT_OPS

    g = GLOBALS
    out = b.new_temp()
    for d in FLOAT_OPS:
        b.emit(d.name, out, *(a, c)[:d.n_in], *([9] if d.n_const else []))
        b.emit("xor_i64", g["xmm1_lo"], g["xmm1_lo"], out)
        b.emit("rotl_i64", g["xmm1_lo"], g["xmm1_lo"], g["rsi"])


def _emit_x87_ops(b: IRBuilder, a: Temp, c: Temp) -> None:
    """Every x87 op on rax/rcx (as significands) and rdx/rbx (as sign and exponent), into st0..st7."""
    from tcg2wasm.ir.ops_x87 import X87_OPS

    g = GLOBALS
    value_inputs = (a, g["rdx"], c, g["rbx"], g["fpcw"], g["r8"])
    for k, d in enumerate(X87_OPS):
        outs = [g[f"st{(k + i) % 8}_{'lo' if i % 2 == 0 else 'hi'}"] for i in range(d.n_out - 1)] + [g["fpsw"]]
        if d.n_out == 1:
            outs = [g["fptag"]]
        b.emit(d.name, *outs, *value_inputs[:d.n_in], *([1] * d.n_const))


def test_every_op_tb_covers_the_op_table() -> None:
    assert {op.name for op in _every_op_tb().ops} == set(OPS)


@SETTINGS
@given(a=u64, c=u64, rest=st.lists(u64, min_size=len(GLOBAL_NAMES), max_size=len(GLOBAL_NAMES)))
def test_every_op_matches_interpreter(harness: Harness, a: int, c: int, rest: list[int]) -> None:
    values = list(rest)
    values[0], values[1] = a, c
    divisor = c | 0x1234_5678_9ABC_DEF0
    values[GLOBAL_NAMES.index("rsp")] %= divisor  # divu2 quotient fits
    values[GLOBAL_NAMES.index("rbp")] = MASK64 if a >> 63 else 0  # divs2 dividend is a sign-extended rax
    _check(harness, _single(_every_op_tb()), values)


# -- random straight-line code --------------------------------------------------------------------
PURE_OPS = sorted(name for name, d in OPS.items() if d.fold is not None)


@st.composite
def straight_line_tb(draw: st.DrawFn) -> TranslationBlock:
    b = IRBuilder()
    pool = [GLOBALS[n] for n in GLOBAL_NAMES[:8]]
    b.insn_start(0x2000)
    for _ in range(draw(st.integers(1, 25))):
        name = draw(st.sampled_from(PURE_OPS))
        d = OPS[name]
        out = draw(st.sampled_from(pool[:8])) if draw(st.booleans()) else b.new_temp()
        ins = [draw(st.sampled_from(pool)) for _ in range(d.n_in)]
        b.emit(name, out, *ins, *_consts(draw, name))
        if out not in pool:
            pool.append(out)
    b.goto_tb(0x3000)
    return b.finish(0x2000, 4, _insns(0x2000))


def _consts(draw: st.DrawFn, name: str) -> list[int]:
    if name == "movi_i64":
        return [draw(u64)]
    if name in ("setcond_i64", "movcond_i64"):
        return [int(draw(st.sampled_from(list(Cond))))]
    if name in ("setcond_f64", "setcond_f32"):
        return [draw(st.integers(0, 15))]  # tcg2wasm.ir.ops_float.FCond
    if name == "x87_compare":
        return [draw(st.integers(0, 1))]  # quiet
    if name in ("deposit_i64", "extract_i64", "sextract_i64"):
        pos = draw(st.integers(0, 63))
        return [pos, draw(st.integers(1, 64 - pos))]
    return []


@SETTINGS
@given(tb=straight_line_tb(), values=st.lists(u64, min_size=len(GLOBAL_NAMES), max_size=len(GLOBAL_NAMES)))
def test_random_straight_line(harness: Harness, tb: TranslationBlock, values: list[int]) -> None:
    out = _check(harness, _single(tb), values)
    assert out.exit == Exit.CONTINUE and out.rip == 0x3000


# -- 128-bit multiply and divide -------------------------------------------------------------------
def _two_output_tb(name: str) -> TranslationBlock:
    b = IRBuilder()
    b.insn_start(0x1000)
    g = GLOBALS
    ins = [g["rax"], g["rdx"]] + ([g["rcx"]] if name.startswith("div") else [])
    b.emit(name, g["rsi"], g["rdi"], *ins)
    b.exit_tb(Exit.HLT, 0x1003)
    return b.finish(0x1000, 3, _insns(0x1000))


@SETTINGS
@given(a=u64, b=u64, signed=st.booleans())
def test_mul2(harness: Harness, a: int, b: int, signed: bool) -> None:
    out = _check(harness, _single(_two_output_tb("muls2_i64" if signed else "mulu2_i64")), [a, 0, b])
    product = (to_signed(a) * to_signed(b)) if signed else a * b
    assert out.globals[6] == product & MASK64
    assert out.globals[7] == (product >> 64) & MASK64


@SETTINGS
@given(q=u64, d=u64.filter(bool), r=st.integers(0, MASK64))
def test_divu2_inline_and_helper(harness: Harness, q: int, d: int, r: int) -> None:
    r %= d
    n = q * d + r
    out = _check(harness, _single(_two_output_tb("divu2_i64")), [n & MASK64, d, n >> 64])
    assert (out.globals[6], out.globals[7]) == (q, r)


@SETTINGS
@given(q=st.integers(-(1 << 63), (1 << 63) - 1), d=st.integers(-(1 << 63), (1 << 63) - 1).filter(bool),
       r=st.integers(0, MASK64))
def test_divs2_inline_and_helper(harness: Harness, q: int, d: int, r: int) -> None:
    r %= abs(d)
    base = q * d
    n = base - r if base < 0 else base + r
    rem = -r if base < 0 else r
    assume(n != 0 or rem == 0)
    out = _check(harness, _single(_two_output_tb("divs2_i64")), [n & MASK64, d & MASK64, (n >> 64) & MASK64])
    assert (out.globals[6], out.globals[7]) == (q & MASK64, rem & MASK64)


def test_divs_of_int64_min_by_minus_one_does_not_trap(harness: Harness) -> None:
    out = _check(harness, _single(_two_output_tb("divs2_i64")), [1 << 63, MASK64, MASK64])
    assert out.globals[6] == 1 << 63 and out.globals[7] == 0


# -- memory ------------------------------------------------------------------------------------------
ADDRS = st.one_of(
    st.sampled_from([0x10000, 0x10FF9, 0x10FFE, 0x11000, 0x11FFD, 0x12008, 0x12FFF, 0x410100, 0x410FFC, 0x13000,
                     0xFFFF_FFFF_FFFF_FFF8, 0x0FFFF]),
    st.builds(lambda p, o: p + o, st.sampled_from([0x10000, 0x11000, 0x12000, 0x410000]), st.integers(0, 4095)),
)
MEMOPS = st.sampled_from([int(m) for m in (MemOp.UB, MemOp.UW, MemOp.UL, MemOp.UQ, MemOp.SB, MemOp.SW, MemOp.SL)])


@st.composite
def memory_tb(draw: st.DrawFn) -> TranslationBlock:
    b = IRBuilder()
    n = draw(st.integers(1, 8))
    pcs = [0x4000 + 4 * i for i in range(n)]
    for pc in pcs:
        b.insn_start(pc)
        addr = b.const(draw(ADDRS))
        memop = draw(MEMOPS)
        if draw(st.booleans()):
            b.set_global("rax", b.add(b.get_global("rax"), b.load(addr, MemOp(memop))))
        else:
            b.store(b.get_global("rax"), addr, MemOp(memop & 3))
            b.set_global("rcx", b.addi(b.get_global("rcx"), 1))
    b.goto_tb(0x9000)
    return b.finish(0x4000, 4 * n, _insns(*pcs))


@SETTINGS
@given(tb=memory_tb(), rax=u64, icount=st.sampled_from([0, 3, 1 << 20]))
def test_random_memory_access(harness: Harness, tb: TranslationBlock, rax: int, icount: int) -> None:
    _check(harness, _single(tb), [rax], icount)


def test_load_fault_is_precise(harness: Harness) -> None:
    b = IRBuilder()
    b.insn_start(0x4000)
    b.set_global("rbx", b.const(77))
    b.insn_start(0x4003)
    b.set_global("rdx", b.const(5))
    b.set_global("rax", b.load(b.const(0x20008), MemOp.UL))
    b.exit_tb(Exit.HLT, 0x4007)
    tb = b.finish(0x4000, 7, _insns(0x4000, 0x4003))
    out = _check(harness, _single(tb), [1, 2, 3, 4], icount=10)
    assert (out.exit, out.rip, out.fault_kind, out.fault_addr) == (Exit.FAULT, 0x4003, Excp.READ_UNMAPPED, 0x20008)
    assert out.globals[:4] == [1, 2, 3, 77]  # rbx committed, rdx and rax not
    assert out.icount_left == 9  # only the first instruction completed


def test_store_to_read_only_page_faults(harness: Harness) -> None:
    b = IRBuilder()
    b.insn_start(0x4000)
    b.store(b.get_global("rax"), b.const(0x12010), MemOp.UW)
    b.exit_tb(Exit.HLT, 0x4004)
    out = _check(harness, _single(b.finish(0x4000, 4, _insns(0x4000))), [0xBEEF])
    assert (out.exit, out.rip, out.fault_kind) == (Exit.FAULT, 0x4000, Excp.WRITE_PROT)


# -- trapcond, icount, exits ---------------------------------------------------------------------
def _trap_tb() -> TranslationBlock:
    b = IRBuilder()
    b.insn_start(0x6000)
    b.set_global("rax", b.addi(b.get_global("rax"), 1))
    b.insn_start(0x6002)
    b.set_global("rbx", b.const(9))
    b.trapcond(Cond.EQ, b.get_global("rcx"), b.const(0), Excp.DIVIDE)
    b.set_global("rdx", b.divu(b.get_global("rax"), b.get_global("rcx")))
    b.exit_tb(Exit.HLT, 0x6005)
    return b.finish(0x6000, 5, _insns(0x6000, 0x6002))


@pytest.mark.parametrize("rcx", [0, 3])
def test_trapcond(harness: Harness, rcx: int) -> None:
    out = _check(harness, _single(_trap_tb()), [41, rcx, 0, 0], icount=100)
    if rcx == 0:
        assert (out.exit, out.rip, out.fault_kind) == (Exit.FAULT, 0x6002, Excp.DIVIDE)
        assert out.globals[:4] == [42, 0, 0, 0] and out.icount_left == 99
    else:
        assert (out.exit, out.rip) == (Exit.HLT, 0x6005)
        assert out.globals[:4] == [42, 3, 14, 9] and out.icount_left == 98


def _counted_loop(pc: int = 0x7000) -> Region:
    """rax += rcx; rcx -= 1; loop while rcx != 0 (two TBs), then exit."""
    b = IRBuilder()
    b.insn_start(pc)
    b.set_global("rax", b.add(b.get_global("rax"), b.get_global("rcx")))
    b.insn_start(pc + 3)
    b.set_global("rcx", b.addi(b.get_global("rcx"), -1))
    b.goto_tb(pc + 0x10)
    head = b.finish(pc, 7, _insns(pc, pc + 3))
    b = IRBuilder()
    b.insn_start(pc + 0x10)
    done = b.new_label()
    b.brcondi(Cond.EQ, b.get_global("rcx"), 0, done)
    b.goto_tb(pc)
    b.set_label(done)
    b.goto_tb(pc + 0x20)
    tail = b.finish(pc + 0x10, 2, _insns(pc + 0x10))
    return Region(pc, {pc: head, pc + 0x10: tail})


def test_region_loop_runs_inside_one_call(harness: Harness) -> None:
    n = 1_000_000
    calls = harness.helper_calls
    out = harness.run(compile_region(_counted_loop()), [0, n], icount=1 << 40)
    assert (out.exit, out.rip) == (Exit.CONTINUE, 0x7020)
    assert out.globals[:2] == [n * (n + 1) // 2, 0]
    assert out.icount_left == (1 << 40) - 3 * n
    assert harness.helper_calls == calls


@pytest.mark.parametrize("icount", [0, 1, 2, 3, 4, 5, 29, 30, 31])
def test_icount_exit(harness: Harness, icount: int) -> None:
    out = _check(harness, _counted_loop(), [0, 10], icount=icount)
    blocks_done = 0
    left = icount
    while left >= (2 if blocks_done % 2 == 0 else 1) and blocks_done < 20:
        left -= 2 if blocks_done % 2 == 0 else 1
        blocks_done += 1
    if blocks_done < 20:
        assert (out.exit, out.rip) == (Exit.ICOUNT, 0x7000 if blocks_done % 2 == 0 else 0x7010)
        assert out.icount_left == left


# -- random regions ---------------------------------------------------------------------------------
@st.composite
def random_region(draw: st.DrawFn) -> Region:
    n = draw(st.integers(1, 6))
    pcs = [0x8000 + 0x100 * i for i in range(n)]
    targets = st.sampled_from(pcs + [0xA000, 0xB000])
    blocks = {}
    for pc in pcs:
        b = IRBuilder()
        b.insn_start(pc)
        reg = draw(st.sampled_from(["rax", "rcx", "rdx"]))
        src = draw(st.sampled_from(["rax", "rcx", "rdx"]))
        op = draw(st.sampled_from(["add", "xor", "mul", "sub"]))
        value = getattr(b, op)(b.get_global(reg), b.addi(b.get_global(src), draw(st.integers(1, 99))))
        b.set_global(reg, value)
        b.insn_start(pc + 4)
        taken = b.new_label()
        bit = draw(st.integers(0, 63))
        b.brcondi(draw(st.sampled_from([Cond.TSTNE, Cond.TSTEQ])), b.get_global(reg), 1 << bit, taken)
        b.goto_tb(draw(targets))
        b.set_label(taken)
        if draw(st.booleans()):
            b.goto_tb(draw(targets))
        else:
            b.exit_tb(Exit.SYSCALL, pc + 6)
        blocks[pc] = b.finish(pc, 6, _insns(pc, pc + 4))
    return Region(pcs[0], blocks)


@SETTINGS
@given(region=random_region(), values=st.lists(u64, min_size=3, max_size=3), icount=st.integers(0, 300))
def test_random_region(harness: Harness, region: Region, values: list[int], icount: int) -> None:
    _check(harness, region, values, icount)


# -- errors and output -------------------------------------------------------------------------------
def test_malformed_tb_raises_backend_error() -> None:
    tb = TranslationBlock(0x1000, 1, _insns(0x1000), [Op("br", [3])], 0, 1)
    with pytest.raises(BackendError, match="0x1000"):
        compile_region(_single(tb))
    no_end = TranslationBlock(0x1000, 1, _insns(0x1000), [Op("movi_i64", [GLOBALS["rax"], 1])], 0, 0)
    with pytest.raises(BackendError, match="terminator"):
        compile_region(_single(no_end))


def test_region_wat_is_deterministic_and_exports_region() -> None:
    region = _counted_loop()
    text = region_wat(region)
    assert '(export "region"' in text and '(import "env" "memory"' in text
    assert text == region_wat(_counted_loop())
    compiled = compile_region(region)
    assert compiled.wasm[:4] == b"\0asm" and compiled.n_blocks == 2
    assert compiled.n_ops == sum(len(tb.ops) for tb in region.blocks.values())


# -- region discovery ---------------------------------------------------------------------------------
def _chain_translate(calls: list[int]):
    """Blocks at 0x100 * k jump to 0x100 * (k + 1) and 0x100 * (2k); pc >= 0x1000 is unmapped."""

    def translate(pc: int) -> TranslationBlock | None:
        calls.append(pc)
        if pc >= 0x1000:
            return None
        b = IRBuilder()
        b.insn_start(pc)
        taken = b.new_label()
        b.brcondi(Cond.EQ, b.get_global("rax"), 0, taken)
        b.goto_tb(pc + 0x100)
        b.set_label(taken)
        b.goto_tb(2 * pc)
        return b.finish(pc, 2, _insns(pc))

    return translate


def test_discover_region_is_breadth_first_and_bounded() -> None:
    from tcg2wasm.cfg import RegionError, discover_region

    calls: list[int] = []
    region = discover_region(_chain_translate(calls), 0x100)
    expected, frontier = [0x100], [0x100]
    while frontier:
        pc = frontier.pop(0)
        for succ in (pc + 0x100, 2 * pc):
            if succ < 0x1000 and succ not in expected:
                expected.append(succ)
                frontier.append(succ)
    assert list(region.blocks) == expected[:32] and len(expected) == 15
    assert len(calls) == len(set(calls))  # each pc translated once
    assert region.reachable() == list(region.blocks)
    small = discover_region(_chain_translate([]), 0x100, max_blocks=3)
    assert list(small.blocks) == [0x100, 0x200, 0x300]
    per_block = len(region.blocks[0x100].ops)
    assert len(discover_region(_chain_translate([]), 0x100, max_ops=2 * per_block).blocks) == 2
    with pytest.raises(RegionError, match="0x1000"):
        discover_region(_chain_translate([]), 0x1000)


def test_region_from_pcs_keeps_order_and_drops_untranslatable(harness: Harness) -> None:
    from tcg2wasm.cfg import region_from_pcs

    region = region_from_pcs(_chain_translate([]), 0x100, [0x300, 0x200, 0x1100, 0x300])
    assert list(region.blocks) == [0x100, 0x300, 0x200]
    assert region.reachable() == [0x100, 0x200, 0x300]
    out = _check(harness, region, [1], icount=100)
    assert (out.exit, out.rip, out.icount_left) == (Exit.CONTINUE, 0x400, 97)
