"""Known differences from the CPU, each with its reference: what the comparison does not count as a divergence.

Three lists, used by :func:`explain` after ``tcg2wasm.fuzz.compare.compare`` found differences
between the CPU (``native``, the reference) and another engine:

* ``UNICORN``: where Unicorn 2.1 (QEMU 5) is wrong and the CPU right (issue 14 found most of them).
* ``VENDOR``: the host is an AMD CPU, tcg2wasm models an Intel one (its cpuid says GenuineIntel);
  where the two vendors' CPUs legitimately differ, neither engine is wrong.
* For tcg2wasm engines whose run used the Unicorn fallback, the ``UNICORN`` entries too, labelled
  ``fallback:<id>`` (a Unicorn error reached through the fallback, e.g. float instructions under a
  non-default MXCSR, which tcg2wasm hands to Unicorn by design: docs/sse.md).
* ``OPEN``: divergences of tcg2wasm from the CPU that are limits of its model, documented where the
  model is (MXCSR exception flags, unmasked SIMD exceptions: docs/sse.md), and findings not fixed
  yet (docs/testing.md, "Open findings"; a regression case for one is ``tests/regressions/open-*.json``,
  a strict xfail). They are reported as such in every campaign summary, never as matches.

A difference is *explained* only if one entry's predicate covers the whole case: the stop the
CPU made is the one the entry describes (from there on the runs are different programs), or
every difference is of the kind the entry describes. Anything else is a divergence.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import iced_x86 as ix

from tcg2wasm.cases import Case, RunResult
from tcg2wasm.fuzz.compare import Difference, canonical
from tcg2wasm.fuzz.encodings import reserved_form
from tcg2wasm.fuzz.native import case_bytes

M = ix.Mnemonic
_UNALIGNED_128 = frozenset({M.MOVUPS, M.MOVUPD, M.MOVDQU, M.LDDQU, M.PCMPESTRI, M.PCMPESTRM, M.PCMPISTRI,
                            M.PCMPISTRM})


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
    #: the predicate judges the differences it is given, whatever the others: several such entries may
    #: together explain a case (each covering some of its differences)
    field_level: bool = False


def _stops_equal(ctx: Context) -> bool:
    from tcg2wasm.fuzz.compare import compare_stops

    return not compare_stops(ctx.native.stop, ctx.other.stop)


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
    """#GP for a non-canonical data address; Unicorn reports an unmapped access at the address masked, or a
    protection fault where the masked address is mapped without the permission (stmxcsr gs:[rbx] with the
    sum 0x8000_0000_0001_ffff: WRITE_PROT in the code page; seed 41061283)."""
    other = ctx.other.stop
    if not (ctx.native_fault in ("GP", "SS") and other["kind"] == "fault" and other["pc"] == ctx.native.stop["pc"]):
        return False
    if other["fault"] in ("READ_UNMAPPED", "WRITE_UNMAPPED"):
        return True
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return other["fault"] in ("READ_PROT", "WRITE_PROT") and ins is not None \
        and any(not canonical(a) for a in _addresses(ins, ctx.native.regs))


def _addresses(ins: ix.Instruction, regs: dict[str, int]) -> list[int]:
    try:
        return effective_addresses(ins, regs)
    except Exception:  # an operand effective_addresses does not evaluate (vsib...): no claim
        return []


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


def _sse_compare_predicate(ctx: Context) -> bool:
    """cmpps/cmppd/cmpss/cmpsd with an immediate of 8 or more: the CPU uses imm8[2:0], QEMU 5 raises #UD --
    when it translates the block, so the #UD may be reported at an earlier instruction of that block."""
    pc = ctx.other.stop["pc"]
    return ctx.other.stop["fault"] == "INVALID_OPCODE" and _code_has(
        ctx, lambda ins, raw: ins.ip >= pc and ins.mnemonic in (M.CMPPS, M.CMPPD, M.CMPSS, M.CMPSD)
        and ins.op_count == 3 and ins.immediate(2) >= 8)


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


