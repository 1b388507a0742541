"""The lifting context: operand access, addressing, flags and control flow for one instruction.

Semantic functions (``sem_*.py``) receive a ``LiftContext`` and an iced-x86
``Instruction`` and express the instruction with the helpers here, which know
x86's rules: 32-bit register writes zero-extend, 8/16-bit writes merge,
ah/bh/ch/dh are bits 8..15, rip-relative and fs/gs-based addressing, and the
exact flag results of arithmetic. Flags are IR globals holding 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.ir import Cond, Excp, Exit, IRBuilder, MemOp, Temp
from tcg2wasm.ir.ops import MASK64

CC = ix.ConditionCode
OK = ix.OpKind
R = ix.Register

_GPR64 = [R.RAX, R.RCX, R.RDX, R.RBX, R.RSP, R.RBP, R.RSI, R.RDI,
          R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15]
_GPR_NAME = {r: n for r, n in zip(_GPR64, ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"), strict=True)}
_HIGH_BYTE = {R.AH: "rax", R.CH: "rcx", R.DH: "rdx", R.BH: "rbx"}
_IMMEDIATE_KINDS = {
    OK.IMMEDIATE8, OK.IMMEDIATE8_2ND, OK.IMMEDIATE16, OK.IMMEDIATE32, OK.IMMEDIATE64,
    OK.IMMEDIATE8TO16, OK.IMMEDIATE8TO32, OK.IMMEDIATE8TO64, OK.IMMEDIATE32TO64,
}
_MEMOP_BY_BITS = {8: MemOp.UB, 16: MemOp.UW, 32: MemOp.UL, 64: MemOp.UQ}
#: Legacy SSE instructions whose 16-byte memory operand may be misaligned; every other one raises #GP
#: unless the address is a multiple of 16 (SDM vol. 1, 14.9 / vol. 2 "Exceptions", cmpxchg16b too).
#: 16-byte memory operands without an alignment check; the SSE4.2 string compares too (SDM vol. 1 12.10.3:
#: their memory operand need not be aligned; found by tcg2wasm fuzz streams, seed 514: pcmpistri raised #GP)
UNALIGNED_128 = frozenset({ix.Mnemonic.MOVUPS, ix.Mnemonic.MOVUPD, ix.Mnemonic.MOVDQU, ix.Mnemonic.LDDQU,
                           ix.Mnemonic.PCMPESTRI, ix.Mnemonic.PCMPESTRM, ix.Mnemonic.PCMPISTRI, ix.Mnemonic.PCMPISTRM})


class Unsupported(Exception):
    """The lifter does not cover this instruction (or this form of it): it goes to the fallback."""


def gpr_location(reg: int) -> tuple[str, int, int]:
    """(global name, bit offset, bit width) of an iced general-purpose register."""
    high = _HIGH_BYTE.get(reg)  # type: ignore[call-overload]  # iced Register values are ints
    if high is not None:
        return high, 8, 8
    info = ix.RegisterInfo(reg)  # type: ignore[arg-type]  # iced Register values are ints
    full = info.full_register
    name = _GPR_NAME.get(full)
    if name is None:
        raise Unsupported(f"register {reg}")
    return name, 0, 8 * info.size


def _has_32bit_address(ins: ix.Instruction) -> bool:
    """Whether a memory operand uses 32-bit addressing (its base or index is a 32-bit register)."""
    return any(r != R.NONE and ix.RegisterInfo(r).size == 4 for r in (ins.memory_base, ins.memory_index))


_INFO = ix.InstructionInfoFactory()
_RMW_ACCESS = (ix.OpAccess.READ_WRITE, ix.OpAccess.READ_COND_WRITE)


def reads_to_write(ins: ix.Instruction) -> bool:
    """Whether ``ins`` accesses one memory operand, read and written back (cmpxchg: written back always)."""
    if not any(ins.op_kind(i) == OK.MEMORY for i in range(ins.op_count)):
        return False
    used = _INFO.info(ins).used_memory()
    return len(used) == 1 and used[0].access in _RMW_ACCESS


def memop_for(bits: int, signed: bool = False) -> MemOp:
    m = _MEMOP_BY_BITS[bits]
    return MemOp(m | MemOp.SIGN) if signed and bits < 64 else m


class LiftContext:
    """Per-TB lifting state plus the helpers semantic functions use."""

    def __init__(self, builder: IRBuilder) -> None:
        self.b = builder
        self.ins = ix.Instruction()  # the instruction being lifted
        self.pc = 0
        self.next_pc = 0
        self.ended = False  # the current instruction emitted a terminator
        self.insn_bytes = b""  # its encoding (the x87 lifters store its opcode)
        #: Unicorn-shaped lifting (under tcg2wasm.unicorn hooks): syscall leaves rcx/r11 as Unicorn does,
        #: and rep loops as Unicorn's -- rcx is tested at the top only, so the last iteration is followed
        #: by one more execution of the instruction that just leaves (see sem_string.py)
        self.unicorn_rep = False
        #: The instruction reads and writes back its one memory operand (add [m], r; xchg; cmpxchg; inc [m]...):
        #: its loads check write permission first, so that an unwritable page faults as a write, as on the CPU.
        self.rmw_memory = False

    # -- registers ---------------------------------------------------------
    def get_reg(self, reg: int) -> Temp:
        """Value of a register, zero-extended to 64 bits."""
        name, pos, bits = gpr_location(reg)
        full = self.b.get_global(name)
        if pos == 0 and bits == 64:
            return full
        return self.b.extract(full, pos, bits)

    def set_reg(self, reg: int, value: Temp) -> None:
        """Write a register with x86's rules (32-bit writes zero-extend, 8/16-bit merge)."""
        name, pos, bits = gpr_location(reg)
        if bits == 64:
            self.b.set_global(name, value)
        elif bits == 32:
            self.b.set_global(name, self.b.ext32u(value))
        else:
            self.b.set_global(name, self.b.deposit(self.b.get_global(name), value, pos, bits))

    def get_gpr(self, name: str) -> Temp:
        return self.b.get_global(name)

    def set_gpr(self, name: str, value: Temp) -> None:
        self.b.set_global(name, value)

    # -- xmm registers: two i64 globals each ------------------------------------
    @staticmethod
    def xmm_name(reg: int) -> str:
        if not R.XMM0 <= reg <= R.XMM15:
            raise Unsupported(f"register {reg} is not xmm0..xmm15")
        return f"xmm{reg - R.XMM0}"

    def get_xmm(self, reg: int) -> tuple[Temp, Temp]:
        """(low, high) 64-bit halves of an xmm register."""
        name = self.xmm_name(reg)
        return self.b.get_global(f"{name}_lo"), self.b.get_global(f"{name}_hi")

    def set_xmm(self, reg: int, lo: Temp | None, hi: Temp | None) -> None:
        """Write the halves of an xmm register (None leaves a half unchanged)."""
        name = self.xmm_name(reg)
        if lo is not None:
            self.b.set_global(f"{name}_lo", lo)
        if hi is not None:
            self.b.set_global(f"{name}_hi", hi)

    def read_xmm_operand(self, i: int) -> tuple[Temp, Temp]:
        """Operand ``i`` as (low, high): an xmm register, or memory of 16/8/4 bytes (zero-extended)."""
        ins = self.ins
        if ins.op_kind(i) == OK.REGISTER:
            return self.get_xmm(ins.op_register(i))
        if ins.op_kind(i) != OK.MEMORY:
            raise Unsupported(f"operand kind {ins.op_kind(i)} for an xmm operand")
        addr = self.ea()
        size = ix.MemorySizeExt.size(ins.memory_size)
        if size == 16:
            self.check_aligned16(addr)
            return self.load(addr, 64), self.load(self.b.addi(addr, 8), 64)
        if size in (4, 8):
            return self.load(addr, 8 * size), self.b.const(0)
        raise Unsupported(f"xmm memory operand of {size} bytes")

    def check_aligned16(self, addr: Temp) -> None:
        """#GP at this instruction if its 16-byte memory operand must be aligned and is not.

        The CPU checks before any access, so nothing has been read or written (Unicorn does not
        check: docs/testing.md, known differences)."""
        if self.ins.mnemonic not in UNALIGNED_128:
            self.b.trapcond(Cond.TSTNE, addr, self.b.const(15), Excp.GP)

    # -- operands ------------------------------------------------------------
    def op_bits(self, i: int) -> int:
        """Width in bits of operand ``i`` (immediates take the width of operand 0)."""
        ins = self.ins
        kind = ins.op_kind(i)
        if kind == OK.REGISTER:
            return 8 * ix.RegisterInfo(ins.op_register(i)).size
        if kind == OK.MEMORY:
            size = ix.MemorySizeExt.size(ins.memory_size)
            if size not in (1, 2, 4, 8):
                raise Unsupported(f"memory operand of {size} bytes")
            return 8 * size
        if kind in _IMMEDIATE_KINDS and i > 0:
            return self.op_bits(0)
        raise Unsupported(f"operand kind {kind}")

    def ea(self, extra: Temp | None = None) -> Temp:
        """Effective (linear) address of the memory operand, including fs/gs base.

        ``extra``: a byte offset added inside the address-size wrap (bt's bit offset: with 0x67 the
        whole sum wraps at 4 GiB; found by ``tcg2wasm fuzz streams``)."""
        ins = self.ins
        if ins.is_ip_rel_memory_operand:
            addr = self.b.const(ins.ip_rel_memory_address)
            addr = addr if extra is None else self.b.add(addr, extra)
        else:
            addr = self._register_address(ins, extra)
        return self.add_segment(addr, ins.memory_segment)

    def _register_address(self, ins: ix.Instruction, extra: Temp | None = None) -> Temp:
        """base + index * scale + displacement (+ extra) of a memory operand (no segment)."""
        b = self.b
        addr: Temp | None = None
        if ins.memory_base != R.NONE:
            addr = self.get_reg(ins.memory_base)
        if ins.memory_index != R.NONE:
            index = self.get_reg(ins.memory_index)
            scale = ins.memory_index_scale
            if scale > 1:
                index = b.shli(index, scale.bit_length() - 1)
            addr = index if addr is None else b.add(addr, index)
        disp = ins.memory_displacement & MASK64
        total = b.const(disp) if addr is None else b.addi(addr, disp)
        if extra is not None:
            total = b.add(total, extra)
        return b.ext32u(total) if _has_32bit_address(ins) else total  # 32-bit address size (0x67): wraps at 4 GiB

    def add_segment(self, addr: Temp, segment: int) -> Temp:
        if segment == R.FS:
            return self.b.add(addr, self.b.get_global("fs_base"))
        if segment == R.GS:
            return self.b.add(addr, self.b.get_global("gs_base"))
        return addr

    def load(self, addr: Temp, bits: int, signed: bool = False) -> Temp:
        memop = memop_for(bits, signed)
        return self.b.load(addr, MemOp(memop | MemOp.FOR_WRITE) if self.rmw_memory else memop)

    def store(self, addr: Temp, value: Temp, bits: int) -> None:
        self.b.store(value, addr, memop_for(bits))

    def read(self, i: int, addr: Temp | None = None) -> Temp:
        """Value of operand ``i`` zero-extended to 64 bits (pass ``addr`` to reuse an EA)."""
        ins = self.ins
        kind = ins.op_kind(i)
        if kind == OK.REGISTER:
            return self.get_reg(ins.op_register(i))
        if kind == OK.MEMORY:
            return self.load(self.ea() if addr is None else addr, self.op_bits(i))
        if kind in _IMMEDIATE_KINDS:
            bits = self.op_bits(i)
            return self.b.const(ins.immediate(i) & ((1 << bits) - 1))
        raise Unsupported(f"operand kind {kind}")

    def read_signed(self, i: int) -> Temp:
        """Value of operand ``i`` sign-extended to 64 bits."""
        return self.b.sext(self.read(i), self.op_bits(i))

    def write(self, i: int, value: Temp, addr: Temp | None = None) -> None:
        """Write operand ``i`` (``value`` may carry garbage above the operand width)."""
        ins = self.ins
        kind = ins.op_kind(i)
        if kind == OK.REGISTER:
            self.set_reg(ins.op_register(i), value)
        elif kind == OK.MEMORY:
            self.store(self.ea() if addr is None else addr, value, self.op_bits(i))
        else:
            raise Unsupported(f"write to operand kind {kind}")

    def is_mem(self, i: int) -> bool:
        return self.ins.op_kind(i) == OK.MEMORY

    def rmw(self, fn: Callable[[Temp], Temp], i: int = 0) -> None:
        """Read-modify-write operand ``i`` computing the address once."""
        addr = self.ea() if self.is_mem(i) else None
        self.write(i, fn(self.read(i, addr)), addr)

    # -- flags -----------------------------------------------------------------
    def set_flag(self, name: str, value: Temp) -> None:
        self.b.set_global(name, value)

    def flag(self, name: str) -> Temp:
        return self.b.get_global(name)

    def set_flag_const(self, name: str, value: int) -> None:
        self.b.set_global(name, self.b.const(value))

    def sign_bit(self, value: Temp, bits: int) -> Temp:
        return self.b.extract(value, bits - 1, 1)

    def set_zsp(self, res: Temp, bits: int) -> None:
        """ZF, SF and PF of a result (``res`` may carry garbage above ``bits``)."""
        b = self.b
        z = b.zext(res, bits)
        self.set_flag("zf", b.setcondi(Cond.EQ, z, 0))
        self.set_flag("sf", self.sign_bit(res, bits))
        self.set_flag("pf", self.parity(res))

    def parity(self, res: Temp) -> Temp:
        """PF: 1 when the low byte has an even number of set bits."""
        b = self.b
        return b.xori(b.andi(b.ctpop(b.ext8u(res)), 1), 1)

    def set_af(self, a: Temp, b_: Temp, res: Temp) -> None:
        b = self.b
        self.set_flag("af", b.extract(b.xor(b.xor(a, b_), res), 4, 1))

    def flags_add(self, a: Temp, b_: Temp, res: Temp, bits: int, carry_in: Temp | None = None) -> None:
        """All six flags of ``res = a + b_ (+ carry_in)``; a, b_ zero-extended to ``bits``."""
        b = self.b
        rz = b.zext(res, bits)
        if bits < 64:
            cf = b.extract(res, bits, 1)
        elif carry_in is None:
            cf = b.setcond(Cond.LTU, rz, a)
        else:  # res < a, or res == a with a carry in (b_ was all ones)
            cf = b.or_(b.setcond(Cond.LTU, rz, a), b.and_(b.setcond(Cond.EQ, rz, a), carry_in))
        self.set_flag("cf", cf)
        self.set_flag("of", self.sign_bit(b.and_(b.xor(a, rz), b.xor(b_, rz)), bits))
        self.set_af(a, b_, rz)
        self.set_zsp(rz, bits)

    def flags_sub(self, a: Temp, b_: Temp, res: Temp, bits: int, borrow_in: Temp | None = None) -> None:
        """All six flags of ``res = a - b_ (- borrow_in)``; a, b_ zero-extended to ``bits``."""
        b = self.b
        rz = b.zext(res, bits)
        if borrow_in is None:
            cf = b.setcond(Cond.LTU, a, b_)
        else:
            cf = b.or_(b.setcond(Cond.LTU, a, b_), b.and_(b.setcond(Cond.EQ, a, b_), borrow_in))
        self.set_flag("cf", cf)
        self.set_flag("of", self.sign_bit(b.and_(b.xor(a, b_), b.xor(a, rz)), bits))
        self.set_af(a, b_, rz)
        self.set_zsp(rz, bits)

    def flags_logic(self, res: Temp, bits: int) -> None:
        """and/or/xor/test: CF = OF = 0, AF = 0 (architecturally undefined), ZF/SF/PF from res."""
        for name in ("cf", "of", "af"):
            self.set_flag_const(name, 0)
        self.set_zsp(res, bits)

    def condition(self, cc: int) -> Temp:
        """0/1 value of an x86 condition code (iced ConditionCode)."""
        b = self.b
        f = self.flag
        match cc:
            case CC.O:
                return f("of")
            case CC.NO:
                return b.xori(f("of"), 1)
            case CC.B:
                return f("cf")
            case CC.AE:
                return b.xori(f("cf"), 1)
            case CC.E:
                return f("zf")
            case CC.NE:
                return b.xori(f("zf"), 1)
            case CC.BE:
                return b.or_(f("cf"), f("zf"))
            case CC.A:
                return b.xori(b.or_(f("cf"), f("zf")), 1)
            case CC.S:
                return f("sf")
            case CC.NS:
                return b.xori(f("sf"), 1)
            case CC.P:
                return f("pf")
            case CC.NP:
                return b.xori(f("pf"), 1)
            case CC.L:
                return b.xor(f("sf"), f("of"))
            case CC.GE:
                return b.xori(b.xor(f("sf"), f("of")), 1)
            case CC.LE:
                return b.or_(f("zf"), b.xor(f("sf"), f("of")))
            case CC.G:
                return b.xori(b.or_(f("zf"), b.xor(f("sf"), f("of"))), 1)
        raise Unsupported(f"condition code {cc}")

    # -- stack ---------------------------------------------------------------
    def push(self, value: Temp, bits: int = 64) -> None:
        rsp = self.b.addi(self.get_gpr("rsp"), -(bits // 8))
        self.store(rsp, value, bits)
        self.set_gpr("rsp", rsp)

    def pop(self, bits: int = 64) -> Temp:
        rsp = self.get_gpr("rsp")
        value = self.load(rsp, bits)
        self.set_gpr("rsp", self.b.addi(rsp, bits // 8))
        return value

    # -- control flow --------------------------------------------------------
    def jump(self, target: int) -> None:
        self.b.goto_tb(target)
        self.ended = True

    def check_canonical_target(self, target: Temp) -> None:
        """#GP at this branch if ``target`` is not canonical: the CPU faults on the branch itself, before
        it pushes or pops anything (SDM vol. 2, JMP/CALL/RET, 64-bit mode exceptions)."""
        b = self.b
        b.trapcond(Cond.GEU, b.addi(target, 1 << 47), b.const(1 << 48), Excp.GP)

    def jump_indirect(self, target: Temp) -> None:
        self.b.goto_ptr(target)
        self.ended = True

    def branch_if(self, cond: Temp, target: int) -> None:
        """Jump to ``target`` when ``cond`` (0/1) is set, else continue at the next instruction."""
        b = self.b
        taken = b.new_label()
        b.brcondi(Cond.NE, cond, 0, taken)
        b.goto_tb(self.next_pc)
        b.set_label(taken)
        b.goto_tb(target)
        self.ended = True

    def exit(self, code: Exit, pc: int | None = None) -> None:
        self.b.exit_tb(code, self.next_pc if pc is None else pc)
        self.ended = True
