"""The IR: op table consistency, builder, validator, printer and interpreter."""

from __future__ import annotations

import copy
import pickle
import random
from dataclasses import replace
from pathlib import Path

import pytest
from asm import assemble
from hypothesis import given, settings
from hypothesis import strategies as st

from tcg2wasm.errors import GuestFault
from tcg2wasm.ir import GLOBALS, OPS, Cond, Excp, Exit, IRBuilder, IRError, MemOp, Op, format_tb, validate_tb
from tcg2wasm.ir.core import N_GLOBALS, Temp, TranslationBlock
from tcg2wasm.ir.interp import _run_tb_reference, run_tb
from tcg2wasm.ir.ops import MASK64, eval_cond, to_signed
from tcg2wasm.ir.prepare import BUILTIN_FOLDS, META_KEY, cond_test

u64 = st.integers(0, MASK64)


def test_every_op_is_specified_in_docs() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "ir.md").read_text()
    missing = [name for name in OPS if f"`{name}" not in text]
    assert not missing


def test_pure_ops_have_one_output() -> None:
    for d in OPS.values():
        if d.fold is not None:
            assert d.n_out == 1, d.name


@given(u64, u64)
def test_conditions_match_their_definitions(a: int, b: int) -> None:
    sa, sb = to_signed(a), to_signed(b)
    assert eval_cond(Cond.LT, a, b) == (sa < sb)
    assert eval_cond(Cond.GTU, a, b) == (a > b)
    assert eval_cond(Cond.TSTNE, a, b) == bool(a & b)
    for c in Cond:
        from tcg2wasm.ir.ops import INVERTED_COND
        assert eval_cond(INVERTED_COND[c], a, b) != eval_cond(c, a, b)


def _tb_for(build) -> object:
    b = IRBuilder()
    b.insn_start(0x1000)
    build(b)
    b.goto_tb(0x2000)
    return b.finish(0x1000, 1, [])


@settings(max_examples=300)
@given(u64, u64)
def test_two_output_ops(a: int, c: int) -> None:
    values = [0] * N_GLOBALS
    values[0], values[1] = a, c

    def build(b: IRBuilder) -> None:
        lo, hi = b.mulu2(GLOBALS["rax"], GLOBALS["rcx"])
        b.set_global("rdx", lo)
        b.set_global("rbx", hi)
        slo, shi = b.muls2(GLOBALS["rax"], GLOBALS["rcx"])
        b.set_global("rsi", slo)
        b.set_global("rdi", shi)

    run_tb(_tb_for(build), values, None)
    assert (values[3] << 64 | values[2]) == a * c
    assert ((values[7] << 64 | values[6]) - ((1 << 128) if values[7] >> 63 else 0)) == to_signed(a) * to_signed(c)


@given(u64, u64, st.integers(1, MASK64))
def test_divu2(nl: int, nh: int, d: int) -> None:
    n = nh << 64 | nl
    if n // d >= 1 << 64:
        return
    values = [0] * N_GLOBALS
    values[0], values[1], values[2] = nl, nh, d

    def build(b: IRBuilder) -> None:
        q, r = b.divu2(GLOBALS["rax"], GLOBALS["rcx"], GLOBALS["rdx"])
        b.set_global("rbx", q)
        b.set_global("rsi", r)

    run_tb(_tb_for(build), values, None)
    assert (values[3], values[6]) == divmod(n, d)


def test_deferred_writeback_keeps_state_precise_on_fault() -> None:
    class Faulting:
        def load(self, addr: int, size: int) -> int:
            raise GuestFault(Excp.READ_UNMAPPED, addr)

        def store(self, addr: int, size: int, value: int) -> None:
            raise GuestFault(Excp.WRITE_UNMAPPED, addr)

    def build(b: IRBuilder) -> None:
        b.set_global("rax", b.const(99))  # written before the load within the same instruction
        b.load(GLOBALS["rbx"], MemOp.UQ)

    values = [0] * N_GLOBALS
    values[3] = 0x5000
    result = run_tb(_tb_for(build), values, Faulting())
    assert result.exit == Exit.FAULT and result.fault_kind == Excp.READ_UNMAPPED
    assert result.fault_addr == 0x5000 and result.pc == 0x1000
    assert values[0] == 0


def test_builder_simplifies_trivial_cases() -> None:
    b = IRBuilder()
    rax = GLOBALS["rax"]
    assert b.addi(rax, 0) is rax
    assert b.andi(rax, MASK64) is rax
    assert b.const(5) is b.const(5)
    assert b.extract(rax, 0, 64) is rax


