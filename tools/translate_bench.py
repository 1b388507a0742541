#!/usr/bin/env python3
"""Translation cost of a real guest program: lifting and optimizing its blocks.

Runs a static x86-64 Linux program on the wasm engine (as ``tcg2wasm run``
does), keeps every translation block the front end lifts, then reports for
those blocks: how many, lift ms per block (timed during the run), optimize
ms per block (``optimize_tb`` re-run over all of them, best of ``--repeat``)
and the op counts before and after optimization. Times are CPU time of the
calling thread (``time.thread_time``): other jobs on a shared machine disturb
it less than wall time, and wasmtime's own threads are not counted.

``--dump FILE`` writes the optimized ops of every block, sorted by pc, so that
two versions of the optimizer can be compared byte for byte (``cmp``).
``--save FILE`` pickles the lifted blocks and lift times, ``--load FILE`` uses
them instead of running the program, so that the optimizer can be compared on
exactly the same input while the rest of the translator changes.
``--profile N`` prints the N most expensive functions of one optimize round
(cProfile, sorted by own time).

Usage (options go before the program; everything after it is the guest's argv):
    .venv/bin/python tools/translate_bench.py                        # guests/bin/compute.musl
    .venv/bin/python tools/translate_bench.py guests/bin/numbers.glibc one two
    .venv/bin/python tools/translate_bench.py --dump /tmp/sort.ops /bin/busybox sort FILE
    .venv/bin/python tools/translate_bench.py --load /tmp/sort.tbs --dump /tmp/sort2.ops
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
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchutil import guest_stdout_silenced  # noqa: E402  (tools/ is on sys.path)

import tcg2wasm.frontend.x86_64.translate as translate_module  # noqa: E402
from tcg2wasm.ir.core import TranslationBlock  # noqa: E402
from tcg2wasm.ir.printer import format_ops  # noqa: E402
from tcg2wasm.linux.process import Process  # noqa: E402
from tcg2wasm.opt import optimize_tb  # noqa: E402

DEFAULT_PROGRAM = str(ROOT / "guests" / "bin" / "compute.musl")


@contextmanager
def collecting_lifts(tbs: list[TranslationBlock], lift_seconds: list[float]):
    """While active, every block lifted by ``translate_block`` is appended to ``tbs`` with its lift time."""
    original: Callable[..., TranslationBlock] = translate_module.translate_block

    def timed_translate_block(*args, **kwargs) -> TranslationBlock:
        t0 = time.thread_time()
        tb = original(*args, **kwargs)
        lift_seconds.append(time.thread_time() - t0)
        tbs.append(tb)
        return tb

    translate_module.translate_block = timed_translate_block
    try:
        yield
    finally:
        translate_module.translate_block = original


def run_guest(argv: list[str], quiet: bool) -> tuple[list[TranslationBlock], list[float], int]:
    """Lifted blocks, their lift times, and the guest's exit status."""
    tbs: list[TranslationBlock] = []
    lift_seconds: list[float] = []
    with collecting_lifts(tbs, lift_seconds), guest_stdout_silenced(quiet):
        status = Process(argv[0], argv, engine="wasm").run().status
    return tbs, lift_seconds, status


def time_optimizer(tbs: list[TranslationBlock], repeat: int) -> tuple[float, list[TranslationBlock]]:
    """Best total seconds of ``optimize_tb`` over all blocks, and the optimized blocks.

    The objects that exist before a round (the blocks, the machine) are frozen out of the garbage
    collector meanwhile: its full collections would otherwise mostly measure the size of this
    benchmark's own heap. Collections of what the optimizer allocates are still counted.
    """
    best = float("inf")
    optimized: list[TranslationBlock] = []
    for _ in range(repeat):
        optimized = []
        gc.collect()
        gc.freeze()
        t0 = time.thread_time()
        optimized = [optimize_tb(tb) for tb in tbs]
        best = min(best, time.thread_time() - t0)
        gc.unfreeze()
    return best, optimized


def profile_optimizer(tbs: list[TranslationBlock], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for tb in tbs:
        optimize_tb(tb)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def write_dump(path: str, optimized: list[TranslationBlock]) -> None:
    """The optimized ops of every block, by pc (then size); identical runs give identical files."""
    with open(path, "w") as f:
        for tb in sorted(optimized, key=lambda tb: (tb.pc, tb.size)):
            f.write(f"TB 0x{tb.pc:x} size={tb.size} ops={len(tb.ops)}\n{format_ops(tb.ops)}\n\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("program", nargs="?", default=DEFAULT_PROGRAM, help="static x86-64 ELF (default compute.musl)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")
    parser.add_argument("--dump", metavar="FILE", help="write the optimized ops of every block to FILE")
    parser.add_argument("--repeat", type=int, default=3, help="optimize rounds to time, best taken (default 3)")
    parser.add_argument("--profile", type=int, metavar="N", help="print the N costliest functions of optimize_tb")
    parser.add_argument("--save", metavar="FILE", help="pickle the lifted blocks and lift times to FILE")
    parser.add_argument("--load", metavar="FILE", help="use blocks pickled by --save instead of running a program")
    parser.add_argument("--show-output", action="store_true", help="let the guest's stdout through")
    opts = parser.parse_args(argv)

    if opts.load:
        with open(opts.load, "rb") as f:
            guest_argv, tbs, lift_seconds, status = pickle.load(f)
    else:
        guest_argv = [opts.program, *opts.args]
        tbs, lift_seconds, status = run_guest(guest_argv, quiet=not opts.show_output)
    if opts.save:
        with open(opts.save, "wb") as f:
            pickle.dump((guest_argv, tbs, lift_seconds, status), f)
    if not tbs:
        print("no blocks were lifted", file=sys.stderr)
        return 1
    opt_seconds, optimized = time_optimizer(tbs, max(1, opts.repeat))
    n = len(tbs)
    ops_before = sum(len(tb.ops) for tb in tbs)
    ops_after = sum(len(tb.ops) for tb in optimized)
    print(f"program      {' '.join([Path(guest_argv[0]).name, *guest_argv[1:]])} (exit status {status})")
    print(f"blocks       {n}")
    print(f"lift         {1000 * sum(lift_seconds) / n:.3f} ms/TB")
    print(f"optimize     {1000 * opt_seconds / n:.3f} ms/TB (best of {max(1, opts.repeat)})")
    print(f"ops          {ops_before} -> {ops_after} ({ops_before / n:.1f} -> {ops_after / n:.1f} per TB)")
    if opts.dump:
        write_dump(opts.dump, optimized)
        print(f"dump         {opts.dump}")
    if opts.profile:
        profile_optimizer(tbs, opts.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
