"""Replaying a trace through the wasm engine, and narrowing a divergence to its first instruction.

Replay builds a Machine from the trace's initial image, runs it from
checkpoint to checkpoint with exact instruction counts, and serves each
syscall from the trace (checking number, arguments, pc, instruction count,
registers and the bytes the kernel read; then writing the recorded effects).
The host is never asked anything.

On a divergence, :func:`narrow` re-runs from the start, in lockstep, the wasm
Machine and a Unicorn *reference*: Unicorn on the same image with the
recorded block bytes written over it (so an altered code byte in the image
shows up as a difference, not as a second opinion agreeing with it). Both run
to the last good checkpoint; then block by block (registers, rip and the bytes
the reference wrote are compared after each block); the first differing block
is re-run instruction by instruction.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import unicorn as uc

from tcg2wasm.trace.format import RFLAGS_COMPARED, TRACE_REGS, SyscallEvent, Trace, memory_digest
from tcg2wasm.trace.ucrun import InsnInfo, UcTracker, decode


class Divergence(Exception):  # noqa: N818 - an outcome of replay, reported to the user
    """The replay left the recorded execution; ``icount`` is the first point known to differ."""

    def __init__(self, message: str, icount: int, good: int | None = None) -> None:
        super().__init__(message)
        self.icount = icount
        self.good = good  # a point known to match, when not simply the checkpoint before ``icount``


class ReplayExit(Exception):  # noqa: N818 - not an error: the recorded exit was reached
    def __init__(self, status: int) -> None:
        super().__init__(f"guest exited with status {status}")
        self.status = status


@dataclass
class ReplayResult:
    ok: bool
    icount: int
    blocks: int
    seconds: float
    report: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.icount / self.seconds if self.seconds > 0 else 0.0
        return (f"replay ok: {self.blocks} blocks, {self.icount} instructions, {self.seconds:.2f} s, "
                f"{rate:,.0f} instructions/s")


# -- building machines from a trace ------------------------------------------------------------------


def load_image(cpu: Any, trace: Trace) -> None:
    """Map the trace's initial image into ``cpu`` and set its registers."""
    for r in trace.regions:
        cpu.mem_map(r.addr, r.size, r.perms)
        for off, page in sorted(r.pages.items()):
            cpu.mem_write(r.addr + off, page)
    for name in TRACE_REGS:
        cpu.reg_write(name, trace.regs[name])


def wasm_machine(trace: Trace, engine: str = "wasm") -> Any:
    from tcg2wasm.machine import Machine

    machine = Machine(engine=engine)
    load_image(machine, trace)
    return machine


def seed_from_counts(machine: Any, trace: Trace) -> None:
    """Give the Machine the recording's profile: the blocks that ran, and which ran often.

    A run learns this as it goes: a block is interpreted until it has missed ``hot_threshold``
    times, and regions grow along every block the interpreter has seen, including code that
    ran once. A replay knows the counts in advance, so blocks that will run at least
    ``hot_threshold`` times are compiled at their first miss, and regions hold only those
    (code that runs a few times costs less to interpret than to compile). Version 2 traces
    carry no counts: the Machine then profiles as in a run.
    """
    if not hasattr(machine, "seed_profile") or not any(b.count for b in trace.blocks):
        return
    hot = {b.pc for b in trace.blocks if b.count >= machine.hot_threshold}
    machine.seed_profile(hot, hot=hot)


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


# -- comparing -----------------------------------------------------------------------------------


def read_regs(cpu: Any) -> dict[str, int]:
    if hasattr(cpu, "regs"):  # the Machine reads them all at once
        return cpu.regs(TRACE_REGS)
    return {name: cpu.reg_read(name) for name in TRACE_REGS}


def reg_differences(expected: dict[str, int], actual: dict[str, int], flag_mask: int,
                    labels: tuple[str, str] = ("recorded", "replay")) -> list[str]:
    out = []
    for name in TRACE_REGS:
        want, got = expected[name], actual[name]
        if name == "rflags":
            keep = RFLAGS_COMPARED & ~flag_mask
            want, got = want & keep, got & keep
        if want != got:
            extra = f" (compared bits {RFLAGS_COMPARED & ~flag_mask:#x})" if name == "rflags" else ""
            out.append(f"{name}: {labels[0]} {want:#x}, {labels[1]} {got:#x}{extra}")
    return out


# -- syscall injection ---------------------------------------------------------------------------


class SyscallInjector:
    """A syscall handler that serves the recorded events in order; never touches the host."""

    def __init__(self, trace: Trace, icount: Callable[[], int], *, check: bool = True) -> None:
        self.events = trace.syscalls
        self.checkpoints = {c.icount: c for c in trace.checkpoints if c.kind == "syscall"}
        self.next = 0
        self.icount = icount
        self.check = check
        self.output: list[tuple[int, bytes]] = []

    def __call__(self, cpu: Any) -> None:
        icount = self.icount()
        if self.next >= len(self.events):
            raise Divergence(f"syscall {cpu.reg_read('rax')} at icount {icount} (pc {cpu.reg_read('rip'):#x}): "
                             "the recording has no more syscalls", icount)
        event = self.events[self.next]
        self.next += 1
        if self.check:
            self._check(cpu, event, icount)
        apply_effects(cpu, event)
        if event.exit_status is not None:
            raise ReplayExit(event.exit_status)

    def _check(self, cpu: Any, event: SyscallEvent, icount: int) -> None:
        where = f"syscall #{self.next} ({event.name}) recorded at icount {event.icount}, pc {event.pc:#x}"
        if icount != event.icount or cpu.reg_read("rip") != event.pc or cpu.reg_read("rax") != event.nr:
            raise Divergence(f"{where}: replay made syscall {cpu.reg_read('rax')} at icount {icount}, "
                             f"pc {cpu.reg_read('rip'):#x}", min(icount, event.icount))
        cp = self.checkpoints.get(event.icount)
        if cp is not None:
            diffs = reg_differences(cp.regs, read_regs(cpu), cp.flag_mask)
            if diffs:
                raise Divergence(f"{where}: registers differ: " + "; ".join(diffs), icount)
        h = hashlib.sha256()
        try:
            for addr, size in event.reads:
                h.update(cpu.mem_read(addr, size))
        except Exception as e:  # noqa: BLE001 - GuestMemoryError or Unicorn: memory the recording had
            raise Divergence(f"{where}: memory the kernel read is not there: {e}", icount) from None
        if h.hexdigest() != event.read_digest:
            raise Divergence(f"{where}: the guest memory the kernel read (buffers, paths) differs", icount)