def test_set_global_from_a_global_copies_it() -> None:
    """xchg-like swaps must read both old values."""
    b = IRBuilder()
    b.insn_start(0)
    a, c = b.get_global("rax"), b.get_global("rbx")
    b.set_global("rax", c)
    b.set_global("rbx", a)
    b.goto_tb(1)
    values = [0] * N_GLOBALS
    values[0], values[3] = 1, 2
    run_tb(b.finish(0, 1, []), values, None)
    assert values[0] == 2 and values[3] == 1


@pytest.mark.parametrize("op, message", [
    (Op("nosuch_op", []), "unknown op"),
    (Op("add_i64", [GLOBALS["rax"], GLOBALS["rax"]]), "expected 3 args"),
    (Op("add_i64", [GLOBALS["rax"], GLOBALS["rax"], Temp(10_000)]), "bad temp"),
    (Op("movi_i64", [GLOBALS["rax"], -1]), "bad constant"),
    (Op("setcond_i64", [GLOBALS["rax"], GLOBALS["rax"], GLOBALS["rax"], 99]), "setcond_i64"),
    (Op("extract_i64", [GLOBALS["rax"], GLOBALS["rax"], 60, 8]), "bad field"),
    (Op("qemu_ld_i64", [GLOBALS["rax"], GLOBALS["rax"], 7]), "bad memop"),
])
def test_validator_rejects_malformed_ops(op: Op, message: str) -> None:
    b = IRBuilder()
    b.ops.append(op)
    b.goto_tb(0)
    with pytest.raises(IRError, match=message):
        validate_tb(b.finish(0, 0, []))


def test_validator_requires_a_terminator_and_defined_labels() -> None:
    b = IRBuilder()
    b.insn_start(0)
    with pytest.raises(IRError, match="terminator"):
        validate_tb(b.finish(0, 0, []))
    b = IRBuilder()
    label = b.new_label()
    b.br(label)
    with pytest.raises(IRError, match="not defined"):
        validate_tb(b.finish(0, 0, []))


def test_printer_is_qemu_like_and_deterministic() -> None:
    def build(b: IRBuilder) -> None:
        b.set_global("rax", b.add(GLOBALS["rax"], GLOBALS["rbx"]))

    tb = _tb_for(build)
    text = format_tb(tb)
    assert " ---- 0000000000001000" in text
    assert " add_i64 tmp0,rax,rbx" in text
    assert text.endswith(" goto_tb $0x2000")
    assert text == format_tb(_tb_for(build))


def test_trapcond_reports_its_exception() -> None:
    def build(b: IRBuilder) -> None:
        b.trapcond(Cond.EQ, GLOBALS["rcx"], b.const(0), Excp.DIVIDE)

    result = run_tb(_tb_for(build), [0] * N_GLOBALS, None)
    assert result.exit == Exit.FAULT and result.fault_kind == Excp.DIVIDE


def test_validator_rejects_backward_branches() -> None:
    b = IRBuilder()
    label = b.new_label()
    b.set_label(label)
    b.br(label)
    with pytest.raises(IRError, match="backward"):
        validate_tb(b.finish(0, 0, []))


# -- the prepared interpreter against the op-by-op reference ------------------------------------------------


class LoggingMemory:
    """Guest memory with made-up contents (a hash of the address) that logs every access.

    Access number ``fault_at`` (counting from 0) raises GuestFault instead, as an unmapped page would.
    """

    def __init__(self, fault_at: int | None = None) -> None:
        self.log: list[tuple] = []
        self.fault_at = fault_at

    def _check(self, kind: Excp, addr: int) -> None:
        if len(self.log) == self.fault_at:
            self.log.append(("fault", kind, addr))
            raise GuestFault(kind, addr)

    def load(self, addr: int, size: int) -> int:
        self._check(Excp.READ_UNMAPPED, addr)
        self.log.append(("load", addr, size))
        return ((addr * 0x9E3779B97F4A7C15) >> 5) & ((1 << (8 * size)) - 1)

    def load_for_write(self, addr: int, size: int) -> int:
        self._check(Excp.WRITE_UNMAPPED, addr)
        self.log.append(("load_for_write", addr, size))
        return ((addr * 0x9E3779B97F4A7C15) >> 5) & ((1 << (8 * size)) - 1)

    def store(self, addr: int, size: int, value: int) -> None:
        self._check(Excp.WRITE_UNMAPPED, addr)
        self.log.append(("store", addr, size, value))