def _upper_half_address(ctx: Context) -> bool:
    """A canonical address in the upper (the kernel's) half: the CPU raises #PF (a supervisor page) with
    the address; Unicorn reports the address masked to 52 bits, or another fault, at the same pc."""
    want, got = ctx.native.stop, ctx.other.stop
    masked = (1 << 52) - 1
    return want["kind"] == "fault" and want["address"] is not None and want["address"] >= 1 << 63 \
        and got["kind"] == "fault" and got["pc"] in (want["pc"], want["pc"] & masked)


def _straddle_address(ctx: Context) -> bool:
    """An access crossing into an unmapped page: the CPU reports the first byte of that page, Unicorn an
    address a few bytes after it."""
    want, got = ctx.native.stop, ctx.other.stop
    return ctx.only("stop.address", "memory") and want["address"] is not None and got["address"] is not None \
        and want["address"] % 4096 == 0 and 0 < got["address"] - want["address"] < 16


def _rex_r_group(ctx: Context) -> bool:
    """A REX.R prefix on an instruction whose ModRM.reg is an opcode extension (C7 /0, F7 /2...): the CPU
    ignores REX.R there, QEMU adds it to the extension and raises #UD."""
    ins = ctx.insn_at(ctx.other.stop["pc"])
    if ctx.other.stop["fault"] != "INVALID_OPCODE" or ins is None or not ix.OpCodeInfo(ins.code).is_group:
        return False
    raw = case_bytes(ctx.case, None, ins.ip, ins.len)
    return any(0x44 <= b <= 0x4F and b & 0x4 for b in raw[:ins.len - 1])


def _test_reg1_alias(ctx: Context) -> bool:
    """F6 /1 and F7 /1 are test (an alias of /0) on the CPU; Unicorn raises #UD."""
    ins = ctx.insn_at(ctx.other.stop["pc"])
    if ctx.other.stop["fault"] != "INVALID_OPCODE" or ins is None or ins.mnemonic != M.TEST:
        return False
    raw = case_bytes(ctx.case, None, ins.ip, ins.len)
    at = next((i for i, b in enumerate(raw) if b in (0xF6, 0xF7)), None)
    return at is not None and at + 1 < len(raw) and (raw[at + 1] >> 3) & 7 == 1


def _fpcw_as_loaded(ctx: Context) -> bool:
    """fldcw keeps the reserved control-word bits on the CPU as bit 6 = 1, bits 7 and 13-15 = 0; Unicorn
    keeps all 16 bits as loaded."""
    from tcg2wasm.abi import fpcw_as_loaded

    diff = next((d for d in ctx.diffs if d.field == "fpcw"), None)
    if ctx.only("fpcw") and diff is not None:
        return diff.want == fpcw_as_loaded(diff.got)
    # fnstcw/fstcw stored that control word: the memory differs in those bits only (seed 41037682)
    return ctx.only("memory") and _code_has(ctx, lambda ins, raw: ins.mnemonic in (M.FNSTCW, M.FSTCW)) and all(
        _words_as_loaded(d.want, d.got) for d in ctx.diffs)


def _words_as_loaded(want: object, got: object) -> bool:
    """Memory contents (bytes or hex) equal but for 16-bit words that are fpcw_as_loaded of the other's."""
    from tcg2wasm.abi import fpcw_as_loaded

    a, b = (bytes.fromhex(x) if isinstance(x, str) else x for x in (want, got))
    if not isinstance(a, bytes) or not isinstance(b, bytes) or len(a) != len(b) or a == b:
        return False
    return all(a[i:i + 2] == b[i:i + 2] or int.from_bytes(a[i:i + 2], "little") == fpcw_as_loaded(
        int.from_bytes(b[i:i + 2], "little")) for i in range(0, len(a) - 1))


def effective_addresses(ins: ix.Instruction, regs: dict[str, int]) -> list[int]:
    """Linear addresses of the explicit memory operands of ``ins`` for the register values ``regs``."""
    from tcg2wasm.frontend.x86_64.context import gpr_location

    out = []
    for mem in _INFO.info(ins).used_memory():
        def value(reg: int) -> int:
            if reg == ix.Register.NONE:
                return 0
            if reg == ix.Register.RIP:
                return ins.next_ip
            name, pos, bits = gpr_location(reg)
            return (regs[name] >> pos) & ((1 << bits) - 1)

        addr = value(mem.base) + value(mem.index) * mem.scale + mem.displacement
        addr &= (1 << 32) - 1 if mem.address_size == ix.CodeSize.CODE32 else (1 << 64) - 1
        base = {ix.Register.FS: regs.get("fs_base", 0), ix.Register.GS: regs.get("gs_base", 0)}.get(mem.segment, 0)
        out.append((addr + base) % (1 << 64))
    return out


