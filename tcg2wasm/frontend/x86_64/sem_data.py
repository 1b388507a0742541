"""Data movement: mov and its extending forms, lea, xchg, push/pop, sign-extension of rax."""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics

M = ix.Mnemonic
R = ix.Register


@semantics(M.MOV)
def lift_mov(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.op_kind(0) == ix.OpKind.REGISTER and ix.RegisterInfo(ins.op_register(0)).size == 0:
        raise Unsupported("mov to a non-GPR")
    ctx.write(0, ctx.read(1))


@semantics(M.MOVZX)
def lift_movzx(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.write(0, ctx.read(1))


@semantics(M.MOVSX, M.MOVSXD)
def lift_movsx(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.write(0, ctx.read_signed(1))


@semantics(M.LEA)
def lift_lea(ctx: LiftContext, ins: ix.Instruction) -> None:
    ins_seg = ins.memory_segment
    addr = ctx.ea() if ins_seg not in (ix.Register.FS, ix.Register.GS) else None
    if addr is None:  # lea ignores segment bases
        raise Unsupported("lea with segment override")
    ctx.write(0, addr)


@semantics(M.XCHG)
def lift_xchg(ctx: LiftContext, ins: ix.Instruction) -> None:
    addr = ctx.ea() if ctx.is_mem(0) or ctx.is_mem(1) else None
    a = ctx.read(0, addr)
    c = ctx.read(1, addr)
    if ctx.is_mem(0):  # memory first, so a fault leaves the register untouched
        ctx.write(0, c, addr)
        ctx.write(1, a, addr)
    else:
        ctx.write(1, a, addr)
        ctx.write(0, c, addr)


@semantics(M.PUSH)
def lift_push(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = ctx.op_bits(0) if ins.op_kind(0) in (ix.OpKind.REGISTER, ix.OpKind.MEMORY) else \
        8 * ins.stack_pointer_increment * -1
    if ins.op_kind(0) == ix.OpKind.REGISTER and ix.RegisterInfo(ins.op_register(0)).size == 0:
        raise Unsupported("push of a segment register")
    value = ctx.read(0) if ins.op_kind(0) in (ix.OpKind.REGISTER, ix.OpKind.MEMORY) else \
        ctx.b.const(ins.immediate(0))
    ctx.push(value, bits)


@semantics(M.POP)
def lift_pop(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = ctx.op_bits(0)
    if ctx.is_mem(0):
        rsp = ctx.get_gpr("rsp")
        value = ctx.load(rsp, bits)
        new_rsp = ctx.b.addi(rsp, bits // 8)
        ctx.set_gpr("rsp", new_rsp)  # the address of pop's memory operand uses the incremented rsp
        addr = ctx.ea()
        ctx.store(addr, value, bits)
        return
    value = ctx.pop(bits)
    ctx.write(0, value)


def _sign_extend_accumulator(ctx: LiftContext, bits: int) -> None:
    """cbw/cwde/cdqe: rax's low half sign-extended into the full operand width."""
    regs = {16: ix.Register.AX, 32: ix.Register.EAX, 64: ix.Register.RAX}
    src = ctx.b.sext(ctx.get_gpr("rax"), bits // 2)
    ctx.set_reg(regs[bits], src)


_WIDTH = {M.CBW: 16, M.CWDE: 32, M.CDQE: 64, M.CWD: 16, M.CDQ: 32, M.CQO: 64}


@semantics(M.CBW, M.CWDE, M.CDQE)
def lift_cbw_cwde_cdqe(ctx: LiftContext, ins: ix.Instruction) -> None:
    _sign_extend_accumulator(ctx, _WIDTH[ins.mnemonic])


def _sign_into_rdx(ctx: LiftContext, bits: int) -> None:
    """cwd/cdq/cqo: rdx (of the operand width) = all copies of the accumulator's sign bit."""
    regs = {16: ix.Register.DX, 32: ix.Register.EDX, 64: ix.Register.RDX}
    b = ctx.b
    sign = b.sari(b.sext(ctx.get_gpr("rax"), bits), 63)
    ctx.set_reg(regs[bits], sign)


@semantics(M.CWD, M.CDQ, M.CQO)
def lift_cwd_cdq_cqo(ctx: LiftContext, ins: ix.Instruction) -> None:
    _sign_into_rdx(ctx, _WIDTH[ins.mnemonic])


@semantics(M.PAUSE)
def lift_pause(ctx: LiftContext, ins: ix.Instruction) -> None:
    """F3 90 is pause, but with REX.B the 90 is xchg r8, rax/eax/ax, as for a plain 90: iced-x86 1.21
    decodes F3 REX.B 90 as pause, the CPU and QEMU execute the xchg (found by the native oracle)."""
    rex = ctx.insn_bytes[-2] if len(ctx.insn_bytes) >= 2 else 0
    if not (0x40 <= rex <= 0x4F and rex & 1):
        return
    bits = 64 if rex & 8 else 16 if 0x66 in ctx.insn_bytes[:-2] else 32
    r8, acc = {64: (R.R8, R.RAX), 32: (R.R8D, R.EAX), 16: (R.R8W, R.AX)}[bits]
    a, c = ctx.get_reg(r8), ctx.get_reg(acc)
    ctx.set_reg(r8, c)
    ctx.set_reg(acc, a)


@semantics(M.NOP, M.ENDBR64, M.PREFETCHNTA, M.PREFETCHT0, M.PREFETCHT1, M.PREFETCHT2, M.PREFETCHW,
           M.LFENCE, M.MFENCE, M.SFENCE)
def lift_nop(ctx: LiftContext, ins: ix.Instruction) -> None:
    """Multi-byte nops, hints and fences: no architectural effect in a single-threaded guest."""
