#!/usr/bin/env python3
"""`make bench`: whole programs under native, qemu-x86_64, unicorn, wasm cold and wasm warm: one table.

Every workload (tools/benchkit/workloads.py) runs as a whole process under each runner; the
figures are medians over ``--repeat`` runs. Prints the table, the notes (mismatches, timeouts)
and issue 9's acceptance checks as PASS/FAIL lines; writes bench.json (every figure, versions,
host), bench.md (what was printed) and bench.png (the plot) into ``--out``. docs/performance.md
says what each column means.

Exit status: 0 (also when acceptance checks fail: they are where we stand), 1 when a run's output
differs from native, 2 for bad usage or programs not built (`make bench` builds them).

    make bench                                   # everything, 3 repeats
    make bench BENCH_ARGS="--quick"              # smaller inputs, 1 run each: a couple of minutes
    .venv/bin/python tools/bench.py --only sqlite --only nbody --repeat 5
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit.host import describe_host  # noqa: E402  (tools/ is on sys.path)
from benchkit.measure import RUNNERS, Options, Progress, Tools, steps  # noqa: E402
from benchkit.suite import Outcome, finish, load_document, run_suite  # noqa: E402
from benchkit.workloads import BUILD, Workload, missing_programs, standard_workloads  # noqa: E402

if TYPE_CHECKING:
    from tqdm import tqdm


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--repeat", type=positive(int), help="runs per runner and workload, median shown (default 3; "
                   "--quick: 1)")
    p.add_argument("--repeat-limit", type=positive(float), default=60.0, metavar="S",
                   help="a runner whose first run on a workload took longer than S seconds is not repeated (60)")
    p.add_argument("--timeout", type=positive(float), metavar="S",
                   help="seconds after which a run is killed and shown as TIMEOUT (default 600; --quick: 120)")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this workload (repeatable)")
    p.add_argument("--quick", action="store_true", help="smaller inputs, 1 run each (not the acceptance figures)")
    p.add_argument("--runners", default=",".join(RUNNERS),
                   help=f"comma-separated subset of {','.join(RUNNERS)} (native always runs: it is the reference)")
    p.add_argument("--out", type=Path, default=BUILD, help=f"where bench.json/.md/.png go (default {BUILD})")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="run nothing: render the table, checks and plot of an earlier bench.json again")
    return p


def parse_runners(text: str) -> tuple[str, ...]:
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = wanted - set(RUNNERS)
    if unknown:
        raise SystemExit(f"bench: unknown runner(s) {', '.join(sorted(unknown))}; choose from {', '.join(RUNNERS)}")
    return tuple(r for r in RUNNERS if r in wanted or r == "native")


def select(workloads: list[Workload], only: list[str] | None) -> list[Workload]:
    if not only:
        return workloads
    names = [w.name for w in workloads]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise SystemExit(f"bench: no workload {', '.join(unknown)}; the workloads are {', '.join(names)}")
    return [w for w in workloads if w.name in only]


def terminal_progress(total: int) -> tuple[Progress, tqdm | None]:
    """A tqdm bar on stderr when it is a terminal (and not in CI); else silence."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        return (lambda _: None), None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="run", dynamic_ncols=True, leave=False)

    def step(description: str) -> None:
        bar.set_description_str(description, refresh=False)
        bar.update(1)

    return step, bar


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json:
        runs, options, host, quick = load_document(args.from_json)
        return report(finish(runs, options, args.out, host, quick, plot=not args.no_plot))
    workloads = select(standard_workloads(quick=args.quick), args.only)
    if args.list:
        print("\n".join(f"{w.name:14} {w.description}" for w in workloads))
        return 0
    missing = missing_programs(workloads)
    if missing:
        print(f"bench: not built: {', '.join(missing)} (run `make bench`, which builds them)", file=sys.stderr)
        return 2
    options = Options(repeat=args.repeat or (1 if args.quick else 3), repeat_limit=args.repeat_limit,
                      timeout=args.timeout or (120.0 if args.quick else 600.0), runners=parse_runners(args.runners))
    tools = Tools.find()
    progress, bar = terminal_progress(steps(workloads, options))
    try:
        outcome = run_suite(workloads, tools, options, args.out, describe_host(tools), quick=args.quick,
                            progress=progress, plot=not args.no_plot)
    finally:
        if bar is not None:
            bar.close()
    return report(outcome)


def report(outcome: Outcome) -> int:
    print(outcome.text, end="")
    print("wrote " + ", ".join(str(p) for p in outcome.files.values()))
    return 1 if outcome.mismatches else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
