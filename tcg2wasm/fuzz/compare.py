"""Comparing two engines' results on a case: the differences that count, undefined results masked.

``compare(case, want, got)`` lists every :class:`Difference` between a reference result (the CPU)
and another engine's: the stop (kind, pc, fault, address, vector), the GPRs, rip, rflags on the
bits the engines model with the flags the executed instructions leave undefined masked
(:func:`undefined_flags`), xmm0-15, MXCSR without its exception flags (not modelled: docs/sse.md),
the x87 control word and every writable mapping.

The model differences of tcg2wasm that are by design (docs/testing.md, "Model differences") are
applied here, in one place: a data access at a non-canonical address is a #GP (or #SS) without an
address on the CPU and an unmapped-memory fault with the address in tcg2wasm's memory model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import iced_x86 as ix

from tcg2wasm.cases import Case, RunResult
from tcg2wasm.oracle.flags import UNDEFINED_FLAGS

CF, PF, AF, ZF, SF, OF, DF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800, 0x400
STATUS = CF | PF | AF | ZF | SF | OF
MODELED_RFLAGS = STATUS | DF
MXCSR_EXCEPTION_FLAGS = 0x3F
_ICED_BITS = ((ix.RflagsBits.OF, OF), (ix.RflagsBits.SF, SF), (ix.RflagsBits.ZF, ZF), (ix.RflagsBits.AF, AF),
              (ix.RflagsBits.CF, CF), (ix.RflagsBits.PF, PF), (ix.RflagsBits.DF, DF))
_MNEMONIC_NAMES = {v: k.lower() for k, v in vars(ix.Mnemonic).items() if not k.startswith("_")}
#: Instructions whose flag writes depend on a run-time count (a zero count writes none).
MAY_NOT_WRITE_FLAGS = frozenset({ix.Mnemonic.SHL, ix.Mnemonic.SAL, ix.Mnemonic.SHR, ix.Mnemonic.SAR,
                                  ix.Mnemonic.ROL, ix.Mnemonic.ROR, ix.Mnemonic.RCL, ix.Mnemonic.RCR,
                                  ix.Mnemonic.SHLD, ix.Mnemonic.SHRD})
STOP_KEYS = ("kind", "pc", "fault", "address", "vector")
_FLAG_REGS = ("rflags",)
_VALUE_REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
               "r15", "rip") + tuple(f"xmm{i}" for i in range(16)) + ("fpcw",)


@dataclass(frozen=True)
class Difference:
    field: str  # "stop.kind", "rax", "rflags", "xmm3", "mxcsr", "memory"
    want: Any  # the reference's value
    got: Any
    where: int | None = None  # memory: the first differing address

    def __str__(self) -> str:
        def show(v: Any) -> str:
            return f"0x{v:x}" if isinstance(v, int) and not isinstance(v, bool) else repr(v)

        at = f" at 0x{self.where:x}" if self.where is not None else ""
        return f"{self.field}{at}: want {show(self.want)}, got {show(self.got)}"


def iced_flags(bits: int) -> int:
    return sum(mask for iced_bit, mask in _ICED_BITS if bits & iced_bit)


def stream_instructions(case: Case) -> list[ix.Instruction]:
    """The instructions from the entry to the stop address, in layout order (what may run)."""
    end = case.stop.until
    for r in case.memory:
        if r.addr <= case.entry < r.end and "x" in r.perms:
            image = r.data + bytes(max(0, (end or r.end) - r.addr + 16 - len(r.data)))
            code = image[case.entry - r.addr:]
            out: list[ix.Instruction] = []
            for ins in ix.Decoder(64, code, ip=case.entry):
                if ins.is_invalid or end is None or ins.ip >= end or len(out) > 4096:
                    break
                out.append(ins)
            return out
    return []


def undefined_flags(case: Case, stop_pc: int | None) -> int:
    """rflags bits the CPU may leave with any value at the stop: the last possible writer of a bit leaves it
    undefined (iced-x86's rflags_undefined and ``tcg2wasm.oracle.flags``).

    Walks the stream backwards from the stop; an instruction a forward branch may skip, or whose
    flag writes depend on a count, does not hide the undefined flags of the ones before it.
    """
    insns = stream_instructions(case)
    if stop_pc is not None and insns and insns[0].ip <= stop_pc <= (case.stop.until or 0):
        # (a stop outside the stream -- a branch to elsewhere faulted -- leaves any instruction possible)
        executed = [ins for ins in insns if ins.ip < stop_pc]
        if len(executed) < len(insns) or stop_pc == case.stop.until:
            insns = executed
    skippable = _skippable(insns)
    pending, mask = STATUS, 0
    for ins in reversed(insns):
        undefined = iced_flags(ins.rflags_undefined) | UNDEFINED_FLAGS.get(_MNEMONIC_NAMES[ins.mnemonic], 0)
        mask |= undefined & pending
        if ins.ip not in skippable and not _may_not_write_flags(ins) and ins.mnemonic != ix.Mnemonic.SYSCALL:
            # (a syscall stop comes before the kernel: the syscall itself changes no flag the user sees)
            pending &= ~iced_flags(ins.rflags_modified)
    return mask


def _may_not_write_flags(ins: ix.Instruction) -> bool:
    """Shifts and rotates by a count that may be 0; repeated string instructions (rep/repe/repne cmps, scas)
    with a count that may be 0: then they write no flag (found by ``tcg2wasm fuzz streams``, seed 41009655:
    rcx=0; repne cmpsq after a mul left mul's undefined ZF and PF visible)."""
    return ins.mnemonic in MAY_NOT_WRITE_FLAGS or ins.has_rep_prefix or ins.has_repne_prefix


def _skippable(insns: list[ix.Instruction]) -> set[int]:
    """Instructions a branch may jump over: up to a direct branch's target; everything after an indirect
    branch, call or return (its target is known only at run time)."""
    out: set[int] = set()
    for ins in insns:
        if ins.flow_control in (ix.FlowControl.CONDITIONAL_BRANCH, ix.FlowControl.UNCONDITIONAL_BRANCH,
                                ix.FlowControl.CALL) and ins.op_count and ins.op_kind(0) in (
                ix.OpKind.NEAR_BRANCH64, ix.OpKind.NEAR_BRANCH32, ix.OpKind.NEAR_BRANCH16):
            target = ins.near_branch_target
            out.update(i.ip for i in insns if ins.next_ip <= i.ip < target)
        elif ins.flow_control in (ix.FlowControl.INDIRECT_BRANCH, ix.FlowControl.INDIRECT_CALL,
                                  ix.FlowControl.RETURN):
            out.update(i.ip for i in insns if i.ip >= ins.next_ip)
    return out


def canonical(addr: int) -> bool:
    return addr < 1 << 47 or addr >= (1 << 64) - (1 << 47)


def _stop_view(stop: dict[str, Any]) -> dict[str, Any]:
    view = {k: stop.get(k) for k in STOP_KEYS}
    if view["kind"] == "fault" and view["fault"] in ("READ_UNMAPPED", "WRITE_UNMAPPED") \
            and view["address"] is not None and not canonical(view["address"]):
        view["fault"], view["address"] = "GP", None  # a non-canonical data address: #GP on the CPU
    if view["fault"] == "SS":
        view["fault"] = "GP"  # a non-canonical stack address: #SS on the CPU, the same to the memory model
    return view


def compare_stops(want: dict[str, Any], got: dict[str, Any]) -> list[Difference]:
    a, b = _stop_view(want), _stop_view(got)
    out = []
    for key in STOP_KEYS:
        if key == "address" and (a[key] is None or b[key] is None):
            continue
        if a[key] != b[key]:
            out.append(Difference(f"stop.{key}", a[key], b[key]))
    return out


def compare(case: Case, want: RunResult, got: RunResult, *, flag_mask: int | None = None) -> list[Difference]:
    """Every difference of ``got`` from the reference ``want`` (see the module docstring)."""
    out = compare_stops(want.stop, got.stop)
    if flag_mask is None:
        flag_mask = undefined_flags(case, want.stop.get("pc"))
    for name in _VALUE_REGS:
        if name in want.regs and name in got.regs and want.regs[name] != got.regs[name]:
            out.append(Difference(name, want.regs[name], got.regs[name]))
    keep = MODELED_RFLAGS & ~flag_mask
    if (want.regs["rflags"] ^ got.regs["rflags"]) & keep:
        out.append(Difference("rflags", want.regs["rflags"] & keep, got.regs["rflags"] & keep))
    if want.stop.get("kind") == "syscall" and flag_mask:  # r11 holds rflags there: its undefined flags too
        out = [d for d in out if d.field != "r11" or (d.want ^ d.got) & ~flag_mask]
    if "mxcsr" in want.regs and "mxcsr" in got.regs and \
            (want.regs["mxcsr"] ^ got.regs["mxcsr"]) & ~MXCSR_EXCEPTION_FLAGS:
        out.append(Difference("mxcsr", want.regs["mxcsr"], got.regs["mxcsr"]))
    out += compare_memory(want, got)
    return out


def compare_memory(want: RunResult, got: RunResult) -> list[Difference]:
    out = []
    theirs = dict(got.memory)
    for addr, data in want.memory:
        other = theirs.get(addr)
        if other is None:
            out.append(Difference("memory", "reported", "missing", addr))
        elif other != data:
            first = next(i for i in range(len(data)) if data[i] != other[i])
            out.append(Difference("memory", data[first:first + 8].hex(), other[first:first + 8].hex(), addr + first))
    return out