def same_as_reference(tb: TranslationBlock, values: list[int], max_insns: int | None = None,
                      fault_at: int | None = None) -> tuple:
    """Run ``tb`` with run_tb and with the reference; both must give the same result, globals and accesses."""
    outcomes = []
    for run in (run_tb, _run_tb_reference):
        after = list(values)
        mem = LoggingMemory(fault_at)
        result = run(tb, after, mem, max_insns)
        outcomes.append((result, after, mem.log))
    assert outcomes[0] == outcomes[1], (hex(tb.pc), max_insns, fault_at)
    return outcomes[0]


def check_against_reference(tb: TranslationBlock, values: list[int], cuts: bool = True, max_faults: int = 8) -> None:
    """The whole TB, then a fault at each of its first accesses, then (for a lifted TB) every max_insns cut."""
    _, _, log = same_as_reference(tb, values)
    for k in range(min(len(log), max_faults)):
        same_as_reference(tb, values, fault_at=k)
    if cuts:
        for n in range(tb.n_insns + 1):
            same_as_reference(tb, values, max_insns=n)


def random_globals(rng: random.Random) -> list[int]:
    edges = [0, 1, 0x7F, 0x80, 0xFF, 0x8000, 0xFFFFFFFF, 0x80000000, MASK64, 1 << 63, (1 << 63) - 1]
    values = [rng.choice(edges) if rng.random() < 0.3 else rng.getrandbits(64) for _ in range(N_GLOBALS)]
    for flag in ("cf", "pf", "af", "zf", "sf", "of", "df"):
        values[GLOBALS[flag].index] = rng.getrandbits(1)
    values[GLOBALS["rcx"].index] &= 0x7  # short rep loops
    return values


SNIPPETS = {
    "arith": "add rax, rbx; adc rcx, rdx; sbb rsi, 5; cmp rdi, rax; setb al; cmovz rbx, rcx; neg rdx; not rsi",
    "muldiv": "mul rbx; imul rcx; imul rdx, rsi, 7; div rsi; idiv rdi",
    "loads": "movsx rax, byte ptr [rbx]; movsx rcx, word ptr [rbx+2]; movsxd rdx, dword ptr [rbx+4];"
             "movzx esi, byte ptr [rbx+1]; mov [rsi], rax; mov [rdi+3], cx; push rax; pop rcx",
    "bits": "bsf rax, rbx; bsr rcx, rdx; popcnt rsi, rdi; bswap rax; rol rbx, cl; shld rax, rbx, 5;"
            "sar rdx, cl; bt rax, rcx; btc rbx, 3",
    "string": "rep movsb; lodsq; stosd; repne scasb",
    "cmov_loop": "l: dec rcx; jnz l",
    "indirect": "call [rax]; ret",
    "exits": "cpuid; rdtsc; syscall",
    "sse": "paddb xmm0, xmm1; pcmpeqb xmm2, xmm3; pmovmskb eax, xmm2; punpcklbw xmm4, xmm5;"
           "addsd xmm0, xmm1; cvtsi2sd xmm6, rax; cvttsd2si rbx, xmm0; ucomisd xmm0, xmm1",
}


def lift_snippet(src: str) -> TranslationBlock:
    from tcg2wasm.frontend.x86_64.translate import translate_block

    code = assemble(src).ljust(0x1000, b"\x90")
    return translate_block(lambda addr, n: code[addr - 0x10000 :][:n], 0x10000)


@pytest.mark.parametrize("name", SNIPPETS)
def test_run_tb_matches_the_reference_on_snippets(name: str) -> None:
    from tcg2wasm.opt import optimize_tb

    lifted = lift_snippet(SNIPPETS[name])
    optimized = optimize_tb(lifted)
    rng = random.Random(name)
    for _ in range(20):
        values = random_globals(rng)
        check_against_reference(lifted, values)
        check_against_reference(optimized, values, cuts=False)


def record_interpreted_tbs(monkeypatch: pytest.MonkeyPatch, program: str) -> dict[int, tuple]:
    """Run ``program`` on the wasm engine; the TBs its interpreter tier ran, each with the globals of its first run."""
    import tcg2wasm.runtime.engines as machine_module
    from tcg2wasm.linux.process import Process

    seen: dict[int, tuple] = {}
    real_run_tb = machine_module.run_tb

    def recording_run_tb(tb, values, mem, max_insns=None):
        seen.setdefault(id(tb), (tb, list(values)))
        return real_run_tb(tb, values, mem, max_insns)

    monkeypatch.setattr(machine_module, "run_tb", recording_run_tb)
    monkeypatch.setenv("TCG2WASM_COLD_TIER", "interp")  # the interpreter as the cold tier, not Unicorn
    path = str(Path(__file__).resolve().parent.parent / "guests" / "bin" / program)
    assert Process(path, [path], env=[]).run().status == 0
    return seen


