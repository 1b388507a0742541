"""``tcg2wasm demo``: run the bundled example programs (package data) and check their results."""

from __future__ import annotations

import argparse
from typing import Any

from tcg2wasm.cases import load_cases
from tcg2wasm.cli.casecmd import case_status, format_stats, timed_run
from tcg2wasm.cli.common import ENGINES, EXIT_CODES_EPILOG, EXIT_FAILED, EXIT_OK, UsageError
from tcg2wasm.examples import example_path

DEMO_CASES = ("sieve", "crc32")


def cmd_demo(args: argparse.Namespace) -> int:
    failed = False
    for name in DEMO_CASES:
        try:
            path = example_path(name)
        except FileNotFoundError as e:
            raise UsageError(f"{e} (the installation is incomplete)") from None
        (case,) = load_cases(path)
        result = timed_run(case, args.engine)
        status, problems = case_status(case, result)
        failed |= status != "ok"
        rax = result.regs["rax"]
        print(f"{case.name}: {case.description}")
        print(f"  result rax = {rax} (0x{rax:x}); expected {case.final_regs.get('rax') if case.final_regs else '?'}"
              f": {status.upper()}")
        for line in problems:
            print(f"  {line}")
        print(f"  stop: {result.stop['message'] or result.stop['kind']}")
        print(format_stats(result.stats))
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the bundled example programs (sieve, CRC-32)",
                       description="Run the bundled examples (a sieve of Eratosthenes, a CRC-32) and check "
                       "their results.", epilog=EXIT_CODES_EPILOG)
    p.add_argument("--engine", choices=ENGINES, default="wasm", help="executor (default wasm)")
    p.set_defaults(func=cmd_demo)
