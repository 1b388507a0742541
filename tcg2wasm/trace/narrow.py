"""Narrowing a replay divergence to the first divergent instruction.

:func:`narrow` re-runs from the start, in lockstep, the wasm Machine and a Unicorn
*reference*: Unicorn on the same image with the recorded block bytes written over it (so
an altered code byte in the image shows up as a difference, not as a second opinion
agreeing with it). Both run to the last good checkpoint; then block by block (registers,
rip and the bytes the reference wrote are compared after each block); the first
differing block is re-run instruction by instruction.
"""

from __future__ import annotations

from typing import Any

import unicorn as uc

from tcg2wasm.trace.format import Trace
from tcg2wasm.trace.session import (
    Divergence,
    ReplayExit,
    SyscallInjector,
    load_image,
    machine_icount,
    read_regs,
    reg_differences,
    wasm_machine,
)
from tcg2wasm.trace.ucrun import InsnInfo, UcTracker, decode


def reference_tracker(trace: Trace) -> UcTracker:
    """Unicorn on the image, with every recorded block's bytes written over it (first version of each)."""
    tracker = UcTracker()
    load_image(tracker.cpu, trace)
    seen: set[int] = set()
    for index in _first_uses(trace):
        block = trace.blocks[index]
        if block.pc not in seen:
            seen.add(block.pc)
            try:
                tracker.cpu.mem_write(block.pc, block.raw)
            except Exception:  # noqa: BLE001 - code mapped later by a syscall: written when it runs
                continue
    tracker.record_seq = False
    return tracker


def _first_uses(trace: Trace) -> list[int]:
    order: dict[int, None] = {}
    for index in trace.block_seq:
        if index not in order:
            order[index] = None
            if len(order) == len(trace.blocks):
                break
    return list(order)


# -- the lockstep pair ---------------------------------------------------------------------------


class _Pair:
    """The wasm Machine and the Unicorn reference, both fresh from the trace image, syscalls injected."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.wasm = wasm_machine(trace)
        self.base = [0]
        self.wasm.syscall_handler = SyscallInjector(trace, machine_icount(self.wasm, self.base), check=False)
        self.ref = reference_tracker(trace)
        self.ref.cpu.syscall_handler = SyscallInjector(trace, lambda: self.ref.icount, check=False)
        self.writes: list[tuple[int, int]] = []
        self.ref.cpu.uc.hook_add(uc.UC_HOOK_MEM_WRITE, self._on_write)
        self.exited = False
        self.block: Any = None  # the reference's last block (format BlockInfo)

    def _on_write(self, _mu: uc.Uc, _access: int, address: int, size: int, _value: int, _user: object) -> None:
        self.writes.append((address, size))

    @property
    def icount(self) -> int:
        return self.base[0]

    def pc(self) -> int:
        return self.wasm.reg_read("rip")

    def advance(self, target: int, block_limit: int | None = None) -> None:
        """Run both to ``target`` instructions (the reference stops at a block start, or after a block limit)."""
        blocks = [0]

        def stop_at(info: Any) -> bool:
            if self.ref.icount >= target or (block_limit is not None and blocks[0] >= block_limit):
                return True
            blocks[0] += 1
            self.block = info
            return False

        self.ref.before_block = stop_at
        try:
            self.ref.cpu.run(self.ref.cpu.reg_read("rip"))
        except ReplayExit:
            self.exited = True
        finally:
            self.ref.before_block = None
        goal = self.ref.icount
        try:
            if goal > self.base[0]:
                self.wasm.run(self.pc(), count=goal - self.base[0])
        except ReplayExit:
            pass
        self.base[0] = goal


def _fmt_bytes(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw)


def _lifted_ops(machine: Any, pc: int) -> str:
    try:
        from tcg2wasm.frontend.x86_64.translate import translate_block
        from tcg2wasm.ir.printer import format_tb

        return format_tb(translate_block(machine.memory.fetch, pc, max_insns=1))
    except Exception as e:  # noqa: BLE001 - the report must still come out
        return f"(could not lift: {type(e).__name__}: {e})"


def _memory_differences(pair: _Pair, writes: list[tuple[int, int]]) -> list[str]:
    out = []
    for addr, size in sorted(set(writes)):
        try:
            want = pair.ref.cpu.mem_read(addr, size)
            got = pair.wasm.mem_read(addr, size)
        except Exception as e:  # noqa: BLE001
            out.append(f"memory {addr:#x}+{size}: unreadable ({e})")
            continue
        if want != got:
            out.append(f"memory {addr:#x}: reference {want.hex()}, replay {got.hex()}")
    return out


def _compare_pair(pair: _Pair, mask: int) -> list[str]:
    diffs = reg_differences(read_regs(pair.ref.cpu), read_regs(pair.wasm), mask, ("reference", "replay"))
    return diffs + _memory_differences(pair, pair.writes)


def _describe_insn(pair: _Pair, insn: InsnInfo | None, pc: int, icount: int, diffs: list[str],
                   recorded_raw: bytes | None) -> str:
    lines = [f"first divergent instruction: pc {pc:#x} (instruction #{icount + 1} of the run)"]
    try:
        raw = pair.wasm.mem_read(pc, len(insn.raw) if insn else 15)
    except Exception:  # noqa: BLE001
        raw = b""
    replay_insns = decode(raw, pc) if raw else []
    asm = replay_insns[0].asm if replay_insns else "(undecodable)"
    lines.append(f"  bytes {_fmt_bytes(raw[: len(replay_insns[0].raw)] if replay_insns else raw)}   asm: {asm}")
    if recorded_raw is not None and replay_insns and recorded_raw != replay_insns[0].raw:
        lines.append(f"  recorded bytes {_fmt_bytes(recorded_raw)}   asm: {insn.asm if insn else '?'} "
                     "(the code differs from the recording)")
    lines.append("  lifted ops:")
    lines += ["    " + line for line in _lifted_ops(pair.wasm, pc).splitlines()]
    lines.append("  differences after it (reference = the recorded execution re-run in Unicorn):")
    lines += [f"    {d}" for d in diffs]
    return "\n".join(lines)


def _step_pair(pair: _Pair) -> tuple[InsnInfo | None, list[str]]:
    """One instruction on both; returns the reference's instruction and the differences after it."""
    from tcg2wasm.trace.record import step

    pc = pair.ref.cpu.reg_read("rip")
    try:
        ref_insns = decode(pair.ref.cpu.mem_read(pc, 16), pc)
    except Exception:  # noqa: BLE001
        ref_insns = []
    insn = ref_insns[0] if ref_insns else None
    pair.writes = []
    problems = []
    try:
        step(pair.ref)
    except ReplayExit:
        pair.exited = True
    try:
        pair.wasm.run(pair.pc(), count=1)
    except ReplayExit:
        pass
    except Exception as e:  # noqa: BLE001 - a crash of the translated code is the divergence
        problems.append(f"replay raised {type(e).__name__}: {e}")
    pair.base[0] += 1
    return insn, problems + _compare_pair(pair, pair.ref.flag_mask)