def _noncanonical_masked_hit(ctx: Context) -> bool:
    """#GP for a non-canonical data address that Unicorn masks to 52 bits and finds mapped (no fault)."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    if ctx.native_fault not in ("GP", "SS") or ins is None:
        return False
    try:
        addresses = effective_addresses(ins, ctx.native.regs)
    except Exception:  # an operand this helper does not evaluate (vsib...): no claim
        return False
    return any(not canonical(a) for a in addresses) and not (
        ctx.other.stop["kind"] == "fault" and ctx.other.stop["pc"] == ctx.native.stop["pc"])


def _cmpxchg8b_imprecise(ctx: Context) -> bool:
    """cmpxchg8b/16b storing to a read-only page: Unicorn reports the fault but has already loaded
    rdx:rax (and moved rip)."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    want, got = ctx.native.stop, ctx.other.stop
    return ins is not None and ins.mnemonic in (M.CMPXCHG8B, M.CMPXCHG16B) and want["kind"] == got["kind"] == "fault" \
        and want["fault"] == got["fault"] and want["pc"] == got["pc"] \
        and ctx.only("rax", "rdx", "rip", "rflags", "stop.address", "memory")


def _partial_load(ctx: Context) -> bool:
    """A 16-byte load faulting on its second page: Unicorn has already written part of the xmm register."""
    return ctx.native.stop["kind"] == "fault" and str(ctx.native_fault).startswith("READ") and _stops_equal(ctx) \
        and all(d.field.startswith("xmm") for d in ctx.diffs)


def _cmpxchg32_writeback(ctx: Context) -> bool:
    """cmpxchg r32, r32 whose compare fails: this CPU leaves the destination register as it was (upper half
    too); QEMU writes it back as a 32-bit register (upper half cleared)."""
    return _code_has(ctx, lambda ins, raw: ins.mnemonic == M.CMPXCHG and ins.op_kind(0) == ix.OpKind.REGISTER
                     and ix.RegisterInfo(ins.op_register(0)).size == 4) \
        and all(d.field in GPR_FIELDS and d.got == d.want & 0xFFFFFFFF for d in ctx.diffs)


GPR_FIELDS = frozenset(("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
                        "r13", "r14", "r15"))


