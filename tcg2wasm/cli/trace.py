"""``record``, ``replay`` and ``trace-summary``: traces of guest runs (docs/trace-format.md).

Record runs a program (or a case) in Unicorn once; replay runs the trace through the wasm engine
with the recorded system-call results, checking it; trace-summary says what a trace holds.
record and replay import the Linux layer, Unicorn and the translator in their commands only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any

from tcg2wasm import progress as progress_bars
from tcg2wasm.cli.common import EXIT_OK, EXIT_USAGE, UsageError, int_at_least
from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.trace import format as trace_format
from tcg2wasm.trace.format import DEFAULT_EVERY

EXIT_DIVERGED = 1

TRACE_EPILOG = """exit status:
  0  success
  1  the replay diverged (the report names the first divergent instruction)
  2  bad usage, an unusable trace or program (one line on stderr)"""


def _open_output(path: str) -> IO[bytes]:
    """The trace file, opened before recording so that a bad path is reported at once."""
    try:
        return open(path, "wb")  # noqa: SIM115 - closed by cmd_record after the recording
    except OSError as e:
        raise UsageError(f"{path}: cannot write the trace: {e.strerror}") from None


def _record(args: argparse.Namespace, on_progress: Any) -> Any:
    from tcg2wasm.trace.record import record_case, record_program

    if args.case is not None:
        return record_case(args.case, every=args.every, progress=on_progress)
    prog = args.program[0]
    env = None if args.env is None else list(args.env)
    return record_program(prog, [args.argv0 or prog, *args.program[1:]], env=env, every=args.every,
                          progress=on_progress)


def _check_record_args(args: argparse.Namespace) -> None:
    if args.case is not None and args.program:
        args.parser.error("give either PROG [ARGS...] or --case CASE.json, not both")
    if args.case is None and not args.program:
        args.parser.error("missing PROG [ARGS...] (or --case CASE.json): what to record")
    if args.program and not Path(args.program[0]).is_file():
        raise UsageError(f"{args.program[0]}: no such file")


def cmd_record(args: argparse.Namespace) -> int:
    _check_record_args(args)
    out = _open_output(args.output)
    bar = progress_bars.bar("record", enabled=progress_bars.wanted(args.no_progress))
    try:
        trace = _record(args, lambda icount: progress_bars.advance_to(bar, icount))
        bar.close()
        out.write(trace_format.encode(trace))
        out.close()
    except BaseException:
        bar.close()
        out.close()
        os.unlink(args.output)
        raise
    end = trace.end
    how = f"exit status {end.status}" if end.kind == "exit" else f"{end.kind} at pc {end.pc:#x}"
    print(f"recorded {trace.icount} instructions, {trace.n_blocks} blocks, {len(trace.syscalls)} syscalls, "
          f"{len(trace.checkpoints)} checkpoints ({how}) -> {args.output} "
          f"({Path(args.output).stat().st_size} bytes)", file=sys.stderr)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from tcg2wasm.trace.replay import replay

    trace = trace_format.load(args.trace)
    try:
        result = replay(trace, engine=args.engine, progress=progress_bars.wanted(args.no_progress),
                        profile=not args.no_profile)
    except Tcg2WasmError as e:  # a trace whose contents the loader let through (a mapping it cannot make...)
        if str(args.trace) in str(e):
            raise
        raise Tcg2WasmError(f"{args.trace}: cannot replay: {e}") from None
    if not result.ok:
        print(f"{args.trace}: {result.report}")
        return EXIT_DIVERGED
    print(f"{args.trace}: {result.summary()}")
    return EXIT_OK


def cmd_trace_summary(args: argparse.Namespace) -> int:
    from tcg2wasm.trace.summary import summary

    print(summary(trace_format.load(args.trace), args.top))
    return EXIT_OK


def _register_record(sub: Any) -> None:
    p = sub.add_parser("record", help="run a program (or a case) in Unicorn and record a trace",
                       usage="tcg2wasm record [OPTIONS] -o TRACE (PROG [ARGS...] | --case CASE.json)",
                       description="Record a guest run in Unicorn: initial image, block sequence, syscalls "
                       "with their effects, register checkpoints (docs/trace-format.md).", epilog=TRACE_EPILOG)
    p.add_argument("-o", "--output", required=True, metavar="TRACE", help="trace file to write")
    p.add_argument("--case", metavar="CASE.json", help="record a state case (docs/cases.md) instead of a program")
    p.add_argument("--every", type=int_at_least(1), default=DEFAULT_EVERY,
                   help=f"blocks between register checkpoints (default {DEFAULT_EVERY})")
    p.add_argument("--env", action="append", metavar="NAME=VALUE",
                   help="guest environment entry (repeatable; default: a fixed small environment, so that "
                   "recordings are reproducible)")
    p.add_argument("--argv0", help="argv[0] for the guest (default: PROG as given)")
    p.add_argument("--no-progress", action="store_true", help="no progress counter even on a terminal")
    p.add_argument("program", nargs=argparse.REMAINDER, metavar="PROG [ARGS...]",
                   help="a static x86-64 Linux program and its arguments")
    p.set_defaults(func=cmd_record, parser=p)


def register(sub: Any) -> None:
    _register_record(sub)
    p = sub.add_parser("replay", help="replay a trace through the wasm engine and check it",
                       description="Replay a trace with recorded syscall results, comparing checkpoints; "
                       "exit 1 naming the first divergent instruction.", epilog=TRACE_EPILOG)
    p.add_argument("trace", metavar="TRACE", help="trace file (from `record`)")
    p.add_argument("--engine", choices=("wasm", "interp"), default="wasm", help="engine to replay on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--no-profile", action="store_true",
                   help="ignore the recorded block counts: tier and grow regions as a run does")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("trace-summary", help="summarise a trace: hot blocks, syscalls, instruction mix",
                       description="What a trace holds: the run, its checkpoints, the hottest blocks, the "
                       "system calls and the executed instruction mix.", epilog=TRACE_EPILOG)
    p.add_argument("trace", metavar="TRACE", help="trace file (from `record`)")
    p.add_argument("--top", type=int_at_least(1), default=10, help="rows in each top list (default 10)")
    p.set_defaults(func=cmd_trace_summary)


__all__ = ["EXIT_DIVERGED", "EXIT_OK", "EXIT_USAGE", "register"]
