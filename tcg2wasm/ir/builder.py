"""Emitting ops: the ``gen_*`` API the front end lifts with.

Two conventions make lifting short and exact:

* Value helpers (``add``, ``shl``, ``setcond``...) return a fresh temp holding
  the result; ``gen_<op>(out, ...)`` writes a given temp. Trivial cases
  (adding 0, masking with all ones, constant operands) simplify as they emit.
* Guest globals written inside an instruction are *deferred*: ``set_global``
  records the value in a shadow temp and ``get_global`` reads it back, and the
  real global writes are emitted only at the end of the instruction (or before
  any op that ends a basic block). So when a memory access or ``trapcond``
  faults, every global still holds its value from the start of the faulting
  instruction, which is what a precise exception needs. Copy propagation
  removes the extra moves.
"""

from __future__ import annotations

from tcg2wasm.ir.core import GLOBALS, N_GLOBALS, GuestInsn, Op, Temp, TranslationBlock
from tcg2wasm.ir.ops import MASK64, OPS, Cond, Exit, MemOp, OpFlag


class IRBuilder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.n_temps = 0
        self.n_labels = 0
        self._shadow: dict[str, Temp] = {}
        self._consts: dict[int, Temp] = {}

    # -- allocation -----------------------------------------------------
    def new_temp(self) -> Temp:
        t = Temp(N_GLOBALS + self.n_temps)
        self.n_temps += 1
        return t

    def new_label(self) -> int:
        self.n_labels += 1
        return self.n_labels

    # -- raw emission ---------------------------------------------------
    def emit(self, name: str, *args: Temp | int) -> None:
        d = OPS[name]
        if len(args) != d.n_args:
            raise ValueError(f"{name} takes {d.n_args} args, got {len(args)}")
        if d.flags & OpFlag.BB_END:
            self.flush()
            self._consts.clear()
        self.ops.append(Op(name, list(args)))

    def mark(self) -> tuple[int, int, int]:
        """A point to roll back to, taken between instructions.

        The previous instruction's deferred global writes are flushed first: they belong to
        that instruction, so a rollback of the next one must not take them away.
        """
        self.flush()
        return len(self.ops), self.n_temps, self.n_labels

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Forget everything emitted since ``mark`` (an instruction the lifter gave up on)."""
        del self.ops[mark[0]:]
        self.n_temps, self.n_labels = mark[1], mark[2]
        self._shadow.clear()
        self._consts.clear()

    # -- guest globals with deferred writeback ---------------------------
    def get_global(self, name: str) -> Temp:
        return self._shadow.get(name, GLOBALS[name])

    def set_global(self, name: str, value: Temp) -> None:
        """Defer writing ``value`` to global ``name`` until the instruction ends.

        Temps are written once by the value helpers, so a temp can stand in for
        the global directly; a global's own value is copied, because that
        global may itself be written later in the same instruction.
        """
        if value.is_global:
            value = self.mov(value)
        self._shadow[name] = value

    def flush(self) -> None:
        """Write deferred globals back (in global order, for deterministic output)."""
        if not self._shadow:
            return
        for name in sorted(self._shadow, key=lambda n: GLOBALS[n].index):
            self.ops.append(Op("mov_i64", [GLOBALS[name], self._shadow[name]]))
        self._shadow.clear()

    def insn_start(self, pc: int) -> None:
        self.flush()
        self._consts.clear()
        self.ops.append(Op("insn_start", [pc]))

    # -- values -----------------------------------------------------------
    def const(self, value: int) -> Temp:
        """A temp holding ``value``; reused within one instruction."""
        value &= MASK64
        t = self._consts.get(value)
        if t is None:
            t = self.new_temp()
            self.ops.append(Op("movi_i64", [t, value]))
            self._consts[value] = t
        return t

    def _unary(self, name: str, a: Temp, *consts: int) -> Temp:
        out = self.new_temp()
        self.emit(name, out, a, *consts)
        return out

    def _binary(self, name: str, a: Temp, b: Temp, *consts: int) -> Temp:
        out = self.new_temp()
        self.emit(name, out, a, b, *consts)
        return out

    def mov(self, a: Temp) -> Temp:
        return self._unary("mov_i64", a)

    def add(self, a: Temp, b: Temp) -> Temp:
        return self._binary("add_i64", a, b)

    def addi(self, a: Temp, c: int) -> Temp:
        return a if c & MASK64 == 0 else self.add(a, self.const(c))

    def sub(self, a: Temp, b: Temp) -> Temp:
        return self._binary("sub_i64", a, b)

    def mul(self, a: Temp, b: Temp) -> Temp:
        return self._binary("mul_i64", a, b)

    def and_(self, a: Temp, b: Temp) -> Temp:
        return self._binary("and_i64", a, b)

    def andi(self, a: Temp, c: int) -> Temp:
        c &= MASK64
        if c == MASK64:
            return a
        if c == 0xFF:
            return self.ext8u(a)
        if c == 0xFFFF:
            return self.ext16u(a)
        if c == 0xFFFFFFFF:
            return self.ext32u(a)
        return self.and_(a, self.const(c))

    def or_(self, a: Temp, b: Temp) -> Temp:
        return self._binary("or_i64", a, b)

    def ori(self, a: Temp, c: int) -> Temp:
        return a if c & MASK64 == 0 else self.or_(a, self.const(c))

    def xor(self, a: Temp, b: Temp) -> Temp:
        return self._binary("xor_i64", a, b)

    def xori(self, a: Temp, c: int) -> Temp:
        return a if c & MASK64 == 0 else self.xor(a, self.const(c))

    def andc(self, a: Temp, b: Temp) -> Temp:
        return self._binary("andc_i64", a, b)

    def neg(self, a: Temp) -> Temp:
        return self._unary("neg_i64", a)

    def not_(self, a: Temp) -> Temp:
        return self._unary("not_i64", a)

    def shl(self, a: Temp, b: Temp) -> Temp:
        return self._binary("shl_i64", a, b)

    def shli(self, a: Temp, c: int) -> Temp:
        return a if c == 0 else self.shl(a, self.const(c & 63))

    def shr(self, a: Temp, b: Temp) -> Temp:
        return self._binary("shr_i64", a, b)

    def shri(self, a: Temp, c: int) -> Temp:
        return a if c == 0 else self.shr(a, self.const(c & 63))

    def sar(self, a: Temp, b: Temp) -> Temp:
        return self._binary("sar_i64", a, b)

    def sari(self, a: Temp, c: int) -> Temp:
        return a if c == 0 else self.sar(a, self.const(c & 63))

    def rotl(self, a: Temp, b: Temp) -> Temp:
        return self._binary("rotl_i64", a, b)

    def rotr(self, a: Temp, b: Temp) -> Temp:
        return self._binary("rotr_i64", a, b)

    def ext8s(self, a: Temp) -> Temp:
        return self._unary("ext8s_i64", a)

    def ext8u(self, a: Temp) -> Temp:
        return self._unary("ext8u_i64", a)

    def ext16s(self, a: Temp) -> Temp:
        return self._unary("ext16s_i64", a)

    def ext16u(self, a: Temp) -> Temp:
        return self._unary("ext16u_i64", a)

    def ext32s(self, a: Temp) -> Temp:
        return self._unary("ext32s_i64", a)

    def ext32u(self, a: Temp) -> Temp:
        return self._unary("ext32u_i64", a)

    def zext(self, a: Temp, bits: int) -> Temp:
        """Zero-extend the low ``bits`` (8, 16, 32 or 64) of ``a``."""
        return {8: self.ext8u, 16: self.ext16u, 32: self.ext32u}[bits](a) if bits != 64 else a

    def sext(self, a: Temp, bits: int) -> Temp:
        """Sign-extend the low ``bits`` (8, 16, 32 or 64) of ``a``."""
        return {8: self.ext8s, 16: self.ext16s, 32: self.ext32s}[bits](a) if bits != 64 else a

    def bswap(self, a: Temp, bits: int) -> Temp:
        return self._unary(f"bswap{bits}_i64", a)

    def clz(self, a: Temp, dflt: Temp) -> Temp:
        return self._binary("clz_i64", a, dflt)

    def ctz(self, a: Temp, dflt: Temp) -> Temp:
        return self._binary("ctz_i64", a, dflt)

    def ctpop(self, a: Temp) -> Temp:
        return self._unary("ctpop_i64", a)

    def setcond(self, cond: Cond, a: Temp, b: Temp) -> Temp:
        return self._binary("setcond_i64", a, b, int(cond))

    def setcondi(self, cond: Cond, a: Temp, c: int) -> Temp:
        return self.setcond(cond, a, self.const(c))

    def movcond(self, cond: Cond, c1: Temp, c2: Temp, v1: Temp, v2: Temp) -> Temp:
        out = self.new_temp()
        self.emit("movcond_i64", out, c1, c2, v1, v2, int(cond))
        return out

    def deposit(self, a: Temp, b: Temp, pos: int, length: int) -> Temp:
        return self._binary("deposit_i64", a, b, pos, length)

    def extract(self, a: Temp, pos: int, length: int) -> Temp:
        if pos == 0 and length in (8, 16, 32):
            return self.zext(a, length)
        if pos == 0 and length == 64:
            return a
        return self._unary("extract_i64", a, pos, length)

    def sextract(self, a: Temp, pos: int, length: int) -> Temp:
        if pos == 0 and length in (8, 16, 32):
            return self.sext(a, length)
        return self._unary("sextract_i64", a, pos, length)

    def divu(self, a: Temp, b: Temp) -> Temp:
        return self._binary("divu_i64", a, b)

    def remu(self, a: Temp, b: Temp) -> Temp:
        return self._binary("remu_i64", a, b)

    def divs(self, a: Temp, b: Temp) -> Temp:
        return self._binary("divs_i64", a, b)

    def rems(self, a: Temp, b: Temp) -> Temp:
        return self._binary("rems_i64", a, b)

    def mulu2(self, a: Temp, b: Temp) -> tuple[Temp, Temp]:
        lo, hi = self.new_temp(), self.new_temp()
        self.emit("mulu2_i64", lo, hi, a, b)
        return lo, hi

    def muls2(self, a: Temp, b: Temp) -> tuple[Temp, Temp]:
        lo, hi = self.new_temp(), self.new_temp()
        self.emit("muls2_i64", lo, hi, a, b)
        return lo, hi

    def divu2(self, nl: Temp, nh: Temp, d: Temp) -> tuple[Temp, Temp]:
        q, r = self.new_temp(), self.new_temp()
        self.emit("divu2_i64", q, r, nl, nh, d)
        return q, r

    def divs2(self, nl: Temp, nh: Temp, d: Temp) -> tuple[Temp, Temp]:
        q, r = self.new_temp(), self.new_temp()
        self.emit("divs2_i64", q, r, nl, nh, d)
        return q, r

    # -- memory -----------------------------------------------------------
    def load(self, addr: Temp, memop: MemOp) -> Temp:
        out = self.new_temp()
        self.emit("qemu_ld_i64", out, addr, int(memop))
        return out

    def store(self, value: Temp, addr: Temp, memop: MemOp) -> None:
        self.emit("qemu_st_i64", value, addr, int(memop))

    # -- control flow ------------------------------------------------------
    def set_label(self, label: int) -> None:
        self.emit("set_label", label)

    def br(self, label: int) -> None:
        self.emit("br", label)

    def brcond(self, cond: Cond, a: Temp, b: Temp, label: int) -> None:
        self.emit("brcond_i64", a, b, int(cond), label)

    def brcondi(self, cond: Cond, a: Temp, c: int, label: int) -> None:
        self.brcond(cond, a, self.const(c), label)

    def trapcond(self, cond: Cond, a: Temp, b: Temp, excp: int) -> None:
        self.emit("trapcond_i64", a, b, int(cond), int(excp))

    def goto_tb(self, pc: int) -> None:
        self.emit("goto_tb", pc & MASK64)

    def goto_ptr(self, target: Temp) -> None:
        self.emit("goto_ptr", target)

    def exit_tb(self, code: Exit, pc: int) -> None:
        self.emit("exit_tb", int(code), pc & MASK64)

    # -- result ------------------------------------------------------------
    def finish(self, pc: int, size: int, insns: list[GuestInsn], fallback_insns: int = 0) -> TranslationBlock:
        self.flush()
        return TranslationBlock(pc, size, insns, self.ops, self.n_temps, self.n_labels, fallback_insns)
