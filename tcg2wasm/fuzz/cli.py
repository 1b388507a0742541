"""``tcg2wasm fuzz KIND``: run a fuzz campaign (docs/testing.md, "Campaigns").

Exit status: 0 no failure found, 1 failures found (each written to ``--out``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tcg2wasm.fuzz.campaign import DEFAULT_SHARD, Summary, run_local
from tcg2wasm.fuzz.kinds import KINDS


def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def add_fuzz_command(sub: Any) -> None:
    p = sub.add_parser("fuzz", help="run a fuzz campaign: streams (vs the CPU), blobs, cfg, files")
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("--seconds", type=_seconds, help="stop after this long (default: when --cases ran, else 60 s)")
    p.add_argument("--cases", type=_positive, help="run this many cases (seeds SEED..SEED+CASES-1)")
    p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, help="worker processes (default: every core)")
    p.add_argument("--seed", type=lambda t: int(t, 0), help="first seed (default: from the clock; printed)")
    p.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where failures and summary.json go")
    p.add_argument("--shard-size", type=_positive, default=DEFAULT_SHARD, help="seeds per shard")
    p.add_argument("--wasm-every", type=_positive, default=50, help="streams: the wasm engine on every Nth case")
    p.add_argument("--unicorn-every", type=_positive, default=1, help="streams: Unicorn on every Nth case")
    p.add_argument("--scheduler", help="run on a Dask cluster (tcp://host:port) instead of local processes")
    p.add_argument("--local-cluster", type=_positive, metavar="N",
                   help="run on a Dask LocalCluster of N workers (what --scheduler does, on this machine)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
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


def cmd_fuzz(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % (1 << 40)
    seconds = args.seconds if args.seconds is not None or args.cases is not None else 60.0
    options = {"wasm_every": args.wasm_every, "unicorn_every": args.unicorn_every}
    print(f"tcg2wasm fuzz {args.kind}: seed {seed}, {args.jobs} jobs, "
          f"{f'{seconds:g} s' if seconds else ''}{' ' if seconds and args.cases else ''}"
          f"{f'{args.cases} cases' if args.cases else ''} -> {args.out}", file=sys.stderr)
    progress = None if args.quiet else _progress
    if args.scheduler or args.local_cluster:
        from tcg2wasm.fuzz.distributed import run_dask

        summary = run_dask(args.kind, scheduler=args.scheduler, local_workers=args.local_cluster, seconds=seconds,
                           seed=seed, out_dir=args.out, options=options, max_cases=args.cases,
                           shard_size=args.shard_size, progress=progress)
    else:
        summary = run_local(args.kind, seconds=seconds, jobs=args.jobs, seed=seed, out_dir=args.out,
                            options=options, max_cases=args.cases, shard_size=args.shard_size, progress=progress)
    print_summary(summary, args.out)
    return 1 if summary.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcg2wasm-fuzz")
    add_fuzz_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fuzz", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


__all__ = ["add_fuzz_command", "cmd_fuzz", "main"]
