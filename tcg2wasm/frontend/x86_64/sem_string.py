"""String instructions: movs/stos/lods/cmps/scas in every width, with and without rep/repe/repne.

A rep-prefixed instruction is lifted QEMU's way, one iteration per execution
of its TB::

    if rcx == 0 goto done
    one iteration (advance rsi/rdi by +-size per DF)
    rcx -= 1
    if rcx == 0 goto done
    (repe/repne) if ZF ends the loop goto done
    goto_tb pc            # the same instruction again: the block loops on itself
  done:
    goto_tb next_pc

Every iteration is a complete instruction execution, so a fault in iteration
k leaves rcx/rsi/rdi as they were at its start. With the 0x67 prefix
(32-bit address size) the registers are esi/edi/ecx: addresses are their
zero-extended values, and every update is a 32-bit register write (it clears
the upper halves, as measured on the CPU). With ``ctx.unicorn_rep`` the
``rcx == 0`` test after the decrement is left out, as in Unicorn (QEMU without
its repz optimisation): the loop then runs the TB once more, and that execution
only finds rcx == 0 and leaves -- a rep of n iterations is n + 1 executions of
the instruction for instruction counts and hooks, as Unicorn reports them.
The source operand honours an fs/gs override; the destination is always es,
whose base is 0 in 64-bit mode.
"""

from __future__ import annotations

from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.frontend.x86_64.context import LiftContext, Unsupported
from tcg2wasm.frontend.x86_64.registry import semantics
from tcg2wasm.frontend.x86_64.sem_sse_move import lift_movsd_sse
from tcg2wasm.ir import Cond, Temp

M = ix.Mnemonic
OK = ix.OpKind
R = ix.Register

_ACCUMULATOR = {8: R.AL, 16: R.AX, 32: R.EAX, 64: R.RAX}
_ADDRESS64_KINDS = {OK.MEMORY_SEG_RSI, OK.MEMORY_ESRDI}
_ADDRESS32_KINDS = {OK.MEMORY_SEG_ESI, OK.MEMORY_ESEDI}


def _check_form(ins: ix.Instruction) -> int:
    """Operand width in bits; raise Unsupported for SSE homonyms and 16-bit addressing."""
    if not ins.is_string_instruction:
        raise Unsupported("SSE form of a string mnemonic")
    memory_kinds = {ins.op_kind(i) for i in range(ins.op_count)} - {OK.REGISTER}
    if not (memory_kinds <= _ADDRESS64_KINDS or memory_kinds <= _ADDRESS32_KINDS):
        raise Unsupported("string instruction with 16-bit address size")
    bits = 8 * ix.MemorySizeExt.size(ins.memory_size)
    if bits not in _ACCUMULATOR:
        raise Unsupported(f"string operand of {bits} bits")
    return bits


def _step(ctx: LiftContext, bits: int) -> Temp:
    """+size when DF is clear, -size when it is set."""
    b = ctx.b
    size = bits // 8
    return b.movcond(Cond.EQ, ctx.flag("df"), b.const(0), b.const(size), b.const(-size))


def _address_size(ctx: LiftContext) -> int:
    """32 under the 0x67 prefix (esi/edi/ecx), else 64 (``_check_form`` refused the rest)."""
    ins = ctx.ins
    return 32 if any(ins.op_kind(i) in _ADDRESS32_KINDS for i in range(ins.op_count)) else 64


def _address_reg(ctx: LiftContext, name: str) -> Temp:
    """rsi/rdi/rcx as the address size reads them (esi/edi/ecx zero-extended under 0x67)."""
    value = ctx.get_gpr(name)
    return ctx.b.ext32u(value) if _address_size(ctx) == 32 else value


def _set_address_reg(ctx: LiftContext, name: str, value: Temp) -> None:
    """A write of rsi/rdi/rcx; under 0x67 it is a write of esi/edi/ecx (upper half cleared)."""
    ctx.set_gpr(name, ctx.b.ext32u(value) if _address_size(ctx) == 32 else value)


def _source_addr(ctx: LiftContext) -> Temp:
    return ctx.add_segment(_address_reg(ctx, "rsi"), ctx.ins.memory_segment)


def _dest_addr(ctx: LiftContext) -> Temp:
    return _address_reg(ctx, "rdi")


def _advance(ctx: LiftContext, name: str, step: Temp) -> None:
    _set_address_reg(ctx, name, ctx.b.add(ctx.get_gpr(name), step))


