"""``tcg2wasm exec CASE.json...``: run state cases on an engine and check their ``final`` state."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tcg2wasm.cli.casecmd import case_status, load_all, print_summary, timed_run
from tcg2wasm.cli.common import ENGINES, EXIT_CODES_EPILOG, EXIT_FAILED, EXIT_OK


def cmd_exec(args: argparse.Namespace) -> int:
    failed = False
    for case in load_all(args.cases):
        result = timed_run(case, args.engine, args.capture)
        status, problems = case_status(case, result)
        failed |= status in ("mismatch", "fault")
        if args.json:
            obj = result.to_json() | {"status": status, "mismatches": problems}
            print(json.dumps(obj, sort_keys=False))
        else:
            print_summary(case, result, status, problems)
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("exec", help="run state cases and check their final state",
                       description="Run state cases (docs/cases.md) and check each against its `final` state.",
                       epilog=EXIT_CODES_EPILOG)
    p.add_argument("cases", nargs="+", metavar="CASE.json", help="case files (each holds one case or a list)")
    p.add_argument("--json", action="store_true", help="one JSON object per case per line")
    p.add_argument("--engine", choices=ENGINES, default="wasm",
                   help="wasm: translated code; interp: the IR interpreter; unicorn: the oracle (default wasm)")
    p.add_argument("--capture", action="store_true",
                   help="first record the blocks Unicorn executes; regions grow only along those")
    p.set_defaults(func=cmd_exec)
