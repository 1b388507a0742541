"""Replay speed against `tcg2wasm run --engine wasm` on the same program (issue 4's 10^8-instruction check).

Records guests/bin/compute.musl (about 2.8e8 guest instructions) in Unicorn once, then times, in the same
run and alternating, ``--pairs`` wasm runs of the program and replays of its trace (both as commands, process
start included), and prints each pair, the medians and the median of the per-pair ratios. Shared machines are
noisy: read the medians, not one pair.

    .venv/bin/python tools/trace_bench.py [--pairs 7] [--program guests/bin/compute.musl] [--trace FILE]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tcg2wasm.trace import format as trace_format  # noqa: E402
from tcg2wasm.trace.format import DEFAULT_EVERY  # noqa: E402
from tcg2wasm.trace.record import record_program  # noqa: E402


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command; CPU time (user + system of the child) is the
    steadier figure on a shared machine, where wall time also counts waiting for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[2:4])} failed:\n{proc.stdout.decode()[-2000:]}{proc.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _timed_run(program: Path) -> tuple[float, float]:
    return _timed([sys.executable, "-m", "tcg2wasm", "run", str(program)])


def _timed_replay(trace_path: Path) -> tuple[float, float]:
    """`tcg2wasm replay` as a user runs it: process start and trace loading included, like the run."""
    return _timed([sys.executable, "-m", "tcg2wasm", "replay", "--no-progress", str(trace_path)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", type=Path, default=ROOT / "guests" / "bin" / "compute.musl")
    default_trace = Path(f"/tmp/tcg2wasm-compute.v{trace_format.FORMAT_VERSION}.t2wt")  # re-recorded per format
    parser.add_argument("--trace", type=Path, default=default_trace)
    parser.add_argument("--pairs", type=int, default=7, help="run/replay pairs to time (default 7)")
    args = parser.parse_args()
    if not args.trace.exists():
        print(f"recording {args.program} in Unicorn (a few minutes) -> {args.trace}", flush=True)
        trace_format.save(record_program(args.program, [args.program.name], every=DEFAULT_EVERY), args.trace)
    insns = trace_format.load(args.trace).icount
    print(f"{insns:,} guest instructions; both timed as commands (process start included)")
    runs: list[tuple[float, float]] = []
    replays: list[tuple[float, float]] = []
    for pair in range(args.pairs):
        first_replay = pair % 2 == 1  # alternate the order: neither always gets the warmer machine
        if first_replay:
            replays.append(_timed_replay(args.trace))
        runs.append(_timed_run(args.program))
        if not first_replay:
            replays.append(_timed_replay(args.trace))
        (run_wall, run_cpu), (replay_wall, replay_cpu) = runs[-1], replays[-1]
        print(f"  pair {pair + 1}: run {run_wall:.2f} s ({run_cpu:.2f} s CPU), replay {replay_wall:.2f} s "
              f"({replay_cpu:.2f} s CPU); replay/run speed {run_wall / replay_wall:.2f}x wall, "
              f"{run_cpu / replay_cpu:.2f}x CPU", flush=True)
    for what, index in (("wall", 0), ("CPU", 1)):
        run_s = statistics.median(r[index] for r in runs)
        replay_s = statistics.median(r[index] for r in replays)
        ratios = [r[index] / p[index] for r, p in zip(runs, replays, strict=True)]
        print(f"{what:4}: run --engine wasm median {run_s:5.2f} s ({insns / run_s / 1e6:6.1f} M insns/s), "
              f"replay median {replay_s:5.2f} s ({insns / replay_s / 1e6:6.1f} M insns/s); replay/run speed "
              f"median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}, "
              f"{args.pairs} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
