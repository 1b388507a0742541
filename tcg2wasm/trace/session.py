"""What replaying and narrowing share: the divergence and exit outcomes, the machine set-up from a trace,
register comparison and the injection of recorded system calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tcg2wasm.guest_cpu import GuestCPU
from tcg2wasm.machine import Machine
from tcg2wasm.trace.format import RFLAGS_COMPARED, TRACE_REGS, SyscallEvent, Trace


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


def load_image(cpu: GuestCPU, trace: Trace) -> None:
    """Map the trace's initial image into ``cpu`` and set its registers."""
    for r in trace.regions:
        cpu.mem_map(r.addr, r.size, r.perms)
        for off, page in sorted(r.pages.items()):
            cpu.mem_write(r.addr + off, page)
    for name in TRACE_REGS:
        cpu.reg_write(name, trace.regs[name])


def wasm_machine(trace: Trace, engine: str = "wasm") -> Machine:
    machine = Machine(engine=engine)
    load_image(machine, trace)
    return machine


def seed_from_counts(machine: Machine, trace: Trace) -> None:
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


def read_regs(cpu: GuestCPU) -> dict[str, int]:
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

    def __call__(self, cpu: GuestCPU) -> None:
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

    def _check(self, cpu: GuestCPU, event: SyscallEvent, icount: int) -> None:
        where = f"syscall #{self.next} ({event.name}) recorded at icount {event.icount}, pc {event.pc:#x}"
        if icount != event.icount or cpu.reg_read("rip") != event.pc or cpu.reg_read("rax") != event.nr:
            raise Divergence(f"{where}: replay made syscall {cpu.reg_read('rax')} at icount {icount}, "
                             f"pc {cpu.reg_read('rip'):#x}", min(icount, event.icount))
        cp = self.checkpoints.get(event.icount)
        if cp is not None:
            # rcx and r11 at a syscall: the CPU (and the lifted syscall) set them to rip and rflags, a
            # Unicorn recording leaves them as they were; the kernel overwrites both on return anyway
            regs = read_regs(cpu) | {name: cp.regs[name] for name in ("rcx", "r11") if name in cp.regs}
            diffs = reg_differences(cp.regs, regs, cp.flag_mask)
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


def apply_effects(cpu: GuestCPU, event: SyscallEvent) -> None:
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


def machine_icount(machine: Machine, base: list[int]) -> Callable[[], int]:
    # Machine has no public "instructions so far in this run"; _executed_this_run is its own accounting.
    return lambda: base[0] + machine.insns_this_run()
