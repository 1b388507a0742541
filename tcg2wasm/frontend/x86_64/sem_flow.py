"""Control transfers: jmp, jcc, jrcxz/loop, call, ret, and the exits to the host (syscall, hlt, cpuid...)."""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.ir import Cond, Exit, MemOp

M = ix.Mnemonic
OK = ix.OpKind
_NEAR = (OK.NEAR_BRANCH64, OK.NEAR_BRANCH32, OK.NEAR_BRANCH16)


def _target_operand(ctx: LiftContext, ins: ix.Instruction, pushes: bool = False):
    """Constant target of a direct branch, or the Temp holding an indirect one.

    ``pushes`` (call): the push's stack fault comes before the #GP of a non-canonical target (SDM vol. 2
    CALL, operation: the stack check first; found by ``tcg2wasm fuzz streams``): a write probe of the
    stack slot (a load with ``MemOp.FOR_WRITE``) goes before the target check."""
    if ins.op_kind(0) in _NEAR:
        return ins.near_branch_target
    if ctx.op_bits(0) != 64:
        raise Unsupported("indirect branch with a 16/32-bit operand")
    target = ctx.read(0)
    if target.is_global:  # `call rsp`: the target is rsp as it was before the push (found by fuzz streams)
        target = ctx.b.mov(target)
    if pushes:
        ctx.b.load(ctx.b.addi(ctx.get_gpr("rsp"), -8), MemOp(MemOp.UQ | MemOp.FOR_WRITE))
    ctx.check_canonical_target(target)
    return target


@semantics(M.JMP)
def lift_jmp(ctx: LiftContext, ins: ix.Instruction) -> None:
    target = _target_operand(ctx, ins)
    if isinstance(target, int):
        ctx.jump(target)
    else:
        ctx.jump_indirect(target)


@semantics(M.JO, M.JNO, M.JB, M.JAE, M.JE, M.JNE, M.JBE, M.JA, M.JS, M.JNS, M.JP, M.JNP, M.JL, M.JGE, M.JLE, M.JG)
def lift_jcc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.branch_if(ctx.condition(ins.condition_code), ins.near_branch_target)


@semantics(M.JRCXZ, M.JECXZ)
def lift_jrcxz(ctx: LiftContext, ins: ix.Instruction) -> None:
    bits = 64 if ins.mnemonic == M.JRCXZ else 32
    rcx = ctx.b.zext(ctx.get_gpr("rcx"), bits)
    ctx.branch_if(ctx.b.setcondi(Cond.EQ, rcx, 0), ins.near_branch_target)


_LOOP_ECX = {ix.Code.LOOP_REL8_64_ECX, ix.Code.LOOPE_REL8_64_ECX, ix.Code.LOOPNE_REL8_64_ECX}


@semantics(M.LOOP, M.LOOPE, M.LOOPNE)
def lift_loop(ctx: LiftContext, ins: ix.Instruction) -> None:
    """rcx -= 1 and branch if rcx != 0 (and ZF for loope/loopne); under 0x67 the counter is ecx,
    written as a 32-bit register (upper half cleared) and tested in 32 bits."""
    b = ctx.b
    rcx = b.addi(ctx.get_gpr("rcx"), -1)
    if ins.code in _LOOP_ECX:
        rcx = b.ext32u(rcx)
    ctx.set_gpr("rcx", rcx)
    taken = b.setcondi(Cond.NE, rcx, 0)
    if ins.mnemonic == M.LOOPE:
        taken = b.and_(taken, ctx.flag("zf"))
    elif ins.mnemonic == M.LOOPNE:
        taken = b.andc(taken, ctx.flag("zf"))
    ctx.branch_if(taken, ins.near_branch_target)


@semantics(M.CALL)
def lift_call(ctx: LiftContext, ins: ix.Instruction) -> None:
    target = _target_operand(ctx, ins, pushes=True)
    ctx.push(ctx.b.const(ins.next_ip))
    if isinstance(target, int):
        ctx.jump(target)
    else:
        ctx.jump_indirect(target)


@semantics(M.RET)
def lift_ret(ctx: LiftContext, ins: ix.Instruction) -> None:
    if ins.op_count and ins.op_kind(0) != OK.IMMEDIATE16:
        raise Unsupported("far ret")
    b = ctx.b
    rsp = ctx.get_gpr("rsp")
    target = ctx.load(rsp, 64)
    ctx.check_canonical_target(target)
    extra = ins.immediate(0) if ins.op_count else 0
    ctx.set_gpr("rsp", b.addi(rsp, 8 + extra))
    ctx.jump_indirect(target)


@semantics(M.SYSCALL)
def lift_syscall(ctx: LiftContext, ins: ix.Instruction) -> None:
    """The CPU saves the return address in rcx and rflags in r11 (SDM vol. 2, SYSCALL) before the kernel runs."""
    from tcg2wasm.frontend.x86_64.sem_flags import pushed_rflags

    if not ctx.unicorn_rep:  # Unicorn-shaped blocks (tcg2wasm.unicorn): as Unicorn, whose syscall hook sets neither
        ctx.set_gpr("r11", pushed_rflags(ctx))
        ctx.set_gpr("rcx", ctx.b.const(ins.next_ip))
    ctx.exit(Exit.SYSCALL)


@semantics(M.HLT)
def lift_hlt(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.exit(Exit.HLT)  # rip after hlt, as Unicorn reports it


@semantics(M.CPUID)
def lift_cpuid(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.exit(Exit.CPUID)


@semantics(M.RDTSC)
def lift_rdtsc(ctx: LiftContext, ins: ix.Instruction) -> None:
    ctx.exit(Exit.RDTSC)