def apply_effects(cpu: Any, event: SyscallEvent) -> None:
    for effect in event.effects:
        match effect[0]:
            case "write":
                cpu.mem_write(effect[1], effect[2])
            case "zero":
                cpu.mem_write(effect[1], bytes(effect[2]))
            case "map":
                cpu.mem_map(effect[1], effect[2], effect[3])
            case "unmap":
                cpu.mem_unmap(effect[1], effect[2])
            case "protect":
                cpu.mem_protect(effect[1], effect[2], effect[3])
            case "reg":
                cpu.reg_write(effect[1], effect[2])
            case other:
                raise ValueError(f"unknown syscall effect {other!r}")


# -- replay --------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(1, total)
        self.enabled = enabled
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        width = 40
        filled = width * done // self.total
        sys.stderr.write(f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {100 * done // self.total:3d}%")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _run_count(machine: Any, pc: int, count: int) -> Any:
    return machine.run(pc, count=count) if count > 0 else None


def _machine_icount(machine: Any, base: list[int]) -> Callable[[], int]:
    # Machine has no public "instructions so far in this run"; _executed_this_run is its own accounting.
    return lambda: base[0] + machine._executed_this_run()  # noqa: SLF001


def replay(trace: Trace, *, engine: str = "wasm", progress: bool = False, narrow_on_divergence: bool = True
           ) -> ReplayResult:
    """Replay ``trace`` on ``engine``; on a divergence the result's report names the first bad instruction."""
    machine = wasm_machine(trace, engine)
    seed_from_counts(machine, trace)
    base = [0]
    injector = SyscallInjector(trace, _machine_icount(machine, base))
    machine.syscall_handler = injector
    bar = _Progress(trace.end.icount, progress)
    t0 = time.perf_counter()
    try:
        _replay_segments(trace, machine, base, bar)
        ok, report = True, ""
    except Divergence as d:
        bar.close()
        ok = False
        report = narrow(trace, d) if narrow_on_divergence else str(d)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    stats = machine.stats.as_dict()
    return ReplayResult(ok, stats.get("guest_insns", 0), trace.n_blocks, seconds, report, stats)


def _replay_segments(trace: Trace, machine: Any, base: list[int], bar: _Progress) -> None:
    pc = trace.regs["rip"]
    last_good = 0
    for cp in trace.checkpoints:
        if cp.kind != "blocks":
            continue
        stop = _run_count(machine, pc, cp.icount - base[0])
        if stop is not None and stop.kind != "count":
            raise Divergence(f"stopped early ({stop.kind} at pc {stop.pc:#x}: {stop.message}) before the "
                             f"checkpoint at icount {cp.icount}", cp.icount, good=last_good)
        base[0] = cp.icount
        diffs = reg_differences(cp.regs, read_regs(machine), cp.flag_mask)
        if diffs:
            raise Divergence(f"checkpoint at icount {cp.icount}: " + "; ".join(diffs), cp.icount)
        last_good, pc = cp.icount, cp.regs["rip"]
        bar.update(cp.icount)
    _replay_end(trace, machine, base, pc)


def _replay_end(trace: Trace, machine: Any, base: list[int], pc: int) -> None:
    end = trace.end
    left = end.icount - base[0]
    try:
        stop = machine.run(pc, count=left + (0 if end.kind in ("exit", "until", "count") else 1))
    except ReplayExit as e:
        if end.kind != "exit" or e.status != end.status:
            raise Divergence(f"guest exited with status {e.status}; the recording ended with {end.kind}",
                             end.icount) from None
    else:
        if end.kind == "exit":
            raise Divergence(f"run ended with {stop.kind} at pc {stop.pc:#x} ({stop.message}); the recording "
                             f"exited with status {end.status}", end.icount)
        want = "count" if end.kind == "until" else end.kind
        if stop.kind != want or stop.pc != end.pc:
            raise Divergence(f"run ended with {stop.kind} at pc {stop.pc:#x}; the recording ended with {end.kind} "
                             f"at pc {end.pc:#x}", end.icount)
    final = next((c for c in trace.checkpoints if c.kind == "end"), None)
    if final is not None:
        diffs = reg_differences(final.regs, read_regs(machine), final.flag_mask)
        if diffs:
            raise Divergence("final registers differ: " + "; ".join(diffs), end.icount)
    if end.mem_digest and memory_digest(machine) != end.mem_digest:
        raise Divergence("final memory differs from the recording (sha256 of all mappings)", end.icount, good=0)


# -- narrowing -----------------------------------------------------------------------------------


class _Pair:
    """The wasm Machine and the Unicorn reference, both fresh from the trace image, syscalls injected."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.wasm = wasm_machine(trace)
        self.base = [0]
        self.wasm.syscall_handler = SyscallInjector(trace, _machine_icount(self.wasm, self.base), check=False)
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
            + "\n".join("    " + line for line in _lifted_ops(pair.wasm, last.pc).splitlines() if last))


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
