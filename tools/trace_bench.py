"""Replay speed against `tcg2wasm run --engine wasm` on the same program (issue 4's 10^8-instruction check).

Records guests/bin/compute.musl (about 2.8e8 guest instructions) in Unicorn once, then times, in the same
run, a plain wasm run of the program and a replay of its trace, and prints both rates and their ratio.

    .venv/bin/python tools/trace_bench.py [--program guests/bin/compute.musl] [--trace /tmp/compute.t2wt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tcg2wasm.trace import format as trace_format  # noqa: E402
from tcg2wasm.trace.record import DEFAULT_EVERY, record_program  # noqa: E402


def _timed_run(program: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tcg2wasm", "run", str(program)], capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"run failed: {proc.stderr.decode()[-500:]}")
    return time.perf_counter() - t0


def _timed_replay(trace_path: Path) -> float:
    """`tcg2wasm replay` as a user runs it: process start and trace loading included, like the run."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tcg2wasm", "replay", "--no-progress", str(trace_path)],
                          capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"replay failed:\n{proc.stdout.decode()[-2000:]}{proc.stderr.decode()[-500:]}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", type=Path, default=ROOT / "guests" / "bin" / "compute.musl")
    parser.add_argument("--trace", type=Path, default=Path("/tmp/tcg2wasm-compute.t2wt"))
    args = parser.parse_args()
    if not args.trace.exists():
        print(f"recording {args.program} in Unicorn (a few minutes) -> {args.trace}", flush=True)
        trace_format.save(record_program(args.program, [args.program.name], every=DEFAULT_EVERY), args.trace)
    insns = trace_format.load(args.trace).icount
    run_s = _timed_run(args.program)
    replay_s = _timed_replay(args.trace)
    print(f"{insns:,} guest instructions (both timed as commands: process start included)")
    print(f"run --engine wasm  {run_s:7.2f} s  {insns / run_s / 1e6:8.1f} M insns/s")
    print(f"replay             {replay_s:7.2f} s  {insns / replay_s / 1e6:8.1f} M insns/s")
    print(f"replay / run speed: {run_s / replay_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