def _enter_probe(ctx: Context) -> bool:
    """AMD's enter touches the new stack top (a write check at the final rsp) before writing the frame."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ins is not None and ins.mnemonic == M.ENTER and str(ctx.native_fault).startswith("WRITE")


def _mxcsr_flags_stored(ctx: Context) -> bool:
    """stmxcsr stored MXCSR, whose exception flags the CPU set and the model does not: the stored values
    differ only in those six bits."""
    if not _code_has(ctx, lambda ins, raw: ins.mnemonic == M.STMXCSR):
        return False
    return all(d.field == "memory" and isinstance(d.want, str) and len(d.want) == len(d.got)
               and int(d.want[:2], 16) ^ int(d.got[:2], 16) < 0x40 and d.want[2:] == d.got[2:] for d in ctx.diffs)


def _accesses(ins: ix.Instruction, regs: dict[str, int]) -> list[tuple[int, int]]:
    """(address, size) of every memory access of ``ins`` (stack pushes and string operands included)."""
    from tcg2wasm.frontend.x86_64.context import gpr_location

    out = []
    for mem in _INFO.info(ins).used_memory():
        def value(reg: int) -> int:
            if reg == ix.Register.NONE:
                return 0
            if reg == ix.Register.RIP:
                return ins.next_ip
            name, pos, bits = gpr_location(reg)
            return (regs[name] >> pos) & ((1 << bits) - 1)

        addr = (value(mem.base) + value(mem.index) * mem.scale + mem.displacement) % (1 << 64)
        out.append((addr, max(1, ix.MemorySizeInfo(mem.memory_size).size)))
    return out


def _fault_order(ctx: Context) -> bool:
    """An instruction with several memory accesses of which more than one faults (rep cmpsb with both
    strings unmapped, call [m] with an unmapped stack): which fault is reported depends on the CPU's
    internal order of the accesses; both engines report a fault of one of them at the same pc."""
    want, got = ctx.native.stop, ctx.other.stop
    ins = ctx.insn_at(want["pc"])
    if ins is None or want["kind"] != "fault" or got["kind"] != "fault" or want["pc"] != got["pc"] \
            or not ctx.only("stop.fault", "stop.address"):
        return False
    try:
        accesses = _accesses(ins, ctx.native.regs)
    except Exception:  # noqa: BLE001 - an operand this helper does not evaluate: no claim
        return False

    def hit(stop: dict) -> int | None:
        if stop["address"] is None:  # #GP: a non-canonical or wrapping access
            return next((i for i, (a, n) in enumerate(accesses) if not canonical(a) or a + n > 1 << 64), None)
        return next((i for i, (a, n) in enumerate(accesses) if a <= stop["address"] < a + n), None)

    first, second = hit(want), hit(got)
    return len(accesses) > 1 and first is not None and second is not None and first != second


_FTZ_DAZ = 0x8040


def _flushed_lanes(want: int, got: int) -> bool:
    """Every lane (of 32 or of 64 bits) that differs has a zero or a denormal on one side."""
    for width, exp_mask in ((32, 0x7F800000), (64, 0x7FF0000000000000)):
        mask = (1 << width) - 1
        lanes = [((want >> s) & mask, (got >> s) & mask) for s in range(0, 128, width)]
        if all(a == b or not a & exp_mask or not b & exp_mask for a, b in lanes):
            return True
    return False


def _ftz_daz(ctx: Context) -> bool:
    """MXCSR has FZ or DAZ set: QEMU 5's SSE ignores both, so results that the CPU flushes to zero (or
    computes from denormals read as zero) differ in lanes where one side is zero or denormal."""
    if not (ctx.case.regs.get("mxcsr", 0) | ctx.native.regs.get("mxcsr", 0)) & _FTZ_DAZ:  # initial, or ldmxcsr
        return False
    return all(d.field.startswith("xmm") and _flushed_lanes(d.want, d.got) for d in ctx.diffs)


def _address_in_operand(ctx: Context) -> bool:
    """The same fault at the same pc, reported at another byte of the faulting operand (shld m16 one byte
    before it, rcl m64 across a page end 6 bytes after the page start)."""
    want, got = ctx.native.stop, ctx.other.stop
    return want["kind"] == got["kind"] == "fault" and want["fault"] == got["fault"] and want["pc"] == got["pc"] \
        and want["address"] is not None and got["address"] is not None and abs(got["address"] - want["address"]) < 16 \
        and ctx.only("stop.address", "rflags", "memory")


def _popcnt(ctx: Context) -> bool:
    """popcnt: QEMU 5 (as Unicorn 2.1 builds it) counts wrong (and keeps upper bits of the r16 form), and sets ZF
    from its wrong count (popcnt of 0x8000000000000000: 0, ZF=1; seed 45058569)."""
    if not _code_has(ctx, lambda ins, raw: ins.mnemonic == M.POPCNT):
        return False
    at = ctx.insn_at(ctx.native.stop["pc"])
    return ctx.only(*GPR_FIELDS, "rflags") or (at is not None and at.mnemonic == M.POPCNT
                                               and ctx.native_fault is not None)


def _syscall_stale_flags(ctx: Context) -> bool:
    """At a hooked syscall Unicorn's rflags are stale (QEMU's lazily computed flags are not brought up to
    date for the hook)."""
    return ctx.native.stop["kind"] == "syscall" and _stops_equal(ctx) and ctx.only("rflags", "rcx", "r11")


def _bt_offset(ctx: Context) -> bool:
    """bt/bts/btr/btc m, r with a bit offset that takes the address out of the canonical range: the CPU raises
    #GP, QEMU 5 wraps the address (and bts/btr/btc write there)."""
    ins = ctx.insn_at(ctx.native.stop["pc"])
    return ins is not None and ins.mnemonic in (M.BT, M.BTS, M.BTR, M.BTC) and ins.op_kind(0) == ix.OpKind.MEMORY \
        and ins.op_kind(1) == ix.OpKind.REGISTER and ctx.native_fault in ("GP", "SS")


