"""Building one region function: local layout, sub-blocks, exits and faults.

Layout of the function (see docs/backend.md)::

    locals: [IR globals][IR temps (shared by all TBs)][next_pc icount s0..s5 : i64][code label ti fault : i32]
    prologue: load the globals the region uses, and icount_left, from the state block
    <relooped sub-blocks of all TBs, plus two more:
       "fault": code = Exit.FAULT, then on to "exit"
       "exit":  store written globals, rip = next_pc, icount_left = icount; return code>

Every way out of the region is a Relooper branch to "exit" or "fault" (with
edge code setting next_pc and the code), never a ``br`` to a name outside the
relooped tree: the Relooper re-numbers the names inside its output, and a
branch to an outer name makes it throw (which aborts the process).

TBs are split into sub-blocks at labels and branches; all sub-blocks of all
TBs form one Relooper graph, so goto_tb between blocks of the region is a
branch inside the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tcg2wasm.abi import GLOBAL_NAMES, STATE_OFFSET
from tcg2wasm.backend.bn import I32, I64, Expr, Exprs
from tcg2wasm.backend.bn import Op as W
from tcg2wasm.backend.emit import EMITTERS
from tcg2wasm.backend.relooper import RelooperGraph
from tcg2wasm.ir.core import N_GLOBALS, TranslationBlock
from tcg2wasm.ir.ops import Exit

N_SCRATCH = 6


class BackendError(ValueError):
    """The backend cannot compile a region (names the block or op)."""


@dataclass
class SubBlock:
    name: str
    stmts: list[Expr] = field(default_factory=list)
    branches: list[tuple[int, Expr | None, Expr | None]] = field(default_factory=list)  # target, cond, edge code


class FunctionBuilder:
    """Emits the TBs of one region into sub-blocks and assembles the function body."""

    def __init__(self, module: object, tbs: dict[int, TranslationBlock]) -> None:
        self.e = Exprs(module)
        self.module = module
        self.tbs = tbs
        base = N_GLOBALS + max((tb.n_temps for tb in tbs.values()), default=0)
        self.next_pc = base
        self.icount = base + 1
        self.scratch = tuple(range(base + 2, base + 2 + N_SCRATCH))
        self.code = base + 2 + N_SCRATCH
        self.label_helper = self.code + 1
        self.ti = self.code + 2
        self.fault_flag = self.code + 3  # set by a memory slow path that faulted
        self.var_types = [I64] * (self.code) + [I32] * 4
        self.subs: list[SubBlock] = []
        self.heads = {pc: self.new_sub(f"TB 0x{pc:x}") for pc in tbs}
        self.exit_sub = self.new_sub("exit")
        self.fault_sub = self.new_sub("fault")
        self._indirect_sub: int | None = None
        self.globals_read: set[int] = set()
        self.globals_written: set[int] = set()
        self.n_ops = 0
        # per-TB emission state
        self.tb: TranslationBlock | None = None
        self.labels: dict[int, int] = {}
        self.cur: SubBlock = self.subs[0] if self.subs else SubBlock("none")
        self.dead = False
        self.insn_pc = 0

    # -- sub-blocks ---------------------------------------------------------
    def new_sub(self, name: str) -> int:
        self.subs.append(SubBlock(name))
        return len(self.subs) - 1

    def open(self, sub: int) -> None:
        self.cur = self.subs[sub]
        self.dead = False

    def label_sub(self, label: int) -> int:
        sub = self.labels.get(label)
        if sub is None:
            assert self.tb is not None
            sub = self.labels[label] = self.new_sub(f"TB 0x{self.tb.pc:x} $L{label}")
        return sub

    def stmt(self, expr: Expr) -> None:
        self.cur.stmts.append(expr)

    def branch(self, target: int, cond: Expr | None = None, code: Expr | None = None) -> None:
        """Branch from the current sub-block; a default branch (cond None) ends it."""
        self.cur.branches.append((target, cond, code))
        if cond is None:
            self.dead = True

    def branch_out(self, target: int, cond: Expr, code: Expr) -> None:
        """Leave to ``target`` when ``cond`` holds (running ``code`` on the way), else go on in a new sub-block."""
        self.branch(target, cond, code)
        rest = self.new_sub(f"{self.cur.name} +")
        self.branch(rest)
        self.open(rest)

    # -- exits and faults ----------------------------------------------------
    def leave(self, code: int, pc: Expr) -> None:
        """End the current path: return ``code`` with rip = ``pc`` (through the shared epilogue)."""
        e = self.e
        self.stmt(e.set(self.code, e.c32(code)))
        self.stmt(e.set(self.next_pc, pc))
        self.branch(self.exit_sub)

    def leave_indirect(self, pc: Expr) -> None:
        """End the current path at the guest pc ``pc``: a block of this region if it is one, else leave.

        A return to a call of this region (``cfg.region.flow_successors`` put the return
        address in it) or an indirect jump to one of its blocks stays in the function; the
        dispatcher would enter a region at that pc anyway, with the same guest code.
        """
        self.stmt(self.e.set(self.next_pc, pc))
        self.branch(self._indirect_dispatch())

    def _indirect_dispatch(self) -> int:
        if self._indirect_sub is None:
            e = self.e
            sub = self._indirect_sub = self.new_sub("indirect dispatch")
            for pc, head in self.heads.items():
                self.subs[sub].branches.append((head, e.bin(W.EQ64, e.get(self.next_pc), e.c64(pc)), None))
            self.subs[sub].branches.append((self.exit_sub, None, e.set(self.code, e.c32(Exit.CONTINUE))))
        return self._indirect_sub

    def fault_if(self, cond: Expr, extra: list[Expr] | None = None) -> None:
        """Leave by the fault path at the current guest instruction when ``cond`` (i32) holds.

        The edge sets rip to the instruction's pc and gives back the icount of
        the instructions of this TB that did not complete (the TB head charged them all).
        """
        e = self.e
        assert self.tb is not None
        stmts = [*(extra or []), e.set(self.next_pc, e.c64(self.insn_pc))]
        refund = self.tb.unexecuted_from(self.insn_pc)
        if refund > 0:
            stmts.append(e.set(self.icount, e.bin(W.ADD64, e.get(self.icount), e.c64(refund))))
        self.branch_out(self.fault_sub, cond, e.block(stmts))

    # -- emission --------------------------------------------------------------
    def emit_tb(self, tb: TranslationBlock) -> None:
        self.tb = tb
        self.labels = {}
        self.insn_pc = tb.pc
        self.open(self.heads[tb.pc])
        self._charge_icount(tb)
        for op in tb.ops:
            if self.dead and op.name != "set_label":
                continue
            for t in op.outputs:
                if t.index < N_GLOBALS:
                    self.globals_written.add(t.index)
            for t in op.inputs:
                if t.index < N_GLOBALS:
                    self.globals_read.add(t.index)
            emitter = EMITTERS.get(op.name)
            if emitter is None:
                raise BackendError(f"TB 0x{tb.pc:x}: no wasm emitter for op {op.name!r}")
            emitter(self, op)
            self.n_ops += 1
        if not self.dead:
            raise BackendError(f"TB 0x{tb.pc:x}: control falls off the end of the block")

    def _charge_icount(self, tb: TranslationBlock) -> None:
        n = tb.n_insns
        if n <= 0:
            return
        e = self.e
        out = e.block([e.set(self.code, e.c32(Exit.ICOUNT)), e.set(self.next_pc, e.c64(tb.pc))])
        self.branch_out(self.exit_sub, e.bin(W.LTU64, e.get(self.icount), e.c64(n)), out)
        self.stmt(e.set(self.icount, e.bin(W.SUB64, e.get(self.icount), e.c64(n))))

    # -- assembly ----------------------------------------------------------------
    def build_body(self, entry: int) -> Expr:
        e = self.e
        self._fill_exit_blocks()
        graph = RelooperGraph(self.module)
        for sub in self.subs:
            graph.add_block(e.block(sub.stmts), sub.name)
        for index, sub in enumerate(self.subs):
            for target, cond, code in sub.branches:
                graph.add_branch(index, target, cond, code)
        start = self._entry_dispatch(graph, entry)
        relooped = graph.render(start, self.label_helper)
        used = sorted(self.globals_read | self.globals_written)
        prologue = [e.set(g, e.state_load(STATE_OFFSET[GLOBAL_NAMES[g]])) for g in used]
        prologue.append(e.set(self.icount, e.state_load(STATE_OFFSET["icount_left"])))
        prologue.append(e.set(self.next_pc, e.state_load(STATE_OFFSET["rip"])))
        return e.block([*prologue, relooped, e.unreachable()], type_=I32)

    def _entry_dispatch(self, graph: RelooperGraph, entry: int) -> int:
        """A first block that jumps to the TB at state.rip: every block of the region is an entry.

        So the runtime can map every block pc of the region to its function (a return lands in
        the middle of its caller's region; a replay resumes after a checkpoint) instead of
        compiling another region there. Unknown pcs go to ``entry``.
        """
        e = self.e
        others = [pc for pc in self.heads if pc != entry]
        if not others:
            return self.heads[entry]
        start = graph.add_block(e.block([]), "entry dispatch")
        for pc in others:
            graph.add_branch(start, self.heads[pc], e.bin(W.EQ64, e.get(self.next_pc), e.c64(pc)))
        graph.add_branch(start, self.heads[entry])
        return start

    def _fill_exit_blocks(self) -> None:
        """The shared "fault" and "exit" sub-blocks (the epilogue stores what the region wrote)."""
        e = self.e
        fault = self.subs[self.fault_sub]
        fault.stmts = [e.set(self.code, e.c32(Exit.FAULT))]
        fault.branches = [(self.exit_sub, None, None)]
        stores = [e.state_store(STATE_OFFSET[GLOBAL_NAMES[g]], e.get(g)) for g in sorted(self.globals_written)]
        stores.append(e.state_store(STATE_OFFSET["rip"], e.get(self.next_pc)))
        stores.append(e.state_store(STATE_OFFSET["icount_left"], e.get(self.icount)))
        self.subs[self.exit_sub].stmts = [*stores, e.ret(e.get32(self.code))]
