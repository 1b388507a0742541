"""Known differences from the CPU, each with its reference: what the comparison does not count as a divergence.

Three lists, used by :func:`explain` after ``tcg2wasm.fuzz.compare.compare`` found differences
between the CPU (``native``, the reference) and another engine:

* ``UNICORN``: where Unicorn 2.1 (QEMU 5) is wrong and the CPU right (issue 14 found most of them).
* ``VENDOR``: the host is an AMD CPU, tcg2wasm models an Intel one (its cpuid says GenuineIntel);
  where the two vendors' CPUs legitimately differ, neither engine is wrong.
* ``OPEN``: divergences of tcg2wasm that are findings not yet fixed, because the fix belongs to
  code outside the lifter (docs/testing.md, "Open findings"; each has an xfail regression test).
  They are reported as such in every campaign summary, never as matches.

A difference is *explained* only if one entry's predicate covers the whole case: the stop the
CPU made is the one the entry describes (from there on the runs are different programs), or
every difference is of the kind the entry describes. Anything else is a divergence.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import iced_x86 as ix

from tcg2wasm.cases import Case, RunResult
from tcg2wasm.fuzz.compare import Difference, canonical
from tcg2wasm.fuzz.native import case_bytes

M = ix.Mnemonic
_UNALIGNED_128 = frozenset({M.MOVUPS, M.MOVUPD, M.MOVDQU, M.LDDQU})


@dataclass(frozen=True)
class Context:
    case: Case
    native: RunResult
    other: RunResult
    diffs: tuple[Difference, ...]

    def insn_at(self, pc: int | None) -> ix.Instruction | None:
        if pc is None:
            return None
        code = case_bytes(self.case, None, pc)
        if not code:
            return None
        ins = ix.Decoder(64, code + bytes(15), ip=pc).decode()
        return None if ins.is_invalid else ins

    @property
    def native_fault(self) -> str | None:
        return self.native.stop["fault"] if self.native.stop["kind"] == "fault" else None

    def fields(self) -> set[str]:
        return {d.field for d in self.diffs}

    def only(self, *fields: str) -> bool:
        return self.fields() <= set(fields)


@dataclass(frozen=True)
class KnownDifference:
    id: str
    summary: str
    reference: str
    applies: Callable[[Context], bool]


def _stops_equal(ctx: Context) -> bool:
    return not any(d.field.startswith("stop.") for d in ctx.diffs)


def _has_memory_operand(ins: ix.Instruction, size: int) -> bool:
    return any(ins.op_kind(i) == ix.OpKind.MEMORY for i in range(ins.op_count)) and \
        ix.MemorySizeInfo(ins.memory_size).size == size


def _misaligned_sse(ctx: Context) -> bool:
    """The CPU raised #GP at a legacy SSE instruction (or cmpxchg16b) with a 16-byte operand that must be aligned."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ctx.native_fault == "GP" and ins is not None and ins.mnemonic not in _UNALIGNED_128 \
        and _has_memory_operand(ins, 16)


def _noncanonical_branch(ctx: Context) -> bool:
    """#GP at a near branch whose target is not canonical; Unicorn jumps and faults on the fetch."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ctx.native_fault == "GP" and ins is not None and ins.flow_control in (
        ix.FlowControl.INDIRECT_BRANCH, ix.FlowControl.INDIRECT_CALL, ix.FlowControl.RETURN) \
        and ctx.other.stop["kind"] == "fault" and str(ctx.other.stop["fault"]).startswith("FETCH")


def _noncanonical_data_masked(ctx: Context) -> bool:
    """#GP for a non-canonical data address; Unicorn reports an unmapped access at the address masked."""
    other = ctx.other.stop
    return ctx.native_fault in ("GP", "SS") and other["kind"] == "fault" and other["pc"] == ctx.native.stop["pc"] \
        and other["fault"] in ("READ_UNMAPPED", "WRITE_UNMAPPED")


def _flags_on_fault(ctx: Context) -> bool:
    return ctx.native.stop["kind"] == "fault" and _stops_equal(ctx) and ctx.only("rflags")