def _last_good(trace: Trace, bad: int) -> int:
    good = 0
    for cp in trace.checkpoints:
        if cp.icount < bad:
            good = cp.icount
    for ev in trace.syscalls:
        if ev.icount < bad:
            good = max(good, ev.icount)
    return good


def narrow(trace: Trace, divergence: Divergence, max_blocks: int = 200000) -> str:
    """Re-run from the start and name the first instruction after which replay and recording differ."""
    head = f"divergence: {divergence}"
    good = _last_good(trace, divergence.icount) if divergence.good is None else divergence.good
    pair = _Pair(trace)
    pair.advance(good)
    for _ in range(max_blocks):
        if pair.exited or pair.icount >= divergence.icount:
            break
        start_icount, mask = pair.icount, pair.ref.flag_mask
        pair.writes, pair.block = [], None
        pair.advance(divergence.icount, block_limit=1)
        diffs = _compare_pair(pair, pair.ref.flag_mask)
        if diffs or _code_differs(pair, trace):
            return head + "\n" + _narrow_block(trace, start_icount, mask)
        if pair.icount == start_icount:
            break
    last = pair.ref.last
    where = (f"pc {last.pc:#x} bytes {_fmt_bytes(last.raw)} asm: {last.asm}" if last else "the start")
    return (f"{head}\nthe replay and a Unicorn re-run of the recording agree up to icount {pair.icount}: the "
            f"recorded data itself (a checkpoint or syscall record) disagrees with both.\n"
            f"first divergent instruction: the last one before that point: {where}\n  lifted ops:\n"
            + "\n".join("    " + line for line in (_lifted_ops(pair.wasm, last.pc) if last else "").splitlines()))


def _code_differs(pair: _Pair, trace: Trace) -> bool:
    block = pair.block
    if block is None:
        return False
    try:
        return pair.wasm.mem_read(block.pc, len(block.raw)) != block.raw
    except Exception:  # noqa: BLE001
        return True


def _narrow_block(trace: Trace, start_icount: int, mask: int) -> str:
    pair = _Pair(trace)
    pair.advance(start_icount)
    for _ in range(4096):
        pc = pair.ref.cpu.reg_read("rip")
        icount = pair.icount
        insn, diffs = _step_pair(pair)
        recorded = insn.raw if insn else None
        code_changed = False
        if insn is not None:
            try:
                code_changed = pair.wasm.mem_read(pc, len(insn.raw)) != insn.raw
            except Exception:  # noqa: BLE001
                code_changed = True
        if diffs or code_changed:
            return _describe_insn(pair, insn, pc, icount, diffs or ["(no register difference yet)"], recorded)
        if pair.exited:
            break
    return f"the difference did not reproduce instruction by instruction from icount {start_icount}"
