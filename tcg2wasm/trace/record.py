"""Recording a guest run in Unicorn: initial image, block sequence, syscalls with their effects, checkpoints.

The recording is deterministic given the program, argv, env and AT_RANDOM bytes
(defaults below), except for what the host kernel answers (time, pids, file
contents): those answers are in the trace, so replay never asks the host.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tcg2wasm import __version__
from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.casefile import load_case
from tcg2wasm.linux.elf import load_elf
from tcg2wasm.linux.stack import build_stack
from tcg2wasm.linux.syscall_names import syscall_name
from tcg2wasm.linux.syscalls import SYSCALL_NAMES, GuestExit, LinuxSyscalls
from tcg2wasm.oracle.uc_machine import UnicornMachine
from tcg2wasm.trace.format import (
    DEFAULT_EVERY,
    FORMAT_VERSION,
    TRACE_REGS,
    Block,
    Checkpoint,
    Region,
    SyscallEvent,
    Trace,
    TraceEnd,
    memory_digest,
)
from tcg2wasm.trace.ucrun import BlockInfo, UcTracker
from tcg2wasm.ucadapter import flush_translations

#: Blocks between two periodic checkpoints (``--every``).
#: The environment a recorded program gets unless told otherwise: fixed, so recordings are reproducible.
DEFAULT_ENV: tuple[str, ...] = ("HOME=/", "LANG=C", "PATH=/bin:/usr/bin", "TERM=dumb")
#: AT_RANDOM bytes (the stack-protector and pointer-guard seed of libc).
DEFAULT_RANDOM = bytes(range(0x10, 0x20))
_ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")


def snapshot_regions(cpu: Any) -> list[Region]:
    """Every mapping with its non-zero pages."""
    regions = []
    for addr, size, perms in cpu.mem_regions():
        data = cpu.mem_read(addr, size)
        zero = bytes(PAGE_SIZE)
        pages = {off: data[off : off + PAGE_SIZE] for off in range(0, size, PAGE_SIZE)
                 if data[off : off + PAGE_SIZE] != zero}
        regions.append(Region(addr, size, perms, pages))
    return regions


def read_regs(cpu: Any) -> dict[str, int]:
    return {name: cpu.reg_read(name) for name in TRACE_REGS}


class EffectLog:
    """A CPU proxy handed to the syscall layer: forwards everything, logs what the kernel read and changed."""

    def __init__(self, cpu: UnicornMachine) -> None:
        self._cpu = cpu
        self.effects: list[list[Any]] = []
        self.reads: list[tuple[int, int]] = []
        self._digest = hashlib.sha256()

    def reset(self) -> None:
        self.effects, self.reads, self._digest = [], [], hashlib.sha256()

    def read_digest(self) -> str:
        return self._digest.hexdigest()

    def reg_read(self, name: str) -> int:
        return self._cpu.reg_read(name)

    def reg_write(self, name: str, value: int) -> None:
        self._cpu.reg_write(name, value)
        self.effects.append(["reg", name, self._cpu.reg_read(name)])

    def mem_read(self, addr: int, size: int) -> bytes:
        data = self._cpu.mem_read(addr, size)
        self.reads.append((addr, size))
        self._digest.update(data)
        return data

    def mem_write(self, addr: int, data: bytes) -> None:
        self._cpu.mem_write(addr, data)
        if data.count(0) == len(data):
            self.effects.append(["zero", addr, len(data)])
        else:
            self.effects.append(["write", addr, bytes(data)])

    def mem_map(self, addr: int, size: int, perms: str = "rwx") -> None:
        self._cpu.mem_map(addr, size, perms)
        self.effects.append(["map", addr, size, perms])

    def mem_unmap(self, addr: int, size: int) -> None:
        self._cpu.mem_unmap(addr, size)
        self.effects.append(["unmap", addr, size])

    def mem_protect(self, addr: int, size: int, perms: str) -> None:
        self._cpu.mem_protect(addr, size, perms)
        self.effects.append(["protect", addr, size, perms])

    def mem_regions(self) -> list[tuple[int, int, str]]:
        return self._cpu.mem_regions()


class Recorder:
    """Runs a prepared UcTracker to its end and collects a Trace."""

    def __init__(self, tracker: UcTracker, meta: dict[str, Any], every: int,
                 progress: Callable[[int], None] | None = None) -> None:
        if every < 1:
            raise ValueError(f"checkpoint interval must be at least 1 block, got {every}")
        self.tracker = tracker
        self.cpu = tracker.cpu
        self.every = every
        self.meta = {**meta, "checkpoint_every": every, "tcg2wasm": __version__, "format": FORMAT_VERSION}
        self.regs = read_regs(self.cpu)
        self.regions = snapshot_regions(self.cpu)
        self.checkpoints: list[Checkpoint] = []
        self.events: list[SyscallEvent] = []
        self.log = EffectLog(self.cpu)
        self.progress = progress  # called with the instruction count at every checkpoint
        tracker.before_block = self._before_block

    def checkpoint(self, kind: str) -> None:
        t = self.tracker
        self.checkpoints.append(Checkpoint(t.icount, kind, read_regs(self.cpu), t.flag_mask, len(t.seq)))
        if self.progress is not None:
            self.progress(t.icount)

    def _before_block(self, _info: BlockInfo) -> bool:
        n = len(self.tracker.seq)
        if n and n % self.every == 0:
            last = self.checkpoints[-1].icount if self.checkpoints else 0
            if self.tracker.icount != last or not self.checkpoints:
                self.checkpoint("blocks")
        return False

    def serve_syscall(self, syscalls: LinuxSyscalls) -> None:
        """The Unicorn syscall hook: checkpoint, run the real handler through the effect log, keep the event."""
        cpu = self.cpu
        self.checkpoint("syscall")
        nr = cpu.reg_read("rax")
        event = SyscallEvent(self.tracker.icount, nr, [cpu.reg_read(r) for r in _ARG_REGS], cpu.reg_read("rip"),
                             [], "", [], None, SYSCALL_NAMES.get(nr) or syscall_name(nr) or f"syscall_{nr}")
        self.log.reset()
        try:
            syscalls.handle(self.log)
        except GuestExit as e:
            event.exit_status = e.status
            raise
        finally:
            event.reads, event.read_digest, event.effects = self.log.reads, self.log.read_digest(), self.log.effects
            self.events.append(event)

    def end_icount_at_fault(self, pc: int) -> int:
        """The block hook counted the whole faulting block: take back the instructions from ``pc`` on."""
        t = self.tracker
        if not t.seq:
            return t.icount
        last = t.blocks[t.seq[-1]]
        return t.icount - sum(1 for insn in last.insns if insn.pc >= pc)

    def finish(self, end: TraceEnd) -> Trace:
        end.mem_digest = memory_digest(self.cpu)
        regs = read_regs(self.cpu)
        if not self.checkpoints or self.checkpoints[-1].icount != end.icount or end.kind != "exit":
            self.checkpoints.append(Checkpoint(end.icount, "end", regs, self.tracker.flag_mask, len(self.tracker.seq)))
        t = self.tracker
        blocks = [Block(b.pc, b.raw, b.n_insns, b.count) for b in t.blocks]
        return Trace(self.meta, self.regs, self.regions, blocks, array("I", t.seq), self.checkpoints, self.events,
                     end)


def _stop_end(rec: Recorder, stop: Any) -> TraceEnd:
    icount = rec.tracker.icount
    if stop.kind == "fault":
        icount = rec.end_icount_at_fault(stop.pc)
    return TraceEnd(stop.kind, icount, stop.pc, None, getattr(stop, "fault", None))


def record_program(path: str | Path, argv: list[str], *, env: list[str] | None = None,
                   every: int = DEFAULT_EVERY, random_bytes: bytes = DEFAULT_RANDOM,
                   progress: Callable[[int], None] | None = None) -> Trace:
    """Run a static Linux program in Unicorn and record it (its stdio goes to the host's).

    ``progress`` is called with the instruction count so far at every checkpoint.
    """
    tracker = UcTracker()
    cpu = tracker.cpu
    image = load_elf(cpu, path)
    envp = list(DEFAULT_ENV if env is None else env)
    rsp = build_stack(cpu, image, argv, envp, hwcap=getattr(cpu, "hwcap", 0), random_bytes=random_bytes)
    cpu.reg_write("rsp", rsp)
    cpu.reg_write("rip", image.entry)
    meta = {"mode": "user", "program": Path(path).name, "argv": argv, "env": envp}
    rec = Recorder(tracker, meta, every, progress)
    syscalls = LinuxSyscalls(rec.log, image.brk)
    cpu.syscall_handler = lambda _cpu: rec.serve_syscall(syscalls)
    pc = image.entry
    try:
        while True:
            stop = cpu.run(pc)
            if stop.kind != "syscall":
                return rec.finish(_stop_end(rec, stop))
            pc = stop.pc
    except GuestExit as e:
        return rec.finish(TraceEnd("exit", tracker.icount, cpu.reg_read("rip"), e.status))


def _run_case_to_count(rec: Recorder, entry: int, count: int) -> Any:
    """Run exactly ``count`` instructions (Machine counting): blocks, then single steps."""
    tracker = rec.tracker
    tracker.before_block = lambda info: rec._before_block(info) or tracker.icount + info.n_insns > count
    stop = tracker.cpu.run(entry)
    tracker.before_block = rec._before_block
    while stop.kind in ("until", "count") and tracker.icount < count:
        stop = step(tracker)
    return stop


def step(tracker: UcTracker) -> Any:
    """One instruction (Machine counting) in Unicorn; the extra ``rep`` re-check runs too."""
    from tcg2wasm.trace.ucrun import decode

    cpu = tracker.cpu
    pc = cpu.reg_read("rip")
    insns = decode(cpu.mem_read(pc, 16), pc) if _fetchable(cpu, pc) else []
    tracker.counting = False
    try:
        flush_translations(cpu.uc)  # Unicorn's count is only exact for freshly translated code
        stop = cpu.run(pc, count=1)
        if insns and insns[0].rep and stop.kind == "count" and stop.pc == pc and tracker.counter_zero(insns[0]):
            flush_translations(cpu.uc)
            stop = cpu.run(pc, count=1)
    finally:
        tracker.counting = True
    if stop.kind != "fault":
        tracker.icount += 1
        if insns:
            tracker.flag_mask = (tracker.flag_mask & ~insns[0].clears) | insns[0].undefined
            tracker.last = insns[0]
    return stop


def _fetchable(cpu: Any, pc: int) -> bool:
    try:
        cpu.mem_read(pc, 16)
    except Exception:  # noqa: BLE001 - Unicorn or GuestMemoryError: not readable as a whole
        return False
    return True


def record_case(case_path: str | Path, *, every: int = DEFAULT_EVERY,
                progress: Callable[[int], None] | None = None) -> Trace:
    """Record a state case (``docs/cases.md``) run in Unicorn to its stop condition."""
    case = load_case(case_path)
    tracker = UcTracker()
    cpu = tracker.cpu
    for region in case.memory:
        cpu.mem_map(region.addr, region.size, region.perms)
        if region.data:
            cpu.mem_write(region.addr, region.data)
    cpu.reg_write("rflags", 0x2)
    for name, value in case.regs.items():
        cpu.reg_write(name, value)
    meta = {"mode": "case", "program": case.name, "case_file": Path(case_path).name}
    rec = Recorder(tracker, meta, every, progress)
    if case.stop.count is not None:
        stop = _run_case_to_count(rec, case.entry, case.stop.count)
    else:
        stop = cpu.run(case.entry, until=case.stop.until)
    return rec.finish(_stop_end(rec, stop))
