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

import time
from typing import Any

from tcg2wasm.progress import advance_to
from tcg2wasm.progress import bar as progress_bar
from tcg2wasm.trace.format import Trace, memory_digest
from tcg2wasm.trace.session import (
    Divergence,
    ReplayExit,
    ReplayResult,
    SyscallInjector,
    machine_icount,
    read_regs,
    reg_differences,
    seed_from_counts,
    wasm_machine,
)


def _run_count(machine: Any, pc: int, count: int) -> Any:
    return machine.run(pc, count=count) if count > 0 else None


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
    bar = progress_bar("replay", trace.end.icount, enabled=progress)
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
    return ReplayResult(ok, int(stats.get("guest_insns", 0)), trace.n_blocks, seconds, report, stats)


def _replay_segments(trace: Trace, machine: Any, base: list[int], bar: Any) -> None:
    pc = trace.regs["rip"]
    last_good = 0
    for cp in trace.checkpoints:
        if cp.kind != "blocks":
            continue
        try:
            stop = _run_count(machine, pc, cp.icount - base[0])
        except ReplayExit as e:  # (a damaged trace: its checkpoint lies past the exit; fuzz files, seed 46000648)
            raise Divergence(f"guest exited with status {e.status} before the checkpoint at icount {cp.icount}",
                             cp.icount, good=last_good) from None
        if stop is not None and stop.kind != "count":
            raise Divergence(f"stopped early ({stop.kind} at pc {stop.pc:#x}: {stop.message}) before the "
                             f"checkpoint at icount {cp.icount}", cp.icount, good=last_good)
        base[0] = cp.icount
        diffs = reg_differences(cp.regs, read_regs(machine), cp.flag_mask)
        if diffs:
            raise Divergence(f"checkpoint at icount {cp.icount}: " + "; ".join(diffs), cp.icount)
        last_good, pc = cp.icount, cp.regs["rip"]
        advance_to(bar, cp.icount)
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
