"""The optimizer: random TBs behave the same before and after; concrete cases shrink as expected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tcg2wasm.opt
from tcg2wasm.errors import GuestFault
from tcg2wasm.ir import (
    GLOBALS,
    N_GLOBALS,
    OPS,
    Cond,
    Excp,
    Exit,
    IRBuilder,
    IRError,
    MemOp,
    Op,
    Temp,
    TranslationBlock,
    format_ops,
    validate_tb,
)
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.ir.ops import eval_cond
from tcg2wasm.opt import op_histogram, optimize_ops, optimize_tb
from tcg2wasm.opt.conditions import decide_cond
from tcg2wasm.opt.fold import FOLDERS, fold_op, with_canonical_inputs
from tcg2wasm.opt.knowledge import OptContext, TempInfo, sign_width

MASK64 = (1 << 64) - 1
MEM_LO, MEM_HI = 0x4000, 0x4040
#: every load memop, the reads of read-modify-writes (MemOp.FOR_WRITE) too; stores take the plain ones
LOAD_MEMOPS = [int(m) | w for m in MemOp if not m & MemOp.FOR_WRITE for w in (0, int(MemOp.FOR_WRITE))]
STORE_MEMOPS = [int(m) for m in MemOp if not m & MemOp.FOR_WRITE]
POOL_GLOBALS = [GLOBALS[n] for n in ("rax", "rcx", "rdx", "cf", "zf")]
N_TEMPS = 8
TEMPS = [Temp(N_GLOBALS + i) for i in range(N_TEMPS)]
CONST_OPERANDS = {  # how to draw the constant operands of the pure ops that have some
    "movi_i64": "value", "setcond_i64": "cond", "movcond_i64": "cond", "deposit_i64": "field",
    "extract_i64": "field", "sextract_i64": "field", "setcond_f32": "fcond", "setcond_f64": "fcond",
}
PURE_OPS = sorted(n for n, d in OPS.items() if d.fold is not None and (d.n_const == 0 or n in CONST_OPERANDS))
INTERESTING = [0, 1, 2, 7, 8, 63, 64, 0x80, 0xFF, 0x8000, 0xFFFF_FFFF, 1 << 63, MASK64, MASK64 - 1, MEM_LO, MEM_LO + 8]


class DictMemory:
    """Byte-addressed guest memory mapped only in [MEM_LO, MEM_HI); anything else faults."""

    def __init__(self, contents: bytes) -> None:
        self.data = {MEM_LO + i: b for i, b in enumerate(contents)}

    def _check(self, addr: int, size: int, kind: Excp) -> None:
        if not (addr >= MEM_LO and addr + size <= MEM_HI):
            raise GuestFault(kind, addr)

    def load(self, addr: int, size: int) -> int:
        self._check(addr, size, Excp.READ_UNMAPPED)
        return int.from_bytes(bytes(self.data[addr + i] for i in range(size)), "little")

    def load_for_write(self, addr: int, size: int) -> int:
        self._check(addr, size, Excp.WRITE_UNMAPPED)
        return self.load(addr, size)

    def store(self, addr: int, size: int, value: int) -> None:
        self._check(addr, size, Excp.WRITE_UNMAPPED)
        for i, b in enumerate(value.to_bytes(size, "little")):
            self.data[addr + i] = b


# -- random TB generation --------------------------------------------------------------
class RandomTB:
    """Draws a valid TB: forward branches only, temps read only where defined on every path."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.ops: list[Op] = []
        self.defined: set[Temp] = set()
        self.pending: dict[int, set[Temp]] = {}  # label -> temps defined on every branch to it
        self.addresses: list[Temp] = []  # temps last set to an address near the mapped range
        self.recent: list[Temp] = []  # outputs in the order written
        self.copy_sources: list[Temp] = []
        self.n_labels = 0
        self.reachable = True
        self.pc = 0x1000

    def draw(self, strategy: st.SearchStrategy):
        return self.data.draw(strategy)

    def readable(self) -> Temp:
        """Any global or defined temp, often one written recently (where copies and clobbers meet)."""
        recent = [t for t in self.recent[-3:] if t in self.defined or t in POOL_GLOBALS]
        if recent and self.draw(st.booleans()):
            return self.draw(st.sampled_from(recent))
        return self.draw(st.sampled_from(POOL_GLOBALS + sorted(self.defined, key=lambda t: t.index)))

    def writable(self) -> Temp:
        return self.written(self.draw(st.sampled_from(POOL_GLOBALS + TEMPS)))

    def written(self, t: Temp) -> Temp:
        """Note that ``t`` is written by the op being emitted."""
        self.defined.add(t)
        self.recent.append(t)
        if t in self.addresses:
            self.addresses.remove(t)
        return t

    def constant(self) -> int:
        return self.draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, MASK64)))

    def emit(self, name: str, *args: Temp | int) -> None:
        self.ops.append(Op(name, list(args)))

    # one generator per kind of step
    def pure(self) -> None:
        name = self.draw(st.sampled_from(PURE_OPS))
        d = OPS[name]
        inputs = [self.readable() for _ in range(d.n_in)]
        consts = self.pure_consts(name)
        self.emit(name, self.writable(), *inputs, *consts)

    def pure_consts(self, name: str) -> list[int]:
        if name == "movi_i64":
            return [self.constant()]
        if name in ("setcond_i64", "movcond_i64"):
            return [int(self.draw(st.sampled_from(Cond)))]
        if name in ("setcond_f64", "setcond_f32"):
            return [self.draw(st.integers(0, 15))]  # tcg2wasm.ir.ops_float.FCond
        if name in ("deposit_i64", "extract_i64", "sextract_i64"):
            pos = self.draw(st.integers(0, 63))
            return [pos, self.draw(st.integers(1, 64 - pos))]
        return []

    def copy(self) -> None:
        src = self.readable()
        self.emit("mov_i64", self.writable(), src)
        self.copy_sources.append(src)

    def clobber_copy_source(self) -> None:
        """Overwrite the source of an earlier copy: the copy must keep the old value."""
        sources = [t for t in self.copy_sources if t in self.defined or t in POOL_GLOBALS]
        if sources:
            src = self.draw(st.sampled_from(sources))
            self.emit("add_i64", src, src, self.readable())
            self.written(src)

    def small_constant(self) -> None:
        self.emit("movi_i64", self.writable(), self.draw(st.sampled_from(INTERESTING)))

    def load_and_extend(self) -> None:
        """A load followed by a sign or zero extension, as the front end emits for narrow operands."""
        addr = self.address_operand()
        loaded = self.writable()
        self.emit("qemu_ld_i64", loaded, addr, self.draw(st.sampled_from(LOAD_MEMOPS)))
        ext = self.draw(st.sampled_from([f"ext{w}{s}_i64" for w in (8, 16, 32) for s in "su"]))
        self.emit(ext, self.writable(), loaded)

    def address(self) -> None:
        t = self.written(self.draw(st.sampled_from(TEMPS)))
        self.addresses.append(t)
        inside = st.integers(0, MEM_HI - MEM_LO - 8)
        offset = self.draw(st.one_of(inside, inside, inside, st.integers(-8, MEM_HI - MEM_LO + 8)))
        self.emit("movi_i64", t, (MEM_LO + offset) & MASK64)

    def two_outputs(self) -> None:
        name = self.draw(st.sampled_from(["mulu2_i64", "muls2_i64", "divu2_i64", "divs2_i64"]))
        inputs = [self.readable() for _ in range(OPS[name].n_in)]
        if name.startswith("div"):  # division by zero is undefined: guard it as the front end does
            zero, one, divisor = self.draw(st.permutations([t for t in TEMPS if t not in inputs]))[:3]
            self.emit("movi_i64", self.written(zero), 0)
            if self.draw(st.integers(0, 3)):  # mostly make the divisor nonzero, so that the guard passes
                self.emit("movi_i64", self.written(one), 1)
                self.emit("or_i64", self.written(divisor), inputs[2], one)
                inputs[2] = divisor
            self.emit("trapcond_i64", inputs[2], zero, int(Cond.EQ), int(Excp.DIVIDE))
        lo = self.writable()
        hi = self.written(self.draw(st.sampled_from([t for t in POOL_GLOBALS + TEMPS if t != lo])))
        self.emit(name, lo, hi, *inputs)

    def address_operand(self) -> Temp:
        """Mostly a temp set by ``address``, so that most accesses hit the mapped range."""
        if not self.draw(st.integers(0, 7)):
            return self.readable()
        usable = [t for t in self.addresses if t in self.defined]
        if not usable:
            self.address()
            usable = self.addresses[-1:]
        return self.draw(st.sampled_from(usable))

    def memory(self) -> None:
        addr = self.address_operand()
        if self.draw(st.booleans()):
            self.emit("qemu_ld_i64", self.writable(), addr, self.draw(st.sampled_from(LOAD_MEMOPS)))
        else:
            self.emit("qemu_st_i64", self.readable(), addr, self.draw(st.sampled_from(STORE_MEMOPS)))

    def trap(self) -> None:
        """A guard that rarely fires (mostly an equality test), so that most blocks run on past it."""
        excp = int(self.draw(st.sampled_from([Excp.DIVIDE, Excp.INVALID_OPCODE, Excp.GP])))
        cond = self.draw(st.one_of(st.just(Cond.EQ), st.just(Cond.EQ), st.just(Cond.EQ), st.sampled_from(Cond)))
        self.emit("trapcond_i64", self.readable(), self.readable(), int(cond), excp)

    def branch_target(self) -> int:
        if self.pending and self.draw(st.booleans()):
            label = self.draw(st.sampled_from(sorted(self.pending)))
        else:
            self.n_labels += 1
            label = self.n_labels
            self.pending[label] = set(self.defined)
        if self.reachable:
            self.pending[label] &= self.defined
        return label

    def brcond(self) -> None:
        a, b, cond = self.readable(), self.readable(), int(self.draw(st.sampled_from(Cond)))
        self.emit("brcond_i64", a, b, cond, self.branch_target())

    def br(self) -> None:
        self.emit("br", self.branch_target())
        self.reachable = False

    def place_label(self) -> None:
        if not self.pending:
            return
        label = self.draw(st.sampled_from(sorted(self.pending)))
        on_branches = self.pending.pop(label)
        self.defined = on_branches & self.defined if self.reachable else on_branches
        self.reachable = True
        self.emit("set_label", label)

    def insn_start(self) -> None:
        self.pc += self.draw(st.integers(1, 15))
        self.emit("insn_start", self.pc)

    def early_exit(self) -> None:
        """Leave in the middle, when a pending label makes the code after it reachable again."""
        if self.pending:
            self.terminator()

    def terminator(self) -> None:
        kind = self.draw(st.sampled_from(["goto_tb", "goto_ptr", "exit_tb"]))
        if kind == "goto_tb":
            self.emit("goto_tb", self.draw(st.integers(0, MASK64)))
        elif kind == "goto_ptr":
            self.emit("goto_ptr", self.readable())
        else:
            self.emit("exit_tb", int(self.draw(st.sampled_from(Exit))), self.draw(st.integers(0, MASK64)))
        self.reachable = False

    STEPS = (
        "pure", "pure", "pure", "pure", "copy", "copy", "clobber_copy_source", "small_constant", "small_constant",
        "address", "two_outputs", "memory", "memory", "load_and_extend", "trap", "brcond", "br", "place_label",
        "place_label", "insn_start", "early_exit",
    )

    def build(self) -> TranslationBlock:
        self.insn_start()
        for _ in range(self.draw(st.integers(1, 40))):
            if not self.reachable and self.pending and self.draw(st.integers(0, 3)):
                self.place_label()  # mostly keep unreachable stretches short
            else:
                getattr(self, self.draw(st.sampled_from(self.STEPS)))()
        while self.pending:
            self.place_label()
            if self.draw(st.booleans()):
                self.pure()
        self.terminator()
        tb = TranslationBlock(0x1000, self.pc - 0x1000 + 1, [], self.ops, N_TEMPS, self.n_labels)
        validate_tb(tb)
        return tb