@pytest.mark.parametrize("program", ["hello.glibc", "numbers.musl"])
def test_run_tb_matches_the_reference_on_a_program(program: str, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture) -> None:
    """Every TB the cold tier ran during a real run; every 8th also optimized."""
    from tcg2wasm.opt import optimize_tb

    seen = record_interpreted_tbs(monkeypatch, program)
    assert len(seen) > 200
    for i, (tb, values) in enumerate(seen.values()):
        check_against_reference(tb, values, max_faults=3)
        if i % 8 == 0:
            check_against_reference(optimize_tb(tb), values, cuts=False, max_faults=3)


@given(u64, u64)
def test_condition_tests_equal_eval_cond(a: int, b: int) -> None:
    for pair in ((a, b), (b, a), (a, a), (a ^ (1 << 63), a)):
        for c in Cond:
            assert cond_test(int(c))(*pair) == eval_cond(c, *pair), c


@settings(max_examples=300)
@given(u64, u64, st.integers(0, 63), st.integers(1, 64))
def test_inlined_forms_equal_the_folds(a: int, b: int, pos: int, length: int) -> None:
    for name, fn in BUILTIN_FOLDS.items():
        assert fn(*[a, b][: OPS[name].n_in]) == OPS[name].fold(*[a, b][: OPS[name].n_in]), name
    length = min(length, 64 - pos)
    ops = [
        Op("mov_i64", [GLOBALS["rax"], GLOBALS["rbx"]]),
        Op("add_i64", [GLOBALS["rcx"], GLOBALS["rbx"], GLOBALS["rdx"]]),
        Op("sub_i64", [GLOBALS["rsi"], GLOBALS["rbx"], GLOBALS["rdx"]]),
        Op("ext8u_i64", [GLOBALS["rdi"], GLOBALS["rbx"]]),
        Op("ext16u_i64", [GLOBALS["r8"], GLOBALS["rbx"]]),
        Op("ext32u_i64", [GLOBALS["r9"], GLOBALS["rbx"]]),
        Op("extract_i64", [GLOBALS["r10"], GLOBALS["rbx"], pos, length]),
        Op("movi_i64", [GLOBALS["r11"], a]),
        Op("setcond_i64", [GLOBALS["r12"], GLOBALS["rbx"], GLOBALS["rdx"], int(Cond.LE)]),
        Op("movcond_i64", [GLOBALS["r13"], GLOBALS["rbx"], GLOBALS["rdx"], GLOBALS["rbx"], GLOBALS["rdx"],
                           int(Cond.GTU)]),
        Op("goto_tb", [0]),
    ]
    values = [0] * N_GLOBALS
    values[GLOBALS["rbx"].index], values[GLOBALS["rdx"].index] = a, b
    same_as_reference(TranslationBlock(0, 1, [], ops, 0, 0), values)


def _branch_over_insn_start_tb() -> TranslationBlock:
    """insn 0x1000 jumps over insn 0x1004 into its middle, where a load faults (pc 0x1000 from there on)."""
    b = IRBuilder()
    label = b.new_label()
    b.insn_start(0x1000)
    b.brcond(Cond.NE, GLOBALS["rax"], b.const(0), label)
    b.insn_start(0x1004)
    b.set_global("rbx", b.const(7))
    b.set_label(label)
    b.set_global("rcx", b.load(GLOBALS["rdx"], MemOp.UQ))
    b.goto_tb(0x2000)
    return b.finish(0x1000, 8, [])


@pytest.mark.parametrize("rax", [0, 1])
def test_fault_pc_after_a_branch_over_an_insn_start(rax: int) -> None:
    tb = _branch_over_insn_start_tb()
    values = [0] * N_GLOBALS
    values[GLOBALS["rax"].index] = rax
    result, _, _ = same_as_reference(tb, values, fault_at=0)
    assert result.exit == Exit.FAULT and result.pc == (0x1000 if rax else 0x1004)
    for n in range(3):
        same_as_reference(tb, values, max_insns=n)


