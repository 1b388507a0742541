"""Lockstep comparison: run a case step by step in the Machine and in Unicorn, find the first divergence.

A step is a guest basic block as iced-x86 decodes it (up to and including the
first control transfer, at most ``MAX_STEP`` instructions): both engines run it
with ``count=k`` from the same state, then registers, rflags (undefined bits of
the step's instructions masked, see :mod:`tcg2wasm.oracle.flags`), the stop
and every writable region are compared. On a difference both engines are put
back to the state before the step (the last compared state) and the step is
replayed one instruction at a time to name the instruction that diverged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import iced_x86

from tcg2wasm.abi import FLAG_BITS
from tcg2wasm.casefile import RESULT_REGS, RFLAGS_MODELED, Case, stop_to_json
from tcg2wasm.cases import build_machine
from tcg2wasm.oracle.flags import UNDEFINED_FLAGS
from tcg2wasm.oracle.unicorn_ref import UnicornRunner, make_stop

MAX_STEP = 32
_FORMATTER = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
_ICED_FLAG_BITS = {  # iced_x86.RflagsBits -> bit in rflags
    iced_x86.RflagsBits.CF: FLAG_BITS["cf"], iced_x86.RflagsBits.PF: FLAG_BITS["pf"],
    iced_x86.RflagsBits.AF: FLAG_BITS["af"], iced_x86.RflagsBits.ZF: FLAG_BITS["zf"],
    iced_x86.RflagsBits.SF: FLAG_BITS["sf"], iced_x86.RflagsBits.OF: FLAG_BITS["of"],
    iced_x86.RflagsBits.DF: FLAG_BITS["df"],
}
_MNEMONIC_NAMES = {v: k.lower() for k, v in vars(iced_x86.Mnemonic).items() if isinstance(v, int) and k.isupper()}


@dataclass
class StepInsn:
    pc: int
    asm: str
    mnemonic: str
    modified: int = 0  # rflags bits the instruction writes (defined or not)
    undefined: int = 0  # rflags bits it leaves undefined (iced-x86's view; flags.py adds to it)


@dataclass
class Divergence:
    """The first step (ideally one instruction) after which the engines disagree."""

    pc: int
    insns: list[StepInsn]
    differences: list[str]
    guest_insns_before: int

    def describe(self) -> str:
        head = f"divergence after {self.guest_insns_before} matching instructions, at pc 0x{self.pc:x}:"
        lines = [head] + [f"  0x{i.pc:x}: {i.asm}" for i in self.insns] + [f"  {d}" for d in self.differences]
        return "\n".join(lines)


@dataclass
class LockstepReport:
    name: str
    steps: int = 0
    guest_insns: int = 0
    stop: dict[str, Any] = field(default_factory=dict)
    divergence: Divergence | None = None

    @property
    def ok(self) -> bool:
        return self.divergence is None


def _rflags_from_iced(bits: int) -> int:
    return sum(1 << pos for iced_bit, pos in _ICED_FLAG_BITS.items() if bits & iced_bit)


def undefined_after(insns: list[StepInsn]) -> int:
    """rflags bits undefined after running ``insns`` in order: a later write of a flag defines it again."""
    mask = 0
    for insn in insns:
        mask = (mask & ~insn.modified) | insn.undefined | UNDEFINED_FLAGS.get(insn.mnemonic, 0)
    return mask


def decode_step(code: bytes, pc: int, limit: int = MAX_STEP) -> list[StepInsn]:
    """Instructions from ``pc`` to the first control transfer (or undecodable bytes), at most ``limit``."""
    out: list[StepInsn] = []
    for insn in iced_x86.Decoder(64, code, ip=pc):
        if insn.len == 0 or (insn.code == iced_x86.Code.INVALID and out):
            break
        out.append(StepInsn(insn.ip, _FORMATTER.format(insn), _MNEMONIC_NAMES.get(insn.mnemonic, ""),
                            _rflags_from_iced(insn.rflags_modified), _rflags_from_iced(insn.rflags_undefined)))
        if insn.flow_control != iced_x86.FlowControl.NEXT or insn.code == iced_x86.Code.INVALID or len(out) >= limit:
            break
    return out or [StepInsn(pc, "(no code)", "")]


def _flag_names(bits: int) -> str:
    return ",".join(name.upper() for name, b in sorted(FLAG_BITS.items(), key=lambda kv: kv[1]) if bits >> b & 1)


class _Pair:
    """The two engines holding the same case, with compare / restore helpers."""

    def __init__(self, case: Case, engine: str) -> None:
        self.case = case
        self.machine = build_machine(case, engine)
        self.uc = UnicornRunner(case, count_insns=False)
        self.writable = [r for r in case.memory if "w" in r.perms]

    def code_at(self, pc: int) -> bytes:
        return self.uc.read_code(pc, MAX_STEP * 15)

    def run(self, pc: int, until: int | None, count: int) -> tuple[dict, dict]:
        m_stop = stop_to_json(self.machine.run(pc, until=until, count=count))
        u_stop = self.uc.run(pc, until=until, count=count)
        return m_stop, u_stop

    def unicorn_state(self) -> tuple[dict[str, int], list[bytes]]:
        return self.uc.read_regs(), [m for _, m in self.uc.writable_memory()]

    def restore(self, regs: dict[str, int], memory: list[bytes]) -> None:
        for name, value in regs.items():
            self.machine.reg_write(name, value)
        self.uc.write_regs(regs)
        for region, data in zip(self.writable, memory, strict=True):
            self.machine.mem_write(region.addr, data)
            self.uc.uc.mem_write(region.addr, data)

    def compare(self, insns: list[StepInsn], m_stop: dict, u_stop: dict) -> list[str]:
        """Differences after a step; masked flag differences are copied from Unicorn into the Machine."""
        diffs: list[str] = []
        for key in ("kind", "pc", "fault", "vector"):
            if m_stop[key] != u_stop[key]:
                diffs.append(f"stop {key}: machine {m_stop[key]!r}, unicorn {u_stop[key]!r}")
        u_regs = self.uc.read_regs()
        for name in RESULT_REGS:
            got, want = self.machine.reg_read(name), u_regs[name]
            if name == "rflags":
                diffs += self._compare_flags(got, want, undefined_after(insns))
            elif got != want:
                diffs.append(f"{name}: machine 0x{got:x}, unicorn 0x{want:x}")
        for region in self.writable:
            diffs += self._compare_memory(region.addr, region.size)
        return diffs

    def _compare_flags(self, got: int, want: int, undefined: int) -> list[str]:
        differ = (got ^ want) & RFLAGS_MODELED
        if not differ:
            return []
        if not differ & ~undefined:
            self.machine.reg_write("rflags", want)  # agree on undefined bits so that later steps compare
            return []
        return [f"rflags: machine 0x{got:x}, unicorn 0x{want:x} (differ in {_flag_names(differ & ~undefined)})"]

    def _compare_memory(self, addr: int, size: int) -> list[str]:
        got, want = self.machine.mem_read(addr, size), bytes(self.uc.uc.mem_read(addr, size))
        if got == want:
            return []
        first = next(i for i in range(size) if got[i] != want[i])
        ours, theirs = got[first : first + 8].hex(), want[first : first + 8].hex()
        return [f"memory 0x{addr + first:x}: machine {ours}, unicorn {theirs}"]


def lockstep(case: Case, *, engine: str = "wasm", max_insns: int = 10_000_000) -> LockstepReport:
    """Compare ``engine`` with Unicorn on ``case``, step by step, up to its stop (or ``max_insns``)."""
    pair = _Pair(case, engine)
    report = LockstepReport(case.name)
    pc = case.entry
    until, budget = case.stop.until, case.stop.count
    while True:
        if until is not None and pc == until:
            report.stop = make_stop("until", pc, message=f"until 0x{pc:x}")
            return report
        left = min(max_insns, budget if budget is not None else max_insns) - report.guest_insns
        if left <= 0:
            report.stop = make_stop("count", pc, message="instruction limit")
            return report
        insns = decode_step(pair.code_at(pc), pc, min(MAX_STEP, left))
        before = pair.unicorn_state()
        m_stop, u_stop = pair.run(pc, until, len(insns))
        diffs = pair.compare(insns, m_stop, u_stop)
        report.steps += 1
        if diffs:
            report.divergence = _narrow(pair, pc, insns, before, until, report.guest_insns) or Divergence(
                pc, insns, diffs, report.guest_insns
            )
            report.stop = u_stop
            return report
        report.guest_insns += len(insns)
        if u_stop["kind"] not in ("count", "until"):
            report.stop = u_stop
            return report
        pc = u_stop["pc"]


def _narrow(pair: _Pair, pc: int, insns: list[StepInsn], before: tuple[dict[str, int], list[bytes]],
            until: int | None, done: int) -> Divergence | None:
    """Replay a diverging multi-instruction step one instruction at a time; None if it does not reproduce."""
    if len(insns) == 1:
        return None
    pair.restore(*before)
    for insn in insns:
        m_stop, u_stop = pair.run(insn.pc, until, 1)
        diffs = pair.compare([insn], m_stop, u_stop)
        if diffs:
            return Divergence(insn.pc, [insn], diffs, done)
        done += 1
        if u_stop["kind"] != "count":
            return None
    return None