def run(tb: TranslationBlock, globals_: list[int], contents: bytes) -> tuple:
    values = list(globals_)
    mem = DictMemory(contents)
    result = run_tb(tb, values, mem)
    return result, values, mem.data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_optimized_random_tbs_behave_the_same(data: st.DataObject) -> None:
    tb = RandomTB(data).build()
    globals_ = [data.draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, MASK64))) for _ in range(N_GLOBALS)]
    contents = data.draw(st.binary(min_size=MEM_HI - MEM_LO, max_size=MEM_HI - MEM_LO))
    opt = optimize_tb(tb)
    validate_tb(opt)
    expected = run(tb, globals_, contents)
    actual = run(opt, globals_, contents)
    detail = f"\nbefore:\n{format_ops(tb.ops)}\nafter:\n{format_ops(opt.ops)}"
    assert actual[0] == expected[0], detail
    assert actual[1] == expected[1], detail
    assert actual[2] == expected[2], detail
    assert len(opt.ops) <= len(tb.ops)
    assert optimize_ops(opt.ops) == opt.ops, "the passes did not reach a fixpoint" + detail


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(Cond),
    st.one_of(st.sampled_from([0, 1, 0xFF, 0x7F, 0xFFFF, 0xFFFF_FFFF, MASK64 >> 1, MASK64]), st.integers(0, MASK64)),
    st.one_of(st.sampled_from(INTERESTING), st.integers(0, MASK64), st.integers(-2, 2), st.integers(-2, 2)),
    st.lists(st.integers(0, MASK64), min_size=1, max_size=8),
    st.booleans(),
)
def test_decided_conditions_hold_for_every_value_within_the_known_bits(
    cond: Cond, z_mask: int, c: int, raw: list[int], const_first: bool
) -> None:
    if -2 <= c <= 2:  # a constant next to the largest possible value
        c = (z_mask + c) & MASK64
    ctx = OptContext()
    a, b = t(0), t(1)
    ctx.define(a, TempInfo(None, z_mask))
    ctx.define(b, TempInfo.of_const(c))
    x, y = (b, a) if const_first else (a, b)
    decided = decide_cond(ctx, cond, x, y)
    if decided is None:
        return
    for r in [0, z_mask, *raw]:
        value = r & z_mask
        pair = (c, value) if const_first else (value, c)
        assert eval_cond(cond, *pair) == decided, (cond, hex(z_mask), hex(c), hex(value))


