"""The ``record`` and ``replay`` subcommands (``add_trace_commands``), also runnable as ``python -m tcg2wasm.trace``.

Exit status: 0 success; 1 the replay diverged (the report names the first divergent
instruction); 2 bad usage or an unusable trace/program (one line, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.gctune import tune_for_commands
from tcg2wasm.trace import format as trace_format
from tcg2wasm.trace.format import DEFAULT_EVERY

# record (the Linux layer, pyelftools, Unicorn) and replay are imported by their commands only:
# each command loads what it uses, and the rest of the CLI loads neither.

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer (decimal or 0x hex) no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r} (use decimal or 0x hex)") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text}")
        return value

    return parse


def cmd_record(args: argparse.Namespace) -> int:
    from tcg2wasm.trace.record import record_case, record_program

    if args.case is not None:
        if args.program:
            raise Tcg2WasmError("record: give either PROG [ARGS...] or --case CASE.json, not both")
        trace = record_case(args.case, every=args.every)
    else:
        if not args.program:
            raise Tcg2WasmError("record: missing PROG (or --case CASE.json)")
        prog = args.program[0]
        if not Path(prog).is_file():
            raise Tcg2WasmError(f"record: {prog}: no such file")
        env = None if args.env is None else list(args.env)
        trace = record_program(prog, [args.argv0 or prog, *args.program[1:]], env=env, every=args.every)
    trace_format.save(trace, args.output)
    end = trace.end
    how = f"exit status {end.status}" if end.kind == "exit" else f"{end.kind} at pc {end.pc:#x}"
    print(f"recorded {trace.icount} instructions, {trace.n_blocks} blocks, {len(trace.syscalls)} syscalls, "
          f"{len(trace.checkpoints)} checkpoints ({how}) -> {args.output} "
          f"({Path(args.output).stat().st_size} bytes)", file=sys.stderr)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from tcg2wasm.trace.replay import replay

    trace = trace_format.load(args.trace)
    progress = sys.stderr.isatty() and not args.no_progress
    result = replay(trace, engine=args.engine, progress=progress, profile=not args.no_profile)
    if not result.ok:
        print(f"{args.trace}: {result.report}")
        return EXIT_DIVERGED
    print(f"{args.trace}: {result.summary()}")
    return EXIT_OK


def add_trace_commands(subparsers: Any) -> None:
    """Register ``record`` and ``replay`` in an argparse subparsers object (``args.func(args)`` runs one)."""
    p = subparsers.add_parser("record", help="run a program (or a case) in Unicorn and record a trace",
                              description="Record a guest run in Unicorn: initial image, block sequence, syscalls "
                              "with their effects, register checkpoints (docs/trace-format.md).")
    p.add_argument("-o", "--output", required=True, help="trace file to write")
    p.add_argument("--case", help="record a state case (JSON, docs/cases.md) instead of a program")
    p.add_argument("--every", type=int_at_least(1), default=DEFAULT_EVERY,
                   help=f"blocks between register checkpoints (default {DEFAULT_EVERY})")
    p.add_argument("--env", action="append", metavar="NAME=VALUE",
                   help="guest environment entry (repeatable; default: a fixed small environment)")
    p.add_argument("--argv0", help="argv[0] for the guest (default: PROG as given)")
    p.add_argument("program", nargs=argparse.REMAINDER, help="PROG [ARGS...]: a static x86-64 Linux program")
    p.set_defaults(func=cmd_record)
    p = subparsers.add_parser("replay", help="replay a trace through the wasm engine and check it",
                              description="Replay a trace with recorded syscall results, comparing checkpoints; "
                              "exit 1 naming the first divergent instruction.")
    p.add_argument("trace", help="trace file (from `record`)")
    p.add_argument("--engine", choices=("wasm", "interp"), default="wasm", help="engine to replay on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--no-profile", action="store_true",
                   help="ignore the recorded block counts: tier and grow regions as a run does")
    p.set_defaults(func=cmd_replay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcg2wasm", description="trace record and replay")
    add_trace_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    tune_for_commands()
    try:
        return args.func(args)
    except (Tcg2WasmError, ValueError, OSError) as e:
        print(f"tcg2wasm {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
