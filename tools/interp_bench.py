#!/usr/bin/env python3
"""Speed of the IR interpreter (the cold tier) on the blocks a real guest program runs in it.

Runs a static x86-64 Linux program on the wasm engine (as ``tcg2wasm run``
does) and records every call the Machine makes to ``run_tb``: the TB, the
globals before, ``max_insns``, what each guest-memory access returned (or the
fault it raised), then the result and the globals after. The calls are then
replayed against a memory that hands back the recorded loads, so only the
interpreter is timed, on exactly the blocks and inputs of the real run:

* ``cold``: the calls in their recorded order, each TB object starting
  unprepared, as in the run (a TB is interpreted up to hot_threshold - 1 times,
  so preparing it is part of the cost);
* ``warm``: the same calls again with every TB already prepared.

Each replay also checks that the result, the globals and the stores equal the
recorded ones. When ``tcg2wasm.ir.interp`` has the op-by-op reference
interpreter (``_run_tb_reference``), it is timed too, so one run gives the
before/after pair. Times are CPU time (``time.process_time``), best of
``--repeat``.

Usage (options go before the program; everything after it is the guest's argv):
    .venv/bin/python tools/interp_bench.py                                  # guests/bin/numbers.glibc
    .venv/bin/python tools/interp_bench.py /bin/busybox sort /tmp/sortin.txt
    .venv/bin/python tools/interp_bench.py --save /tmp/sort.calls /bin/busybox sort /tmp/sortin.txt
    .venv/bin/python tools/interp_bench.py --load /tmp/sort.calls
"""

from __future__ import annotations

import os

os.environ.setdefault("TCG2WASM_COLD_TIER", "interp")  # measure the interpreter tier and translation, not Unicorn
import argparse
import cProfile
import gc
import pickle
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchutil import guest_stdout_silenced  # noqa: E402  (tools/ is on sys.path)

import tcg2wasm.ir.interp as interp  # noqa: E402
import tcg2wasm.runtime.engines as machine_module  # noqa: E402  (where the tiers call run_tb)
from tcg2wasm.errors import GuestFault  # noqa: E402
from tcg2wasm.ir.core import TranslationBlock  # noqa: E402
from tcg2wasm.ir.interp import TBResult  # noqa: E402
from tcg2wasm.linux.process import Process  # noqa: E402

DEFAULT_PROGRAM = str(ROOT / "guests" / "bin" / "numbers.glibc")

RunTB = Callable[..., TBResult]


@dataclass
class Call:
    """One recorded ``run_tb`` call."""

    tb: TranslationBlock
    values_before: list[int]
    max_insns: int | None
    accesses: list[tuple]  # ("load", value) | ("store", value) | ("fault", kind, addr), in order
    result: TBResult
    values_after: list[int]


class RecordingMemory:
    """Passes accesses to the Machine's memory and logs their outcome."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.log: list[tuple] = []

    def load(self, addr: int, size: int) -> int:
        try:
            value = self.inner.load(addr, size)
        except GuestFault as f:
            self.log.append(("fault", f.kind, f.addr))
            raise
        self.log.append(("load", value))
        return value

    def store(self, addr: int, size: int, value: int) -> None:
        try:
            self.inner.store(addr, size, value)
        except GuestFault as f:
            self.log.append(("fault", f.kind, f.addr))
            raise
        self.log.append(("store", value))


class ReplayMemory:
    """Hands back the recorded loads and faults; keeps the stored values for the check."""

    def __init__(self, accesses: list[tuple]) -> None:
        self.pending: Iterator[tuple] = iter(accesses)
        self.stored: list[int] = []

    def load(self, addr: int, size: int) -> int:
        event = next(self.pending)
        if event[0] == "fault":
            raise GuestFault(event[1], event[2])
        return event[1]

    def store(self, addr: int, size: int, value: int) -> None:
        event = next(self.pending)
        if event[0] == "fault":
            raise GuestFault(event[1], event[2])
        self.stored.append(value)


@contextmanager
def recording_calls(calls: list[Call], live_seconds: list[float]):
    """While active, every ``run_tb`` call of the Machine is recorded in ``calls`` and timed."""
    original: RunTB = machine_module.run_tb

    def recording_run_tb(tb, values, mem, max_insns=None) -> TBResult:
        before = list(values)
        recorder = RecordingMemory(mem)
        t0 = time.process_time()
        result = original(tb, values, recorder, max_insns)
        live_seconds.append(time.process_time() - t0)
        calls.append(Call(tb, before, max_insns, recorder.log, result, list(values)))
        return result

    machine_module.run_tb = recording_run_tb
    try:
        yield
    finally:
        machine_module.run_tb = original


def record(argv: list[str], quiet: bool) -> tuple[list[Call], float, float, int]:
    """The recorded calls, seconds spent in run_tb during the run, the run's seconds, and the exit status."""
    calls: list[Call] = []
    live_seconds: list[float] = []
    t0 = time.process_time()
    with recording_calls(calls, live_seconds), guest_stdout_silenced(quiet):
        status = Process(argv[0], argv, engine="wasm").run().status
    return calls, sum(live_seconds), time.process_time() - t0, status


