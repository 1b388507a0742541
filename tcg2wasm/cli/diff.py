"""``tcg2wasm diff CASE.json...``: run the Machine and Unicorn in lockstep; report the first divergence."""

from __future__ import annotations

import argparse
from typing import Any

from tcg2wasm.cli.casecmd import load_all
from tcg2wasm.cli.common import EXIT_CODES_EPILOG, EXIT_FAILED, EXIT_OK, int_at_least


def cmd_diff(args: argparse.Namespace) -> int:
    from tcg2wasm.oracle.lockstep import lockstep

    failed = False
    for case in load_all(args.cases):
        report = lockstep(case, engine=args.engine, max_insns=args.max_insns)
        where = f"{case.name} [{args.engine} vs unicorn]"
        if report.divergence is None:
            print(f"{where}: same state for {report.guest_insns} instructions in {report.steps} steps; "
                  f"stopped: {report.stop.get('message') or report.stop.get('kind')}")
        else:
            failed = True
            print(f"{where}: {report.divergence.describe()}")
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="lockstep comparison with Unicorn; reports the first divergence",
                       description="Run each case on the Machine and on Unicorn side by side and report the "
                       "first instruction after which their registers or memory differ.",
                       epilog=EXIT_CODES_EPILOG)
    p.add_argument("cases", nargs="+", metavar="CASE.json", help="case files")
    p.add_argument("--engine", choices=("wasm", "interp"), default="wasm", help="the side compared with Unicorn")
    p.add_argument("--max-insns", type=int_at_least(0), default=1_000_000,
                   help="stop comparing after this many instructions")
    p.set_defaults(func=cmd_diff)