def _shxd_memory(ctx: Context) -> bool:
    """shld/shrd with a memory destination: QEMU 5 stores the result one byte off."""
    return _code_has(ctx, lambda ins, raw: ins.mnemonic in (M.SHLD, M.SHRD) and ins.op_kind(0) == ix.OpKind.MEMORY) \
        and ctx.only("memory")


def _int_exception_vector(ctx: Context) -> bool:
    """int n with n the vector of a CPU exception (0, 6, 13): the CPU raises #GP (the gate is not for user
    mode; the model reports the int's vector), QEMU 5 raises that exception as a fault of the int."""
    want, got = ctx.native.stop, ctx.other.stop
    return want["kind"] == "interrupt" and want["vector"] in (0, 6, 13) and got["kind"] == "fault" \
        and 0 <= want["pc"] - got["pc"] <= 3  # (int 0Dh: a #GP after the int, at its next pc; seed 41064928)


def _locked_flags(ctx: Context) -> bool:
    """A lock-prefixed read-modify-write: QEMU 5's atomic path computes some flags wrong (lock neg: SF)."""
    return _code_has(ctx, lambda ins, raw: ins.has_lock_prefix) and ctx.only("rflags")


def _bsf_bsr_zero_source(ctx: Context) -> bool:
    """bsf/bsr r32 with a zero source: the CPU leaves the whole 64-bit register as it was (and so does the
    model), QEMU 5 writes it back zero-extended (seed 41067841: r15 0xe9127a5ce876fc20 -> 0xe876fc20)."""
    from tcg2wasm.frontend.x86_64.context import gpr_location

    def writes(field: str) -> Callable[[ix.Instruction, bytes], bool]:
        return lambda ins, raw: ins.mnemonic in (M.BSF, M.BSR) and ins.op_kind(0) == ix.OpKind.REGISTER \
            and ix.RegisterInfo(ins.op_register(0)).size == 4 and gpr_location(ins.op_register(0))[0] == field

    return bool(ctx.diffs) and all(
        d.field in GPR_FIELDS and isinstance(d.want, int) and d.got == d.want & 0xFFFFFFFF
        and _code_has(ctx, writes(d.field)) for d in ctx.diffs)


def _x87_in_case(ctx: Context) -> bool:
    """The case runs x87 instructions: QEMU 5's x87 is its own (64-bit doubles inside, integer indefinite not
    stored: fist of an empty st0 writes 0, seed 522); tcg2wasm's is checked against the CPU (docs/x87.md)."""
    return _code_has(ctx, lambda ins, raw: ins.encoding == ix.EncodingKind.LEGACY and 0xD8 <= _opcode_byte(raw) <= 0xDF)


def _opcode_byte(raw: bytes) -> int:
    """The first byte of ``raw`` after legacy prefixes and REX."""
    for b in raw:
        if b not in _PREFIXES and not 0x40 <= b <= 0x4F:
            return b
    return 0