def _movs_once(ctx: LiftContext, bits: int) -> None:
    step = _step(ctx, bits)
    value = ctx.load(_source_addr(ctx), bits)
    ctx.store(_dest_addr(ctx), value, bits)
    _advance(ctx, "rsi", step)
    _advance(ctx, "rdi", step)


def _stos_once(ctx: LiftContext, bits: int) -> None:
    step = _step(ctx, bits)
    ctx.store(_dest_addr(ctx), ctx.get_gpr("rax"), bits)
    _advance(ctx, "rdi", step)


def _lods_once(ctx: LiftContext, bits: int) -> None:
    step = _step(ctx, bits)
    ctx.set_reg(_ACCUMULATOR[bits], ctx.load(_source_addr(ctx), bits))
    _advance(ctx, "rsi", step)


def _cmps_once(ctx: LiftContext, bits: int) -> None:
    """Flags of [rsi] - es:[rdi]. es:[rdi] is read first, as the CPU (and QEMU) do: when both reads
    fault, the fault is the one of [rdi] (found by the native oracle, docs/testing.md)."""
    step = _step(ctx, bits)
    c = ctx.load(_dest_addr(ctx), bits)
    a = ctx.load(_source_addr(ctx), bits)
    ctx.flags_sub(a, c, ctx.b.sub(a, c), bits)
    _advance(ctx, "rsi", step)
    _advance(ctx, "rdi", step)


def _scas_once(ctx: LiftContext, bits: int) -> None:
    """Flags of accumulator - es:[rdi]."""
    step = _step(ctx, bits)
    a = ctx.b.zext(ctx.get_gpr("rax"), bits)
    c = ctx.load(_dest_addr(ctx), bits)
    ctx.flags_sub(a, c, ctx.b.sub(a, c), bits)
    _advance(ctx, "rdi", step)


Iteration = Callable[[LiftContext, int], None]


def _lift_repeated(ctx: LiftContext, once: Iteration, bits: int, zf_ends_loop_when: int | None) -> None:
    """The rep loop as a self-looping TB (see the module docstring).

    ``zf_ends_loop_when``: None for rep, 0 for repe (stop when ZF == 0), 1 for repne.
    """
    b = ctx.b
    done = b.new_label()
    b.brcondi(Cond.EQ, _address_reg(ctx, "rcx"), 0, done)
    once(ctx, bits)
    _set_address_reg(ctx, "rcx", b.addi(ctx.get_gpr("rcx"), -1))
    if not ctx.unicorn_rep:
        b.brcondi(Cond.EQ, _address_reg(ctx, "rcx"), 0, done)
    if zf_ends_loop_when is not None:
        b.brcondi(Cond.EQ, ctx.flag("zf"), zf_ends_loop_when, done)
    b.goto_tb(ctx.pc)
    b.set_label(done)
    b.goto_tb(ctx.next_pc)
    ctx.ended = True


def _lift_string(ctx: LiftContext, ins: ix.Instruction, once: Iteration, compares: bool) -> None:
    bits = _check_form(ins)
    if not (ins.has_rep_prefix or ins.has_repne_prefix):
        once(ctx, bits)
    elif not compares:  # f2 on movs/stos/lods acts as a plain rep, as on hardware
        _lift_repeated(ctx, once, bits, None)
    else:
        _lift_repeated(ctx, once, bits, 1 if ins.has_repne_prefix else 0)


@semantics(M.MOVSB, M.MOVSW, M.MOVSD, M.MOVSQ)
def lift_movs(ctx: LiftContext, ins: ix.Instruction) -> None:
    if not ins.is_string_instruction:  # movsd xmm, xmm/m64 shares the mnemonic
        lift_movsd_sse(ctx, ins)
        return
    _lift_string(ctx, ins, _movs_once, compares=False)


@semantics(M.STOSB, M.STOSW, M.STOSD, M.STOSQ)
def lift_stos(ctx: LiftContext, ins: ix.Instruction) -> None:
    _lift_string(ctx, ins, _stos_once, compares=False)


@semantics(M.LODSB, M.LODSW, M.LODSD, M.LODSQ)
def lift_lods(ctx: LiftContext, ins: ix.Instruction) -> None:
    _lift_string(ctx, ins, _lods_once, compares=False)


@semantics(M.CMPSB, M.CMPSW, M.CMPSD, M.CMPSQ)
def lift_cmps(ctx: LiftContext, ins: ix.Instruction) -> None:
    _lift_string(ctx, ins, _cmps_once, compares=True)


@semantics(M.SCASB, M.SCASW, M.SCASD, M.SCASQ)
def lift_scas(ctx: LiftContext, ins: ix.Instruction) -> None:
    _lift_string(ctx, ins, _scas_once, compares=True)
