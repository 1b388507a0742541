"""Replay speed against `tcg2wasm run --engine wasm` on the same program (issue 4's 10^8-instruction check).

Two workloads of more than 10^8 guest instructions each:

- ``compute``: guests/bin/compute.musl (2.8e8 instructions; a few hot loops, little code);
- ``gzip``: busybox ``gzip -c`` of a generated 1.4 MB text file (2.6e8 instructions; more code,
  so translation matters more).

Each is recorded in Unicorn once (a minute or two; the trace is kept in /tmp), then ``--pairs``
wasm runs of the program and replays of its trace are timed alternately, both as commands
(process start included). Prints each pair, the medians and the median of the per-pair ratios,
in wall and CPU time. Shared machines are noisy: read the medians, not one pair.

    make bench-replay                      # or: BENCH_ARGS="--pairs 3 --workload compute"
    .venv/bin/python tools/trace_bench.py [--pairs 7] [--workload compute|gzip|all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
TIMEOUT = 900.0  # seconds for one run or replay

from benchkit.child import run_child  # noqa: E402  (tools/ is on sys.path)
from benchutil import guest_stdout_silenced  # noqa: E402

from tcg2wasm.trace import format as trace_format  # noqa: E402
from tcg2wasm.trace.format import DEFAULT_EVERY  # noqa: E402
from tcg2wasm.trace.record import record_program  # noqa: E402


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command; CPU time (user + system of the child) is the
    steadier figure on a shared machine, where wall time also counts waiting for a core."""
    result = run_child(cmd, timeout=TIMEOUT)
    if result.status != 0:
        sys.exit(f"{' '.join(cmd[2:4])} failed (status {result.status}):\n{result.stdout.decode()[-2000:]}"
                 f"{result.stderr.decode()[-500:]}")
    return result.wall_seconds, result.cpu_seconds


def _timed_run(argv: list[str]) -> tuple[float, float]:
    return _timed([sys.executable, "-m", "tcg2wasm", "run", *argv])


def _timed_replay(trace_path: Path) -> tuple[float, float]:
    """`tcg2wasm replay` as a user runs it: process start and trace loading included, like the run."""
    return _timed([sys.executable, "-m", "tcg2wasm", "replay", "--no-progress", str(trace_path)])


def _gzip_input() -> Path:
    path = Path("/tmp/tcg2wasm-bench-lines.txt")
    if not path.exists():
        path.write_text("".join(f"{(i * 7919) % 1000003} line {i} {('alpha', 'beta', 'gamma')[i % 3]}\n"
                                for i in range(60_000)))
    return path


def _workload(name: str) -> tuple[list[str], list[str]]:
    """(argv for `tcg2wasm run`, argv the recording gives the guest)."""
    if name == "compute":
        program = ROOT / "guests" / "bin" / "compute.musl"
        return [str(program)], [program.name]
    return ["/bin/busybox", "gzip", "-c", str(_gzip_input())], ["busybox", "gzip", "-c", str(_gzip_input())]


def _trace_for(name: str, run_argv: list[str], guest_argv: list[str]) -> Path:
    path = Path(f"/tmp/tcg2wasm-bench-{name}.v{trace_format.FORMAT_VERSION}.t2wt")  # re-recorded per format
    if not path.exists():
        print(f"recording {' '.join(guest_argv)} in Unicorn (a minute or two) -> {path}", flush=True)
        with guest_stdout_silenced():  # the guest's output passes through while recording
            trace = record_program(run_argv[0], guest_argv, every=DEFAULT_EVERY)
        trace_format.save(trace, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("compute", "gzip", "all"), default="all")
    parser.add_argument("--pairs", type=int, default=7, help="run/replay pairs to time (default 7)")
    args = parser.parse_args()
    names = ("compute", "gzip") if args.workload == "all" else (args.workload,)
    if "gzip" in names and not Path("/bin/busybox").exists():
        print("note: /bin/busybox missing (busybox-static): the gzip workload is left out", file=sys.stderr)
        names = tuple(n for n in names if n != "gzip")
    for name in names:
        run_argv, guest_argv = _workload(name)
        _compare(name, run_argv, _trace_for(name, run_argv, guest_argv), args.pairs)
    return 0


def _compare(name: str, run_argv: list[str], trace: Path, pairs: int) -> None:
    insns = trace_format.load(trace).icount
    print(f"{name}: {insns:,} guest instructions; both timed as commands (process start included)")
    runs: list[tuple[float, float]] = []
    replays: list[tuple[float, float]] = []
    for pair in range(pairs):
        first_replay = pair % 2 == 1  # alternate the order: neither always gets the warmer machine
        if first_replay:
            replays.append(_timed_replay(trace))
        runs.append(_timed_run(run_argv))
        if not first_replay:
            replays.append(_timed_replay(trace))
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
              f"{pairs} pairs)")


if __name__ == "__main__":
    sys.exit(main())