KNOWLEDGE_OPS = sorted(n for n in FOLDERS if n in PURE_OPS)
"""The pure ops the forward pass has its own rules (and known-bits tracking) for."""


def evaluate(op: Op, values: dict[Temp, int], mem: DictMemory) -> int:
    """The value ``op`` (a pure op or a load) writes to its output."""
    if op.name == "qemu_ld_i64":
        size = 1 << (op.args[2] & 3)
        raw = mem.load(values[op.args[1]], size)
        return ((raw ^ (1 << (8 * size - 1))) - (1 << (8 * size - 1))) & MASK64 if op.args[2] & 4 else raw
    return OPS[op.name].fold(*(values[t] for t in op.inputs), *op.consts)


class KnowledgeCheck:
    """Feeds ops one by one to the forward pass while computing the real values alongside."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.gen = RandomTB(data)
        self.mem = DictMemory(data.draw(st.binary(min_size=MEM_HI - MEM_LO, max_size=MEM_HI - MEM_LO)))
        self.values = {t: data.draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, MASK64))) for t in TEMPS}
        self.ctx = OptContext()  # knows nothing about the starting values
        self.recent: list[Temp] = []

    def target(self) -> Temp:
        return self.data.draw(st.sampled_from(TEMPS))

    def operand(self) -> Temp:
        """The last result, a fresh constant or any temp."""
        match self.data.draw(st.integers(0, 2)):
            case 0 if self.recent:
                return self.recent[-1]
            case 1:
                t = self.target()
                self.process(Op("movi_i64", [t, self.data.draw(st.sampled_from(INTERESTING))]))
                return t
        return self.target()

    def load(self) -> Op:
        addr = self.target()
        self.process(Op("movi_i64", [addr, MEM_LO + self.data.draw(st.integers(0, MEM_HI - MEM_LO - 8))]))
        return Op("qemu_ld_i64", [self.target(), addr, self.data.draw(st.sampled_from(LOAD_MEMOPS))])

    def pure(self) -> Op:
        name = self.data.draw(st.sampled_from(KNOWLEDGE_OPS))
        inputs = [self.operand() for _ in range(OPS[name].n_in)]
        return Op(name, [self.target(), *inputs, *self.gen.pure_consts(name)])

    def process(self, op: Op) -> None:
        out = op.args[0]
        value = evaluate(op, self.values, self.mem)
        new = fold_op(self.ctx, with_canonical_inputs(self.ctx, op))
        if new is None:
            assert self.values[out] == value, f"{format_ops([op])} dropped but changes {out}"
        else:
            assert evaluate(new, self.values, self.mem) == value, f"{format_ops([op])} became {format_ops([new])}"
        self.values[out] = value
        self.recent.append(out)
        info = self.ctx.info(out)
        assert info.const in (None, value), format_ops([op])
        assert value & ~info.z_mask == 0, f"{format_ops([op])}: {value:#x} outside z_mask {info.z_mask:#x}"
        assert sign_width(value) <= info.s_bits, f"{format_ops([op])}: {value:#x} wider than {info.s_bits} bits"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_recorded_knowledge_and_rewrites_are_true_of_the_values(data: st.DataObject) -> None:
    """Straight-line loads and pure ops: after each op, what the forward pass believes about its
    output (constant, known-zero bits, sign width) holds for the real value, and the op it emits
    computes that value (or is dropped because the output already holds it)."""
    check = KnowledgeCheck(data)
    for _ in range(data.draw(st.integers(1, 30))):
        check.process(check.load() if data.draw(st.integers(0, 3)) == 0 else check.pure())


# -- concrete cases -------------------------------------------------------------------------
def t(i: int) -> Temp:
    return Temp(N_GLOBALS + i)


RAX, RBX, RCX, RDX, CF, ZF = (GLOBALS[n] for n in ("rax", "rbx", "rcx", "rdx", "cf", "zf"))


def tb_of(ops: list[Op], n_temps: int = 8, n_labels: int = 0) -> TranslationBlock:
    return TranslationBlock(0x1000, 4, [], ops, n_temps, n_labels)


def names(ops: list[Op]) -> list[str]:
    return [op.name for op in ops]


def test_constant_folding_uses_the_op_table_and_propagates() -> None:
    tb = tb_of([
        Op("movi_i64", [t(0), 6]),
        Op("movi_i64", [t(1), 7]),
        Op("mul_i64", [t(2), t(0), t(1)]),
        Op("shl_i64", [t(3), t(2), t(1)]),
        Op("mov_i64", [RAX, t(3)]),
        Op("goto_tb", [0x2000]),
    ])
    assert optimize_tb(tb).ops == [Op("movi_i64", [RAX, 42 << 7]), Op("goto_tb", [0x2000])]


def test_algebraic_identities_become_moves() -> None:
    tb = tb_of([
        Op("movi_i64", [t(0), 0]),
        Op("movi_i64", [t(1), MASK64]),
        Op("add_i64", [t(2), RAX, t(0)]),  # rax + 0
        Op("and_i64", [t(3), t(2), t(1)]),  # & ~0
        Op("xor_i64", [t(4), RBX, RBX]),  # x ^ x
        Op("or_i64", [t(5), t(3), t(4)]),  # | 0
        Op("shl_i64", [RCX, t(5), t(0)]),  # << 0
        Op("goto_tb", [0x2000]),
    ])
    assert optimize_tb(tb).ops == [Op("mov_i64", [RCX, RAX]), Op("goto_tb", [0x2000])]


def _two_flag_setting_insns(load_between: bool = False) -> TranslationBlock:
    """add rax, rbx ; [mov rcx, [rcx]] ; sub rax, 1 -- flags set as the builder emits them."""
    b = IRBuilder()
    b.insn_start(0x1000)
    r = b.add(b.get_global("rax"), b.get_global("rbx"))
    b.set_global("cf", b.setcond(Cond.LTU, r, b.get_global("rax")))
    b.set_global("zf", b.setcondi(Cond.EQ, r, 0))
    b.set_global("rax", r)
    if load_between:
        b.insn_start(0x1003)
        b.set_global("rcx", b.load(b.get_global("rcx"), MemOp.UQ))
    b.insn_start(0x1003)
    r = b.sub(b.get_global("rax"), b.const(1))
    b.set_global("cf", b.setcondi(Cond.LTU, b.get_global("rax"), 1))
    b.set_global("zf", b.setcondi(Cond.EQ, r, 0))
    b.set_global("rax", r)
    b.goto_tb(0x1007)
    return b.finish(0x1000, 7, [])


def test_dead_flags_are_removed() -> None:
    tb = _two_flag_setting_insns()
    opt = optimize_tb(tb)
    before, after = op_histogram(tb.ops), op_histogram(opt.ops)
    assert before["setcond_i64"] == 4 and after["setcond_i64"] == 2
    writes_to = [op.args[0] for op in opt.ops if op.outputs and op.args[0].is_global]
    assert writes_to == [RAX, CF, ZF]  # one write each, from the second instruction
    assert names(opt.ops)[:3] == ["insn_start", "add_i64", "insn_start"]


def test_flags_before_a_possible_fault_are_kept() -> None:
    tb = _two_flag_setting_insns(load_between=True)
    opt = optimize_tb(tb)
    assert op_histogram(opt.ops)["setcond_i64"] == 4
    writes_to = [op.args[0] for op in opt.ops if op.outputs and op.args[0].is_global]
    assert writes_to == [RAX, CF, ZF, RCX, RAX, CF, ZF]


def test_constant_branch_becomes_br_and_dead_path_goes() -> None:
    tb = tb_of([
        Op("movi_i64", [t(0), 5]),
        Op("brcond_i64", [t(0), t(0), int(Cond.EQ), 1]),
        Op("mov_i64", [RAX, RBX]),  # never runs
        Op("exit_tb", [int(Exit.HLT), 0x1004]),
        Op("set_label", [1]),
        Op("mov_i64", [RCX, t(0)]),
        Op("goto_tb", [0x2000]),
    ], n_labels=1)
    assert optimize_tb(tb).ops == [Op("movi_i64", [RCX, 5]), Op("goto_tb", [0x2000])]


def test_never_taken_branch_and_never_firing_trap_are_removed() -> None:
    tb = tb_of([
        Op("ext8u_i64", [t(0), RAX]),
        Op("movi_i64", [t(1), 0x100]),
        Op("brcond_i64", [t(0), t(1), int(Cond.GEU), 1]),  # a byte is never >= 0x100
        Op("trapcond_i64", [t(0), t(1), int(Cond.EQ), int(Excp.GP)]),
        Op("mov_i64", [RBX, t(0)]),
        Op("set_label", [1]),
        Op("goto_tb", [0x2000]),
    ], n_labels=1)
    assert optimize_tb(tb).ops == [Op("ext8u_i64", [t(0), RAX]), Op("mov_i64", [RBX, t(0)]), Op("goto_tb", [0x2000])]


def test_firing_trap_is_kept() -> None:
    tb = tb_of([
        Op("movi_i64", [t(0), 0]),
        Op("trapcond_i64", [t(0), t(0), int(Cond.EQ), int(Excp.DIVIDE)]),
        Op("goto_tb", [0x2000]),
    ])
    assert names(optimize_tb(tb).ops) == ["movi_i64", "trapcond_i64", "goto_tb"]


def test_copy_is_not_propagated_past_a_redefinition_of_its_source() -> None:
    tb = tb_of([
        Op("mov_i64", [t(0), RAX]),
        Op("add_i64", [RAX, RAX, RCX]),
        Op("mov_i64", [RBX, t(0)]),
        Op("goto_tb", [0x2000]),
    ])
    opt = optimize_tb(tb)
    assert opt.ops == tb.ops
    values = list(range(N_GLOBALS))
    run_tb(opt, values, DictMemory(b""))
    assert values[RBX.index] == RAX.index


def test_copy_is_propagated_while_its_source_holds() -> None:
    tb = tb_of([
        Op("mov_i64", [t(0), RAX]),
        Op("mov_i64", [t(1), t(0)]),
        Op("add_i64", [RBX, t(1), t(0)]),
        Op("goto_tb", [0x2000]),
    ])
    assert optimize_tb(tb).ops == [Op("add_i64", [RBX, RAX, RAX]), Op("goto_tb", [0x2000])]


def test_extension_of_an_extended_value_is_dropped() -> None:
    tb = tb_of([
        Op("ext8u_i64", [t(0), RAX]),
        Op("ext32u_i64", [t(1), t(0)]),
        Op("ext16s_i64", [t(2), t(1)]),  # bit 15 is clear: no-op
        Op("ext8s_i64", [t(3), RBX]),
        Op("ext32s_i64", [t(4), t(3)]),
        Op("add_i64", [RCX, t(2), t(4)]),
        Op("goto_tb", [0x2000]),
    ])
    assert optimize_tb(tb).ops == [
        Op("ext8u_i64", [t(0), RAX]),
        Op("ext8s_i64", [t(3), RBX]),
        Op("add_i64", [RCX, t(0), t(3)]),
        Op("goto_tb", [0x2000]),
    ]


def test_unused_high_half_turns_mulu2_into_mul() -> None:
    tb = tb_of([Op("mulu2_i64", [t(0), t(1), RAX, RBX]), Op("mov_i64", [RCX, t(0)]), Op("goto_tb", [0x2000])])
    assert optimize_tb(tb).ops == [Op("mul_i64", [t(0), RAX, RBX]), Op("mov_i64", [RCX, t(0)]), Op("goto_tb", [0x2000])]


def test_globals_stay_live_at_labels_and_temps_only_where_used() -> None:
    tb = tb_of([
        Op("movi_i64", [t(0), 1]),
        Op("mov_i64", [CF, RAX]),  # live: the label is a block boundary
        Op("add_i64", [t(1), RAX, RAX]),  # dead: only read on no path
        Op("brcond_i64", [RBX, RCX, int(Cond.LT), 1]),
        Op("mov_i64", [CF, RBX]),
        Op("set_label", [1]),
        Op("mov_i64", [CF, t(0)]),
        Op("goto_tb", [0x2000]),
    ], n_labels=1)
    assert optimize_tb(tb).ops == [
        Op("movi_i64", [t(0), 1]),
        Op("mov_i64", [CF, RAX]),
        Op("brcond_i64", [RBX, RCX, int(Cond.LT), 1]),
        Op("mov_i64", [CF, RBX]),
        Op("set_label", [1]),
        Op("mov_i64", [CF, t(0)]),  # knowledge is reset at a join point
        Op("goto_tb", [0x2000]),
    ]


def test_temp_live_across_a_label_is_kept() -> None:
    tb = tb_of([
        Op("add_i64", [t(0), RAX, RBX]),
        Op("brcond_i64", [RBX, RCX, int(Cond.LT), 1]),
        Op("movi_i64", [RDX, 3]),
        Op("set_label", [1]),
        Op("mov_i64", [RCX, t(0)]),
        Op("goto_tb", [0x2000]),
    ], n_labels=1)
    assert optimize_tb(tb).ops == tb.ops


def test_optimize_tb_leaves_its_input_alone_and_keeps_numbering() -> None:
    tb = _two_flag_setting_insns()
    ops_before = [Op(op.name, list(op.args)) for op in tb.ops]
    opt = optimize_tb(tb)
    assert tb.ops == ops_before
    assert opt is not tb and opt.n_temps == tb.n_temps and opt.n_labels == tb.n_labels
    assert (opt.pc, opt.size) == (tb.pc, tb.size)


def test_malformed_tb_is_rejected_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcg2wasm.opt, "CHECK_IR", True)
    tb = tb_of([Op("add_i64", [RAX, RAX]), Op("goto_tb", [0x2000])])
    with pytest.raises(IRError, match="add_i64"):
        optimize_tb(tb)


def test_op_histogram_counts_names_in_sorted_order() -> None:
    ops = [Op("goto_tb", [1]), Op("add_i64", [RAX, RAX, RBX]), Op("add_i64", [RAX, RAX, RBX])]
    hist = op_histogram(ops)
    assert hist == {"add_i64": 2, "goto_tb": 1}
    assert list(hist) == ["add_i64", "goto_tb"]


@pytest.mark.parametrize(
    ("memop", "ext", "kept"),
    [
        (MemOp.UW, "ext16s_i64", True),  # bit 15 of a zero-extended halfword may be set
        (MemOp.SW, "ext16s_i64", False),
        (MemOp.UB, "ext16s_i64", False),
        (MemOp.UW, "ext16u_i64", False),
        (MemOp.SW, "ext16u_i64", True),
        (MemOp.SB, "ext32s_i64", False),
        (MemOp.UL, "ext32u_i64", False),
        (MemOp.UL, "ext8u_i64", True),
    ],
)
def test_extension_after_a_load_is_dropped_only_when_the_load_extends(memop: MemOp, ext: str, kept: bool) -> None:
    load = Op("qemu_ld_i64", [t(0), RAX, int(memop)])
    tb = tb_of([load, Op(ext, [t(1), t(0)]), Op("mov_i64", [RBX, t(1)]), Op("goto_tb", [0x2000])])
    expected = [load, Op(ext, [t(1), t(0)]), Op("mov_i64", [RBX, t(1)])] if kept else [load, Op("mov_i64", [RBX, t(0)])]
    assert optimize_tb(tb).ops == [*expected, Op("goto_tb", [0x2000])]