def forget_prepared(calls: list[Call]) -> None:
    """Drop what the interpreter cached on the recorded TBs, so that the next replay is cold."""
    forget = getattr(interp, "forget_prepared", None)
    if forget is not None:
        for call in calls:
            forget(call.tb)


def replay_once(run: RunTB, calls: list[Call], check: bool) -> float:
    """Seconds to replay every call; with ``check``, assert that each one reproduces its recording."""
    memories = [ReplayMemory(c.accesses) for c in calls]
    inputs = [list(c.values_before) for c in calls]
    gc.collect()
    t0 = time.process_time()
    results = [run(c.tb, values, mem, c.max_insns) for c, values, mem in zip(calls, inputs, memories, strict=True)]
    seconds = time.process_time() - t0
    if check:
        for call, result, values, mem in zip(calls, results, inputs, memories, strict=True):
            assert result == call.result, (hex(call.tb.pc), result, call.result)
            assert values == call.values_after, hex(call.tb.pc)
            assert mem.stored == [e[1] for e in call.accesses if e[0] == "store"], hex(call.tb.pc)
    return seconds


def best_replay(run: RunTB, calls: list[Call], repeat: int, cold: bool) -> float:
    best = float("inf")
    for i in range(repeat):
        if cold:
            forget_prepared(calls)
        else:
            replay_once(run, calls, check=False)  # prepares every TB
        best = min(best, replay_once(run, calls, check=(i == 0)))
    return best


def profile_replay(run: RunTB, calls: list[Call], top: int) -> None:
    forget_prepared(calls)
    profiler = cProfile.Profile()
    profiler.enable()
    replay_once(run, calls, check=False)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("program", nargs="?", default=DEFAULT_PROGRAM, help="static x86-64 ELF (default numbers.glibc)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")
    parser.add_argument("--repeat", type=int, default=3, help="replays to time, best taken (default 3)")
    parser.add_argument("--save", metavar="FILE", help="pickle the recorded calls to FILE")
    parser.add_argument("--load", metavar="FILE", help="replay calls pickled by --save instead of running a program")
    parser.add_argument("--profile", type=int, metavar="N", help="print the N costliest functions of a cold replay")
    parser.add_argument("--show-output", action="store_true", help="let the guest's stdout through")
    opts = parser.parse_args(argv)

    if opts.load:
        with open(opts.load, "rb") as f:
            guest_argv, calls, live, total, status = pickle.load(f)
    else:
        guest_argv = [opts.program, *opts.args]
        calls, live, total, status = record(guest_argv, quiet=not opts.show_output)
    if opts.save:
        forget_prepared(calls)  # what the interpreter caches on a TB is not picklable
        with open(opts.save, "wb") as f:
            pickle.dump((guest_argv, calls, live, total, status), f)
    if not calls:
        print("the interpreter ran no blocks", file=sys.stderr)
        return 1
    n = len(calls)
    n_ops = sum(len(c.tb.ops) for c in calls)
    repeat = max(1, opts.repeat)
    print(f"program      {' '.join([Path(guest_argv[0]).name, *guest_argv[1:]])} (exit status {status})")
    print(f"calls        {n} on {len({id(c.tb) for c in calls})} TBs, {n_ops / n:.1f} ops per TB (as listed)")
    print(f"live run     {total:.2f} s, of which run_tb {live:.2f} s ({1e6 * live / n:.1f} us/TB, recorded)")
    engines: list[tuple[str, RunTB]] = [("run_tb", interp.run_tb)]
    if hasattr(interp, "_run_tb_reference"):
        engines.append(("reference", interp._run_tb_reference))
    for name, run in engines:
        for cold in (True, False):
            seconds = best_replay(run, calls, repeat, cold)
            label = f"{name} {'cold' if cold else 'warm'}"
            print(f"{label:<16} {1e6 * seconds / n:7.1f} us/TB  {1e9 * seconds / n_ops:6.0f} ns/op"
                  f"  (best of {repeat})")
    if opts.profile:
        profile_replay(interp.run_tb, calls, opts.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
