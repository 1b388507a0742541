"""``tcg2wasm fuzz KIND``: run a fuzz campaign (docs/testing.md, "Campaigns").

Exit status: 0 no failure found, 1 failures found (each written to ``--out``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tcg2wasm.cli.common import EXIT_FAILED, EXIT_OK, UsageError, int_at_least
from tcg2wasm.fuzz.campaign import DEFAULT_SHARD, Summary, run_local
from tcg2wasm.fuzz.kinds import KINDS

EPILOG = """exit status:
  0  no failure found
  1  failures found (each one a file in --out: a minimized case, or the damaged file)
  2  bad usage

A case is rerun by its seed: tcg2wasm fuzz KIND --seed S --cases 1 --jobs 1"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("fuzz", help="run a fuzz campaign: streams (vs the CPU), blobs, cfg, files",
                       description="Run a fuzz campaign of one kind on every core (or a Dask cluster); every "
                       "failure is written to --out, the summary to --out/summary.json (docs/testing.md).",
                       epilog=EPILOG)
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("--seconds", type=_seconds, help="stop after this long (default: when --cases ran, else 60 s)")
    p.add_argument("--cases", type=int_at_least(1), help="run this many cases (seeds SEED..SEED+CASES-1)")
    p.add_argument("--jobs", type=int_at_least(1), default=os.cpu_count() or 1,
                   help="worker processes (default: every core)")
    p.add_argument("--seed", type=int_at_least(0), help="first seed (default: from the clock; printed)")
    p.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where failures and summary.json go")
    p.add_argument("--shard-size", type=int_at_least(1), default=DEFAULT_SHARD, help="seeds per shard")
    p.add_argument("--wasm-every", type=int_at_least(1), default=20, help="streams: the wasm engine on every Nth case")
    p.add_argument("--unicorn-every", type=int_at_least(1), default=1, help="streams: Unicorn on every Nth case")
    p.add_argument("--nice", type=int_at_least(0), default=0, help="niceness of the worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster (tcp://host:port) instead of local processes")
    p.add_argument("--local-cluster", type=int_at_least(1), metavar="N",
                   help="run on a Dask LocalCluster of N workers (what --scheduler does, on this machine)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--recheck", type=Path, metavar="DIR",
                   help="streams: rerun the failures a campaign wrote to DIR with the current code, and count them")
    p.set_defaults(func=cmd_fuzz)


def _progress(summary: Summary) -> None:
    rate = summary.cases / summary.seconds if summary.seconds else 0.0
    top = ", ".join(f"{k}={v}" for k, v in summary.labels.most_common(6))
    print(f"[{summary.kind}] {summary.seconds:6.0f} s {summary.cases:9d} cases {rate:7.1f}/s "
          f"failures={len(summary.failures)} | {top}", file=sys.stderr, flush=True)


def print_summary(summary: Summary, out: Path) -> None:
    obj = summary.to_json()
    print(f"{summary.kind}: {obj['cases']} cases in {obj['seconds']} s ({obj['cases_per_second']}/s, "
          f"{obj['cases_per_second_per_job']}/s per job, {summary.jobs} jobs), seeds {obj['shards']}")
    for label, count in obj["labels"].items():
        print(f"  {label:50} {count}")
    print(f"  failures: {obj['failures']} {obj['failures_by_status'] or ''} -> {out}")
    for failure in summary.failures[:20]:
        print(f"    seed {failure['seed']} {failure['status']}: {(failure.get('detail') or [''])[0][:150]}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_recheck(directory: Path) -> int:
    from tcg2wasm.fuzz.recheck import recheck

    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory of campaign failures")
    counts, still = recheck(directory)
    for label, n in sorted(counts.items()):
        print(f"  {label:50} {n}")
    for line in still:
        print(f"  still diverging: {line[:200]}")
    return EXIT_FAILED if any(label.endswith(":diverged") and not label.startswith("unicorn") for label in counts) \
        else EXIT_OK


def cmd_fuzz(args: argparse.Namespace) -> int:
    if args.recheck is not None:
        return cmd_recheck(args.recheck)
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % (1 << 40)
    seconds = args.seconds if args.seconds is not None or args.cases is not None else 60.0
    options = {"wasm_every": args.wasm_every, "unicorn_every": args.unicorn_every, "nice": args.nice}
    where = f"a Dask cluster at {args.scheduler}" if args.scheduler else \
        f"a local Dask cluster of {args.local_cluster}" if args.local_cluster else f"{args.jobs} jobs"
    limits = " and ".join(x for x in (f"{seconds:g} s" if seconds else "", f"{args.cases} cases" if args.cases else "")
                          if x)
    print(f"tcg2wasm fuzz {args.kind}: seed {seed}, {where}, {limits} -> {args.out}", file=sys.stderr)
    progress = None if args.quiet else _progress
    signal.signal(signal.SIGTERM, _interrupt)  # a killed campaign still writes its summary
    common = {"seconds": seconds, "seed": seed, "out_dir": args.out, "options": options, "max_cases": args.cases,
              "shard_size": args.shard_size, "progress": progress}
    if args.scheduler or args.local_cluster:
        from tcg2wasm.fuzz.distributed import run_dask

        summary = run_dask(args.kind, scheduler=args.scheduler, local_workers=args.local_cluster, **common)
    else:
        summary = run_local(args.kind, jobs=args.jobs, **common)
    print_summary(summary, args.out)
    return EXIT_FAILED if summary.failures else EXIT_OK
