"""The x87 register stack, tag and status words as the lifters see them (no semantics registered here).

The registers are globals by stack position (``st0_lo``/``st0_hi`` ... ``st7``):
a push moves every value one place down and a pop one place up, so an
instruction names its operands statically; TOP is only counted in the status
word ``fpsw`` (bits 11-13). ``fptag`` has bit i set when st(i) is in use.
ES and B are not kept in ``fpsw``: ``status_word`` computes them from the
exception flags and the masks, as the CPU does when the word is read (an
``fldcw`` that unmasks a raised flag sets ES: measured).

An op's flags (``x87_float``) carry ``NO_WRITE`` when an unmasked exception
stops the instruction: ``guarded`` branches over the instruction's writes
then, and the status word still gets the flags. The next waiting x87
instruction finds the exception pending (``check_pending``) and faults with
``Excp.X87_FPE``, as the CPU raises #MF there.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm import abi
from tcg2wasm.abi import Excp
from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.ir import Cond, IRBuilder, Temp
from tcg2wasm.ir import x87_float as xf

R = ix.Register
Value = tuple[Temp, Temp]

EXCEPTION_BITS = xf.EXCEPTIONS
TOP_SHIFT = 11
TOP_MASK = 7 << TOP_SHIFT
CONDITION_BITS = xf.C0 | xf.C1 | xf.C2 | xf.C3
#: Status bits an arithmetic op's flags may hold (C1 is defined by the op, C0, C2, C3 kept).
_ARITH_STATUS = EXCEPTION_BITS | xf.SF | xf.C1


def st_index(reg: int) -> int:
    if not R.ST0 <= reg <= R.ST7:
        raise Unsupported(f"x87 operand {reg}")
    return reg - R.ST0


class Fpu:
    """The x87 state of one instruction being lifted."""

    def __init__(self, ctx: LiftContext) -> None:
        self.ctx = ctx
        self.b = ctx.b

    # -- registers ------------------------------------------------------------------------
    def reg(self, i: int) -> Value:
        return self.b.get_global(f"st{i}_lo"), self.b.get_global(f"st{i}_hi")

    def set_reg(self, i: int, value: Value) -> None:
        self.b.set_global(f"st{i}_lo", value[0])
        self.b.set_global(f"st{i}_hi", value[1])

    @property
    def cw(self) -> Temp:
        return self.b.get_global("fpcw")

    @property
    def tag(self) -> Temp:
        return self.b.get_global("fptag")

    @property
    def sw(self) -> Temp:
        return self.b.get_global("fpsw")

    def empty(self, *regs: int) -> Temp:
        """Nonzero when one of the stack registers ``regs`` is empty (the ops' ``empty`` input)."""
        mask = sum(1 << i for i in set(regs))
        return self.b.andc(self.b.const(mask), self.tag)

    def indefinite(self) -> Value:
        return self.b.const(xf.INDEFINITE[0]), self.b.const(xf.INDEFINITE[1])

    # -- the stack ---------------------------------------------------------------------------
    def push_guard(self, value: Value, flags: Temp | None = None) -> tuple[Value, Temp]:
        """A value about to be pushed, and flags: st7 in use is a stack overflow (IE, SF, C1).

        Masked, the indefinite is pushed instead; unmasked, nothing is (NO_WRITE). The flags of
        the value's conversion are dropped then (measured: no DE for a denormal that overflows).
        """
        b = self.b
        full = b.extract(self.tag, 7, 1)
        unmasked = b.andc(full, self.cw)  # IE is mask bit 0
        overflow = b.or_(b.and_(b.neg(full), b.const(xf.IE | xf.SF | xf.C1)), b.shli(unmasked, 16))
        lo = b.movcond(Cond.NE, full, b.const(0), b.const(xf.INDEFINITE[0]), value[0])
        hi = b.movcond(Cond.NE, full, b.const(0), b.const(xf.INDEFINITE[1]), value[1])
        if flags is None:
            return (lo, hi), overflow
        # an overflowing load does not convert: its own flags (DE of a denormal...) are not raised;
        # a source register that is empty as well reports the underflow (C1 = 0), as measured
        overflow_wins = b.andc(full, b.extract(flags, 6, 1))  # SF is bit 6
        return (lo, hi), b.movcond(Cond.NE, overflow_wins, b.const(0), overflow, flags)

    def push(self, value: Value) -> None:
        """st7 <- st6 ... st1 <- st0, st0 <- value; tag and TOP follow (no overflow check here)."""
        for i in range(7, 0, -1):
            self.set_reg(i, self.reg(i - 1))
        self.set_reg(0, value)
        b = self.b
        b.set_global("fptag", b.andi(b.ori(b.shli(self.tag, 1), 1), 0xFF))
        self._move_top(-1)

    def pop(self) -> None:
        """st0 <- st1 ... st6 <- st7, st7 <- old st0 (now empty); TOP + 1."""
        old = self.reg(0)
        for i in range(7):
            self.set_reg(i, self.reg(i + 1))
        self.set_reg(7, old)
        self.b.set_global("fptag", self.b.shri(self.tag, 1))
        self._move_top(1)

    def _move_top(self, delta: int) -> None:
        b = self.b
        top = b.andi(b.addi(b.shri(self.sw, TOP_SHIFT), delta), 7)
        b.set_global("fpsw", b.deposit(self.sw, top, TOP_SHIFT, 3))

    def set_tag_bit(self, i: int, valid: bool) -> None:
        b = self.b
        b.set_global("fptag", b.ori(self.tag, 1 << i) if valid else b.andi(self.tag, ~(1 << i) & 0xFF))

    # -- status ------------------------------------------------------------------------------
    def merge_status(self, flags: Temp, defined: int = _ARITH_STATUS) -> None:
        """fpsw: the exception flags and SF of ``flags`` added (sticky), its ``defined`` C bits replaced."""
        b = self.b
        replaced = defined & CONDITION_BITS
        kept = b.andi(self.sw, ~replaced & 0xFFFF) if replaced else self.sw
        b.set_global("fpsw", b.or_(kept, b.andi(flags, defined | EXCEPTION_BITS | xf.SF)))

    def merge_status_keeping_c1(self, flags: Temp) -> None:
        """merge_status where C1 is cleared only by a stack fault (SF) and kept otherwise (fcmovcc)."""
        b = self.b
        defined = b.movcond(Cond.TSTNE, flags, b.const(xf.SF), b.const(xf.C1), b.const(0))
        b.set_global("fpsw", b.or_(b.andc(self.sw, defined), b.andi(flags, EXCEPTION_BITS | xf.SF)))

    def merge_status_codes(self, flags: Temp) -> None:
        """merge_status for fprem: C0-C3 replaced, or only C1 and C2 when the flags carry KEEP_CODES."""
        b = self.b
        defined = b.movcond(Cond.TSTNE, flags, b.const(xf.KEEP_CODES), b.const(xf.C1 | xf.C2), b.const(CONDITION_BITS))
        kept = b.andc(self.sw, defined)
        new = b.and_(flags, b.ori(defined, EXCEPTION_BITS | xf.SF))
        b.set_global("fpsw", b.or_(kept, new))

    def guarded(self, flags: Temp, writes: Callable[[], None]) -> None:
        """Run ``writes`` (the instruction's results) unless ``flags`` has NO_WRITE."""
        b = self.b
        skip = b.new_label()
        b.brcond(Cond.TSTNE, flags, b.const(xf.NO_WRITE), skip)
        writes()
        b.set_label(skip)

    def check_pending(self) -> None:
        """A waiting instruction faults (#MF) when an unmasked exception is flagged (ES)."""
        b = self.b
        pending = b.andc(b.andi(self.sw, EXCEPTION_BITS), self.cw)
        b.trapcond(Cond.NE, pending, b.const(0), Excp.X87_FPE)

    def note_instruction(self, addr: Temp | None = None) -> None:
        """fpip, fpop (and fpdp for a memory operand): what fnstenv and fnsave store of the last instruction."""
        ctx, b = self.ctx, self.b
        b.set_global("fpip", b.const(ctx.pc))
        b.set_global("fpop", b.const(x87_opcode(ctx.ins, self.raw_bytes())))
        if addr is not None:
            b.set_global("fpdp", addr)

    def raw_bytes(self) -> bytes:
        return self.ctx.insn_bytes

    def status_word(self) -> Temp:
        """fpsw as fnstsw stores it: with ES (bit 7) and B (bit 15) set when an unmasked flag is up."""
        b = self.b
        pending = b.andc(b.andi(self.sw, EXCEPTION_BITS), self.cw)
        es = b.setcondi(Cond.NE, pending, 0)
        return b.or_(self.sw, b.or_(b.shli(es, 7), b.shli(es, 15)))


def rotl(b: IRBuilder, value: Temp, amount: Temp, width: int) -> Temp:
    """Rotate the low ``width`` bits of ``value`` left by ``amount`` (0 <= amount < width)."""
    left = b.shl(value, amount)
    right = b.shr(value, b.sub(b.const(width), amount))
    return b.andi(b.or_(left, right), (1 << width) - 1)


def top_of(fpu: Fpu) -> Temp:
    return fpu.b.extract(fpu.sw, TOP_SHIFT, 3)


def rotate_to_top(fpu: Fpu, new_top: Temp) -> None:
    """Make TOP ``new_top`` without moving registers physically: positions and tags rotate."""
    b = fpu.b
    d = b.andi(b.sub(new_top, top_of(fpu)), 7)
    old = [fpu.reg(i) for i in range(8)]
    is_d = [b.setcondi(Cond.EQ, d, k) for k in range(8)]
    for i in range(8):
        lo, hi = old[i]
        for k in range(1, 8):
            src = old[(i + k) & 7]
            lo = b.movcond(Cond.NE, is_d[k], b.const(0), src[0], lo)
            hi = b.movcond(Cond.NE, is_d[k], b.const(0), src[1], hi)
        fpu.set_reg(i, (lo, hi))
    b.set_global("fptag", rotl(b, fpu.tag, b.andi(b.sub(b.const(8), d), 7), 8))
    b.set_global("fpsw", b.deposit(fpu.sw, new_top, TOP_SHIFT, 3))


def reset_fpu(fpu: Fpu) -> None:
    """fninit (and the end of fnsave): the default control word, status and tag words cleared,
    the last-instruction pointers zero; the registers keep their bits at their physical places
    (TOP becomes 0, so the stack positions rotate by the old TOP)."""
    b = fpu.b
    rotate_to_top(fpu, b.const(0))
    b.set_global("fpcw", b.const(abi.FPCW_DEFAULT))
    b.set_global("fpsw", b.const(0))
    b.set_global("fptag", b.const(0))
    for name in ("fpip", "fpdp", "fpop"):
        b.set_global(name, b.const(0))


def x87_opcode(ins: ix.Instruction, raw: bytes) -> int:
    """The 11-bit x87 opcode: the low 3 bits of the D8-DF byte, then the ModRM byte."""
    for i, byte in enumerate(raw):
        if 0xD8 <= byte <= 0xDF and i + 1 < len(raw):
            return ((byte & 7) << 8) | raw[i + 1]
    return 0