def _syscall_regs(ctx: Context) -> bool:
    return ctx.native.stop["kind"] == "syscall" and _stops_equal(ctx) and ctx.only("rcx", "r11")


def _is_nan(bits: int, width: int) -> bool:
    fmt = "<f" if width == 32 else "<d"
    return math.isnan(struct.unpack(fmt, bits.to_bytes(width // 8, "little"))[0])


def _lanes_both_nan(want: int, got: int) -> bool:
    for width in (32, 64):
        mask = (1 << width) - 1
        lanes = [((want >> s) & mask, (got >> s) & mask) for s in range(0, 128, width)]
        if all(a == b or (_is_nan(a, width) and _is_nan(b, width)) for a, b in lanes):
            return True
    return False


def _nan_selection(ctx: Context) -> bool:
    """Only xmm lanes differ, and each differing lane is a NaN in both: which NaN operand is returned."""
    xmm = [d for d in ctx.diffs if d.field.startswith("xmm")]
    return bool(xmm) and len(xmm) == len(ctx.diffs) and all(_lanes_both_nan(d.want, d.got) for d in xmm)


def _partial_store(ctx: Context) -> bool:
    """A faulting store that runs off the end of a mapping: Unicorn writes the mapped part first."""
    return ctx.native.stop["kind"] == "fault" and str(ctx.native_fault).startswith("WRITE") \
        and _stops_equal(ctx) and ctx.only("memory")


def _code_has(ctx: Context, pred: Callable[[ix.Instruction, bytes], bool]) -> bool:
    for r in ctx.case.memory:
        if r.addr <= ctx.case.entry < r.end:
            code = r.data[ctx.case.entry - r.addr:]
            for ins in ix.Decoder(64, code, ip=ctx.case.entry):
                if ins.is_invalid or ins.ip >= (ctx.case.stop.until or 0):
                    break
                raw = code[ins.ip - ctx.case.entry:ins.next_ip - ctx.case.entry]
                if pred(ins, raw):
                    return True
    return False


def _rex_sahf_lahf(ctx: Context) -> bool:
    return _code_has(ctx, lambda ins, raw: ins.mnemonic in (M.SAHF, M.LAHF) and any(0x40 <= b <= 0x4F for b in raw))


def _ret_imm16_sign(ctx: Context) -> bool:
    return _code_has(ctx, lambda ins, raw: ins.mnemonic == M.RET and ins.op_count == 1 and ins.immediate(0) >= 0x8000)


def _writes_memory(ins: ix.Instruction) -> bool:
    info = _INFO.info(ins)
    return any(m.access in (ix.OpAccess.READ_WRITE, ix.OpAccess.COND_WRITE, ix.OpAccess.WRITE,
                            ix.OpAccess.READ_COND_WRITE) for m in info.used_memory())


_INFO = ix.InstructionInfoFactory()


def _rmw_write_fault(ctx: Context) -> bool:
    """The CPU reports a read-modify-write access to a page it cannot write as a write fault (the read is
    done for writing): WRITE_UNMAPPED / WRITE_PROT where the load of the model faults first as a read."""
    want, got = ctx.native.stop, ctx.other.stop
    ins = ctx.insn_at(want["pc"])
    return want["kind"] == "fault" and got["kind"] == "fault" and want["pc"] == got["pc"] and ins is not None \
        and str(want["fault"]).startswith("WRITE") and str(got["fault"]).startswith("READ") and _writes_memory(ins)


def _store16_address(ctx: Context) -> bool:
    want, got = ctx.native.stop, ctx.other.stop
    ins = ctx.insn_at(want["pc"])
    return ins is not None and want["kind"] == "fault" and str(want["fault"]).startswith("WRITE") \
        and got["fault"] == want["fault"] and got["pc"] == want["pc"] and want["address"] is not None \
        and got["address"] is not None and 0 < got["address"] - want["address"] < 16 and _has_memory_operand(ins, 16)


def _sse_compare_predicate(ctx: Context) -> bool:
    """cmpps/cmppd/cmpss/cmpsd with an immediate of 8 or more: the CPU uses imm8[2:0], QEMU 5 raises #UD."""
    ins = ctx.insn_at(ctx.other.stop["pc"])
    return ctx.other.stop["fault"] == "INVALID_OPCODE" and ins is not None and ins.mnemonic in (
        M.CMPPS, M.CMPPD, M.CMPSS, M.CMPSD) and ins.op_count == 3 and ins.immediate(2) >= 8


def _overwide_sse_read(ctx: Context) -> bool:
    """An SSE instruction with an 8- or 4-byte memory operand faults in Unicorn reading past it (QEMU loads
    the whole 16 bytes), where the CPU reads only the operand."""
    other = ctx.other.stop
    ins = ctx.insn_at(other["pc"])
    return other["kind"] == "fault" and other["fault"] == "READ_UNMAPPED" and ins is not None \
        and any(ins.op_kind(i) == ix.OpKind.MEMORY for i in range(ins.op_count)) \
        and ix.MemorySizeInfo(ins.memory_size).size < 16 \
        and any(ins.op_kind(i) == ix.OpKind.REGISTER and ix.Register.XMM0 <= ins.op_register(i) <= ix.Register.XMM15
                for i in range(ins.op_count)) \
        and not (ctx.native.stop["kind"] == "fault" and ctx.native.stop["pc"] == other["pc"])


def _ldmxcsr_reserved(ctx: Context) -> bool:
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ctx.native_fault == "GP" and ins is not None and ins.mnemonic == M.LDMXCSR


def _high_half_gp(ctx: Context) -> bool:
    """A canonical address in the upper half (the kernel's): the CPU raises #PF (a supervisor page),
    Unicorn #GP."""
    want, got = ctx.native.stop, ctx.other.stop
    return want["kind"] == "fault" and str(want["fault"]).endswith("_UNMAPPED") and want["address"] is not None \
        and want["address"] >= 1 << 63 and got["fault"] == "GP" and got["pc"] == want["pc"]


def _enter_probe(ctx: Context) -> bool:
    """AMD's enter touches the new stack top (a write check at the final rsp) before writing the frame."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ins is not None and ins.mnemonic == M.ENTER and str(ctx.native_fault).startswith("WRITE")


def _unmasked_simd(ctx: Context) -> bool:
    return ctx.native_fault in ("SIMD_FP", "X87_FP")


UNICORN: tuple[KnownDifference, ...] = (
    KnownDifference("unicorn-sse-alignment", "16-byte operands of aligned SSE forms are not checked (no #GP)",
                    "SDM vol. 1 14.9 and vol. 2 MOVAPS 'Exceptions' (#GP if not 16-byte aligned); "
                    "QEMU 5 target/i386 does not check (docs/sse.md)", _misaligned_sse),
    KnownDifference("unicorn-noncanonical-branch", "a branch to a non-canonical address jumps, then the fetch faults",
                    "SDM vol. 2 JMP/CALL/RET, 64-bit mode exceptions: #GP(0) if the target is non-canonical",
                    _noncanonical_branch),
    KnownDifference("unicorn-noncanonical-data", "a non-canonical data address is an unmapped access (address "
                    "masked to 52 bits), not #GP", "SDM vol. 3 6.15 #GP/#SS; issue 14", _noncanonical_data_masked),
    KnownDifference("unicorn-flags-on-fault", "rflags changed by an instruction that faulted",
                    "SDM vol. 3 6.5: faults are precise, state as before the instruction; issue 14", _flags_on_fault),
    KnownDifference("unicorn-syscall-rcx-r11", "syscall does not save rip in rcx and rflags in r11 (hooked syscall)",
                    "SDM vol. 2 SYSCALL: RCX <- RIP, R11 <- RFLAGS", _syscall_regs),
    KnownDifference("unicorn-nan-selection", "with two NaN operands the NaN returned is chosen by x87 rules",
                    "SDM vol. 1 4.8.3.5 table 4-7 (SSE: the first source operand's NaN); docs/sse.md",
                    _nan_selection),
    KnownDifference("unicorn-partial-store", "a store running off the end of a mapping writes the mapped part",
                    "SDM vol. 3 6.5 (a faulting instruction has no effect); docs/sse.md", _partial_store),
    KnownDifference("unicorn-rex-sahf-lahf", "sahf/lahf with a REX prefix are ignored",
                    "SDM vol. 2 SAHF/LAHF (valid in 64-bit mode with LAHF-SAHF support); issue 14", _rex_sahf_lahf),
    KnownDifference("unicorn-ret-imm16", "ret imm16 sign-extends the immediate",
                    "SDM vol. 2 RET: the immediate is an unsigned 16-bit byte count; issue 14", _ret_imm16_sign),
    KnownDifference("unicorn-sse-compare-imm8", "cmpps/cmppd/cmpss/cmpsd with imm8 >= 8 raise #UD",
                    "SDM vol. 2 CMPPS: legacy SSE uses imm8[2:0] (bits 7:3 reserved, ignored); docs/sse.md",
                    _sse_compare_predicate),
    KnownDifference("unicorn-sse-overwide-read", "an SSE load of 4 or 8 bytes reads 16 (and faults past a mapping)",
                    "SDM vol. 2 CVTPS2PD/MOVLPS...: the memory operand is m64/m32", _overwide_sse_read),
    KnownDifference("unicorn-ldmxcsr-reserved", "ldmxcsr of a value with reserved bits set does not raise #GP",
                    "SDM vol. 2 LDMXCSR: #GP if reserved bits are set; docs/sse.md", _ldmxcsr_reserved),
    KnownDifference("unicorn-high-half-gp", "an access to a canonical upper-half address raises #GP, "
                    "not a page fault", "SDM vol. 3 4.6 (a supervisor page from user mode: #PF)", _high_half_gp),
    KnownDifference("unicorn-rmw-write-fault", "a read-modify-write of an unmapped page faults as a read",
                    "SDM vol. 3 4.7: the page-fault error code's W/R bit (the access is for writing)",
                    _rmw_write_fault),
)
VENDOR: tuple[KnownDifference, ...] = (
    KnownDifference("amd-enter-stack-probe", "AMD's enter checks the new stack top for writing before the frame "
                    "is built; Intel's (and the model's) writes only the frame",
                    "measured on this host (AMD EPYC): enter 0x5299,0 faults at the final rsp; AMD APM vol. 3 ENTER",
                    _enter_probe),
)
OPEN: tuple[KnownDifference, ...] = (
    KnownDifference("open-rmw-write-fault", "tcg2wasm reports a read-modify-write of an unmapped page as a read "
                    "fault (the load runs first); the CPU reports a write", "docs/testing.md, open findings",
                    _rmw_write_fault),
    KnownDifference("open-store16-fault-address", "a 16-byte store faulting in the window addr&0xFFF in "
                    "0xFF1..0xFF8 with both pages unwritable reports the high half's address",
                    "docs/testing.md, open findings", _store16_address),
    KnownDifference("model-unmasked-simd-exceptions", "unmasked SSE/x87 exceptions (#XM, #MF) are not raised",
                    "docs/sse.md (exception flags and unmasked exceptions are not modelled)", _unmasked_simd),
)
ALL: tuple[KnownDifference, ...] = UNICORN + VENDOR + OPEN


def explain(case: Case, native: RunResult, other: RunResult, diffs: list[Difference]) -> KnownDifference | None:
    """The known difference covering every difference of ``other`` from the CPU, if one does."""
    if not diffs:
        return None
    ctx = Context(case, native, other, tuple(diffs))
    lists = UNICORN + VENDOR if other.engine == "unicorn" else VENDOR + OPEN
    return next((k for k in lists if k.applies(ctx)), None)


def by_id(name: str) -> KnownDifference:
    return next(k for k in ALL if k.id == name)


__all__ = ["ALL", "OPEN", "UNICORN", "VENDOR", "KnownDifference", "by_id", "canonical", "explain"]
