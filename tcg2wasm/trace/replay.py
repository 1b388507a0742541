"""Replaying a trace through the wasm engine (narrowing a divergence is in ``narrow.py``).

Replay builds a Machine from the trace's initial image, runs it from
checkpoint to checkpoint with exact instruction counts, and serves each
syscall from the trace (checking number, arguments, pc, instruction count,
registers and the bytes the kernel read; then writing the recorded effects).
The host is never asked anything.

On a divergence, :func:`tcg2wasm.trace.narrow.narrow` finds the first divergent
instruction. It is imported only then: a replay that passes needs neither Unicorn's
block tracker nor anything else narrowing uses.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tcg2wasm.trace.format import RFLAGS_COMPARED, TRACE_REGS, SyscallEvent, Trace, memory_digest


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
    """Give the Machine the recording's profile: which blocks run often.

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


def machine_icount(machine: Any, base: list[int]) -> Callable[[], int]:
    # Machine has no public "instructions so far in this run"; _executed_this_run is its own accounting.
    return lambda: base[0] + machine._executed_this_run()  # noqa: SLF001


def replay(trace: Trace, *, engine: str = "wasm", progress: bool = False, narrow_on_divergence: bool = True,
           profile: bool = True) -> ReplayResult:
    """Replay ``trace`` on ``engine``; on a divergence the result's report names the first bad instruction.

    ``profile=False`` ignores the trace's block counts (the Machine profiles as in a run).
    """
    machine = wasm_machine(trace, engine)
    if profile:
        seed_from_counts(machine, trace)
    base = [0]
    injector = SyscallInjector(trace, machine_icount(machine, base))
    machine.syscall_handler = injector
    bar = _Progress(trace.end.icount, progress)
    t0 = time.perf_counter()
    try:
        _replay_segments(trace, machine, base, bar)
        ok, report = True, ""
    except Divergence as d:
        bar.close()
        ok = False
        if narrow_on_divergence:
            from tcg2wasm.trace.narrow import narrow

            report = narrow(trace, d)
        else:
            report = str(d)
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
    if end.mem_digest and memory_digest(machine, trace.version) != end.mem_digest:
        raise Divergence("final memory differs from the recording (sha256 of all mappings)", end.icount, good=0)