def test_prepared_form_is_cached_and_follows_replaced_ops() -> None:
    def build(b: IRBuilder) -> None:
        b.set_global("rax", b.add(GLOBALS["rax"], b.const(1)))

    tb = _tb_for(build)
    values = [0] * N_GLOBALS
    run_tb(tb, values, None)
    prepared = tb.meta[META_KEY]
    run_tb(tb, values, None)
    assert tb.meta[META_KEY] is prepared and values[0] == 2

    other = _tb_for(lambda b: b.set_global("rax", b.add(GLOBALS["rax"], b.const(10))))
    copy = replace(tb, ops=other.ops, meta=dict(tb.meta))  # carries the stale prepared form of tb
    run_tb(copy, values, None)
    assert values[0] == 12 and copy.meta[META_KEY] is not prepared
    run_tb(tb, values, None)
    assert values[0] == 13 and tb.meta[META_KEY] is prepared

    shared = replace(tb, ops=other.ops)  # shares tb's meta dict: the two TBs take turns
    for expected in (23, 24, 34):
        run_tb(shared if expected != 24 else tb, values, None)
        assert values[0] == expected

    tb.ops = list(tb.ops)  # same ops, new list: prepared again
    run_tb(tb, values, None)
    assert values[0] == 35 and tb.meta[META_KEY] is not prepared


def test_a_run_tb_can_still_be_pickled_and_copied() -> None:
    tb = lift_snippet(SNIPPETS["arith"])
    values = random_globals(random.Random(1))
    expected = same_as_reference(tb, values)
    for clone in (pickle.loads(pickle.dumps(tb)), copy.deepcopy(tb)):
        assert clone.meta.get(META_KEY) is None
        assert same_as_reference(clone, values) == expected


def test_malformed_tbs_fail_where_the_reference_fails() -> None:
    undefined_label = [Op("insn_start", [0]), Op("br", [5]), Op("goto_tb", [0])]
    unknown_op = [Op("insn_start", [0]), Op("brcond_i64", [GLOBALS["rax"], GLOBALS["rax"], int(Cond.EQ), 1]),
                  Op("nosuch_op", []), Op("set_label", [1]), Op("goto_tb", [0x10])]
    for ops, error in ((undefined_label, KeyError), (unknown_op, None)):
        tb = TranslationBlock(0, 1, [], ops, 0, 2)
        for run in (run_tb, _run_tb_reference):
            if error is None:
                assert run(tb, [0] * N_GLOBALS, None).pc == 0x10
            else:
                with pytest.raises(error):
                    run(tb, [0] * N_GLOBALS, None)


@given(st.lists(u64, min_size=7, max_size=7))
def test_every_memop_like_the_reference(addrs: list[int]) -> None:
    """Loads of each size, zero- and sign-extended, and stores of each size (the lifter emits no signed load)."""
    b = IRBuilder()
    b.insn_start(0x1000)
    memops = (MemOp.UB, MemOp.UW, MemOp.UL, MemOp.UQ, MemOp.SB, MemOp.SW, MemOp.SL)
    for memop, name in zip(memops, ("rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8"), strict=True):
        b.set_global(name, b.load(GLOBALS[name], memop))
    for memop in (MemOp.UB, MemOp.UW, MemOp.UL, MemOp.UQ):
        b.insn_start(0x1004 + memop)
        b.store(GLOBALS["r9"], GLOBALS["r10"], memop)
    b.goto_tb(0x2000)
    tb = b.finish(0x1000, 8, [])
    values = [0] * N_GLOBALS
    for name, addr in zip(("rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8"), addrs, strict=True):
        values[GLOBALS[name].index] = addr
    values[GLOBALS["r9"].index] = addrs[0] ^ addrs[1]
    check_against_reference(tb, values, max_faults=11)


def test_sign_extending_loads() -> None:
    class Memory:
        def load(self, addr: int, size: int) -> int:
            return (1 << (8 * size)) - 2  # all ones but bit 0: negative when sign-extended

    b = IRBuilder()
    b.insn_start(0x1000)
    for memop, name in ((MemOp.SB, "rax"), (MemOp.SW, "rcx"), (MemOp.SL, "rdx"), (MemOp.UL, "rbx")):
        b.set_global(name, b.load(GLOBALS["rsp"], memop))
    b.goto_tb(0x2000)
    values = [0] * N_GLOBALS
    run_tb(b.finish(0x1000, 4, []), values, Memory())
    assert values[:4] == [MASK64 - 1, MASK64 - 1, MASK64 - 1, 0xFFFFFFFE]


@pytest.mark.parametrize("extra", [0, 3, 40])
def test_values_longer_than_the_globals(extra: int) -> None:
    """Entries past the globals seed the temps and are left as they were, as in the reference."""
    tb = _tb_for(lambda b: b.set_global("rax", b.add(GLOBALS["rax"], Temp(N_GLOBALS + 2))))
    tb.n_temps = 3
    values = list(range(100, 100 + N_GLOBALS + extra))
    _, after, _ = same_as_reference(tb, values)
    assert after[N_GLOBALS:] == values[N_GLOBALS:]
    assert after[0] == 100 + (100 + N_GLOBALS + 2 if extra > 2 else 0)