_PREFIXES = frozenset(bytes.fromhex("262e363e64656667f0f2f3"))


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
                    "SDM vol. 3 6.5: faults are precise, state as before the instruction; issue 14", _flags_on_fault,
                    field_level=True),
    KnownDifference("unicorn-syscall-rcx-r11", "syscall does not save rip in rcx and rflags in r11 (hooked syscall)",
                    "SDM vol. 2 SYSCALL: RCX <- RIP, R11 <- RFLAGS", _syscall_regs, field_level=True),
    KnownDifference("unicorn-nan-selection", "with two NaN operands the NaN returned is chosen by x87 rules",
                    "SDM vol. 1 4.8.3.5 table 4-7 (SSE: the first source operand's NaN); docs/sse.md",
                    _nan_selection, field_level=True),
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
    KnownDifference("unicorn-upper-half-address", "an access to a canonical upper-half address is reported with "
                    "the address masked to 52 bits (or as another fault)",
                    "SDM vol. 3 4.6 and 4.7 (#PF, CR2 holds the full linear address)", _upper_half_address),
    KnownDifference("unicorn-straddle-address", "a fault of an access crossing into an unmapped page reports an "
                    "address after the page start", "SDM vol. 3 4.7 (CR2: the linear address that faulted)",
                    _straddle_address, field_level=True),
    KnownDifference("unicorn-rex-r-opcode-extension", "REX.R on an instruction with a ModRM opcode extension "
                    "raises #UD", "SDM vol. 2 2.2.1.2 (REX.R extends ModRM.reg only where it names a register)",
                    _rex_r_group),
    KnownDifference("unicorn-test-reg1", "test r/m, imm encoded as F6 /1 or F7 /1 raises #UD",
                    "the CPU executes /1 as test (iced-x86 decodes it so; AMD APM vol. 3 table A-6 lists TEST "
                    "for /0 and /1)", _test_reg1_alias),
    KnownDifference("unicorn-fpcw-reserved-bits", "fldcw keeps reserved control-word bits as loaded",
                    "docs/sse.md, x87 (tcg2wasm.abi.fpcw_as_loaded: bit 6 reads as 1, bits 7, 13-15 as 0)",
                    _fpcw_as_loaded, field_level=True),
    KnownDifference("unicorn-noncanonical-masked-hit", "a non-canonical data address masked to 52 bits lands "
                    "in a mapping: no fault", "SDM vol. 3 6.15 (#GP/#SS for a non-canonical address); issue 14",
                    _noncanonical_masked_hit),
    KnownDifference("unicorn-cmpxchg8b-imprecise", "cmpxchg8b/16b to a read-only page changes rdx:rax and rip "
                    "before the fault", "SDM vol. 3 6.5: faults are precise", _cmpxchg8b_imprecise,
                    field_level=True),
    KnownDifference("unicorn-partial-load", "a 16-byte load faulting on its second page has written part of "
                    "the register", "SDM vol. 3 6.5: faults are precise", _partial_load, field_level=True),
    KnownDifference("unicorn-cmpxchg32-writeback", "cmpxchg r32 with a failed compare clears the upper half of "
                    "the destination", "measured on this host (AMD EPYC): the destination is left as it was",
                    _cmpxchg32_writeback, field_level=True),
    KnownDifference("unicorn-mxcsr-exception-flags", "MXCSR exception flags are never set, so stmxcsr stores "
                    "none", "SDM vol. 1 11.5.2 (sticky flags); docs/sse.md", _mxcsr_flags_stored, field_level=True),
    KnownDifference("unicorn-ftz-daz", "MXCSR.FZ and MXCSR.DAZ are ignored: denormal results are not flushed to "
                    "zero, denormal inputs not read as zero", "SDM vol. 1 10.2.3.3 (FZ) and 10.2.3.4 (DAZ)",
                    _ftz_daz, field_level=True),
    KnownDifference("unicorn-fault-address-in-operand", "a fault is reported at another byte of the faulting "
                    "operand", "SDM vol. 3 4.7 (CR2: the linear address that faulted)", _address_in_operand),
    KnownDifference("unicorn-popcnt", "popcnt gives a wrong count", "SDM vol. 2 POPCNT", _popcnt,
                    field_level=True),
    KnownDifference("unicorn-syscall-stale-flags", "rflags at a hooked syscall are stale (lazy flags)",
                    "SDM vol. 2 SYSCALL (R11 <- RFLAGS); QEMU computes flags lazily", _syscall_stale_flags,
                    field_level=True),
    KnownDifference("unicorn-bt-offset", "bt* m, r with a bit offset reaching a non-canonical address wraps "
                    "instead of raising #GP", "SDM vol. 2 BT (the bit offset is signed, the address must be "
                    "canonical: vol. 3 6.15)", _bt_offset),
    KnownDifference("unicorn-unmasked-simd-exceptions", "unmasked SSE exceptions (#XM) are not raised",
                    "SDM vol. 1 11.5.1", lambda ctx: _unmasked_simd(ctx)),
    KnownDifference("unicorn-shld-shrd-memory", "shld/shrd to memory store the result one byte off",
                    "SDM vol. 2 SHLD/SHRD", _shxd_memory, field_level=True),
    KnownDifference("unicorn-int-exception-vector", "int 0/6/13 raise that exception instead of #GP",
                    "SDM vol. 3 6.12.1.1 (a software interrupt through a gate of DPL 0 from CPL 3 is #GP)",
                    _int_exception_vector),
    KnownDifference("unicorn-locked-rmw-flags", "a lock-prefixed read-modify-write computes flags wrong",
                    "SDM vol. 2 NEG (flags as without lock)", _locked_flags, field_level=True),
    KnownDifference("unicorn-rmw-write-fault", "a read-modify-write of an unmapped page faults as a read",
                    "SDM vol. 3 4.7: the page-fault error code's W/R bit (the access is for writing)",
                    _rmw_write_fault),
    KnownDifference("unicorn-bsf-bsr-zero-source", "bsf/bsr r32 with a zero source zero-extend the destination",
                    "SDM vol. 2 BSF/BSR (destination undefined when the source is 0); AMD APM vol. 3 BSF "
                    "(destination unchanged), measured on this host: all 64 bits kept", _bsf_bsr_zero_source,
                    field_level=True),
    KnownDifference("unicorn-x87", "x87 instructions compute other results (QEMU 5's x87 is not the CPU's: "
                    "no integer indefinite, 64-bit precision inside)", "docs/x87.md (x87 checked against the CPU)",
                    _x87_in_case),
)
VENDOR: tuple[KnownDifference, ...] = (
    KnownDifference("amd-enter-stack-probe", "AMD's enter checks the new stack top for writing before the frame "
                    "is built; Intel's (and the model's) writes only the frame",
                    "measured on this host (AMD EPYC): enter 0x5299,0 faults at the final rsp; AMD APM vol. 3 ENTER",
                    _enter_probe),
    KnownDifference("cpu-fault-order", "several accesses of one instruction fault: which is reported is the "
                    "CPU's order (rep cmpsb: [rsi] first on this host, cmpsb and rep cmpsq: [rdi])",
                    "measured on this host (AMD EPYC); SDM vol. 3 6.9 leaves the order of faults within "
                    "one instruction to the implementation", _fault_order),
    KnownDifference("reserved-encoding", "an encoding the SDM reserves or the vendors define differently "
                    "(a repeat prefix on loopcc: f2 e1 branches as loopne on this host; 16-bit movsxd reads 4 "
                    "bytes here); streams no longer generate them (tcg2wasm.fuzz.encodings.reserved_form)",
                    "SDM vol. 2 2.1.1 (repeat prefixes on other instructions are reserved); AMD APM vol. 3 MOVSXD",
                    lambda ctx: _code_has(ctx, reserved_form)),
)
OPEN: tuple[KnownDifference, ...] = (
    KnownDifference("model-mxcsr-exception-flags", "stmxcsr stores MXCSR exception flags the CPU set and the "
                    "model does not", "docs/sse.md (MXCSR exception flags are not modelled)", _mxcsr_flags_stored,
                    field_level=True),
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
    found = _explain_with(ctx, lists)
    if found is None and other.engine != "unicorn" and (other.stats.get("fallback_insns") or 0) > 0:
        # the run handed instructions to the Unicorn fallback (by design: docs/sse.md, a non-default
        # MXCSR); a Unicorn error there is Unicorn's, reached through the fallback
        found = _explain_with(ctx, UNICORN)
        if found is not None:
            found = dataclasses.replace(found, id=f"fallback:{found.id}")
    return found


def _explain_with(ctx: Context, entries: tuple[KnownDifference, ...]) -> KnownDifference | None:
    whole = next((k for k in entries if k.applies(ctx)), None)
    if whole is not None:
        return whole
    used: list[KnownDifference] = []
    for diff in ctx.diffs:  # every difference covered by some field-level entry
        one = dataclasses.replace(ctx, diffs=(diff,))
        k = next((k for k in entries if k.field_level and k.applies(one)), None)
        if k is None:
            return None
        if k not in used:
            used.append(k)
    return dataclasses.replace(used[0], id="+".join(k.id for k in used)) if used else None


def by_id(name: str) -> KnownDifference:
    return next(k for k in ALL if k.id == name)


__all__ = ["ALL", "OPEN", "UNICORN", "VENDOR", "KnownDifference", "by_id", "canonical", "explain"]
