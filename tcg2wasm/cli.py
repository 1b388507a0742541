"""The ``tcg2wasm`` command.

Subcommands (``tcg2wasm COMMAND --help`` for each):

- ``exec``  run state cases on an engine, check them against their ``final`` state
- ``show``  a case's region block by block: guest asm, ops before/after optimization, wat
- ``diff``  lockstep comparison of the Machine with Unicorn, first divergence
- ``demo``  run the bundled example programs through the wasm path
- ``run``   run a static x86-64 Linux program (user mode), stdio passed through
- ``record``/``replay``  record a guest run in Unicorn; replay it through wasm, checking it (tcg2wasm.trace)

Exit status: 0 success; 1 a mismatch, a divergence or a guest fault; 2 bad
usage or bad input (a malformed case file, say), reported in one line, never
with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tcg2wasm.cases import RESULT_REGS, Case, RunResult, case_fetch, check_result, load_cases, run_case
from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.gctune import tune_for_commands
from tcg2wasm.trace.cli import add_trace_commands, int_at_least

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ENGINES = ("wasm", "interp", "unicorn")
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEMO_CASES = ("sieve", "crc32")
SHOW_MAX_BLOCKS = 8
SUMMARY_STATS = ("guest_insns", "fallback_insns", "blocks_translated", "regions_translated", "modules",
                 "host_exits", "translate_seconds", "run_seconds")


class UsageError(Tcg2WasmError):
    """Bad command-line input that argparse cannot see (a missing example, a bad address)."""


# -- helpers ------------------------------------------------------------------------------------


def _load_all(paths: list[str]) -> list[Case]:
    """Every case of every file, or a UsageError/CaseError naming the first bad file."""
    cases: list[Case] = []
    for path in paths:
        cases += load_cases(path)
    return cases


_int = int_at_least(0)


def _status(case: Case, result: RunResult) -> tuple[str, list[str]]:
    """("ok" | "done" | "mismatch" | "fault", mismatch lines)."""
    problems = check_result(case, result) if case.has_final else []
    if problems:
        return "mismatch", problems
    if result.stop["kind"] == "fault":
        return "fault", []
    return ("ok" if case.has_final else "done"), []


def _format_regs(regs: dict[str, int]) -> list[str]:
    cells = [f"{name:>6}={regs[name]:#018x}" for name in RESULT_REGS]
    return ["  " + " ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]


def _format_stats(stats: dict[str, Any]) -> str:
    parts = []
    for key in SUMMARY_STATS:
        value = stats.get(key)
        if value is not None:
            parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    return "  " + " ".join(parts)


def _print_summary(case: Case, result: RunResult, status: str, problems: list[str]) -> None:
    print(f"{case.name} [{result.engine}]: {status.upper()} - {result.stop['message'] or result.stop['kind']}")
    for line in problems:
        print(f"  {line}")
    for line in _format_regs(result.regs):
        print(line)
    print(_format_stats(result.stats))


def _timed_run(case: Case, engine: str, capture: bool = False) -> RunResult:
    t0 = time.perf_counter()
    result = run_case(case, engine, capture=capture)
    result.stats.setdefault("run_seconds", round(time.perf_counter() - t0, 6))
    return result


# -- exec ---------------------------------------------------------------------------------------


def cmd_exec(args: argparse.Namespace) -> int:
    cases = _load_all(args.cases)
    failed = False
    for case in cases:
        result = _timed_run(case, args.engine, args.capture)
        status, problems = _status(case, result)
        failed |= status in ("mismatch", "fault")
        if args.json:
            obj = result.to_json() | {"status": status, "mismatches": problems}
            print(json.dumps(obj, sort_keys=False))
        else:
            _print_summary(case, result, status, problems)
    return EXIT_FAILED if failed else EXIT_OK


# -- show ---------------------------------------------------------------------------------------


def _translator(case: Case) -> Callable[[int], Any]:
    from tcg2wasm.errors import GuestFault
    from tcg2wasm.frontend.x86_64.translate import translate_block

    fetch = case_fetch(case)

    def translate(pc: int) -> Any:
        try:
            return translate_block(fetch, pc)
        except GuestFault:
            return None

    return translate


def _show_block(tb: Any, optimized: Any) -> list[str]:
    from tcg2wasm.ir import format_ops
    from tcg2wasm.opt import op_histogram

    lines = [f"== block 0x{tb.pc:x} ({tb.size} bytes, {len(tb.insns)} instructions, {tb.fallback_insns} fallback)"]
    lines += ["-- guest"] + [f"  0x{i.pc:x}: {i.raw.hex():<24} {i.asm}{'' if i.lifted else '   (fallback)'}"
                             for i in tb.insns]
    lines += [f"-- ops before optimization ({len(tb.ops)})", format_ops(tb.ops)]
    lines += [f"-- ops after optimization ({len(optimized.ops)})", format_ops(optimized.ops)]
    before, after = op_histogram(tb.ops), op_histogram(optimized.ops)
    changed = [f"{k} {before.get(k, 0)}->{after.get(k, 0)}" for k in sorted(set(before) | set(after))
               if before.get(k, 0) != after.get(k, 0)]
    lines.append(f"-- op counts {len(tb.ops)} -> {len(optimized.ops)}: {', '.join(changed) or 'unchanged'}")
    return lines


def show_case(case: Case, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
              wat: bool = True) -> Iterator[str]:
    """The lines ``tcg2wasm show`` prints for one case (the golden tests compare exactly these)."""
    from tcg2wasm.backend.wasm import region_wat
    from tcg2wasm.cfg.region import Region, RegionError, discover_region
    from tcg2wasm.opt import optimize_tb

    entry = case.entry if pc is None else pc
    try:
        region = discover_region(_translator(case), entry, max_blocks=max_blocks)
    except RegionError as e:
        raise UsageError(f"{case.source}: case {case.name!r}: {e}") from None
    optimized = {block_pc: optimize_tb(tb) for block_pc, tb in region.blocks.items()}
    yield f"# case {case.name}: region at 0x{entry:x}, {len(region.blocks)} blocks"
    for block_pc, tb in region.blocks.items():
        yield from _show_block(tb, optimized[block_pc])
    if wat:
        yield "-- wat (region of the optimized blocks)"
        yield region_wat(Region(region.entry, optimized))


def show_text(path: str | Path, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
              wat: bool = True) -> str:
    """Everything ``tcg2wasm show PATH`` prints to stdout, as one string."""
    return "".join(f"{line}\n" for case in _load_all([str(path)])
                   for line in show_case(case, pc=pc, max_blocks=max_blocks, wat=wat))


def cmd_show(args: argparse.Namespace) -> int:
    for case in _load_all([args.case]):
        for line in show_case(case, pc=args.pc, max_blocks=args.max_blocks, wat=not args.no_wat):
            print(line)
    return EXIT_OK


# -- diff ---------------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from tcg2wasm.oracle.lockstep import lockstep

    failed = False
    for case in _load_all(args.cases):
        report = lockstep(case, engine=args.engine, max_insns=args.max_insns)
        where = f"{case.name} [{args.engine} vs unicorn]"
        if report.divergence is None:
            print(f"{where}: same state for {report.guest_insns} instructions in {report.steps} steps; "
                  f"stopped: {report.stop.get('message') or report.stop.get('kind')}")
        else:
            failed = True
            print(f"{where}: {report.divergence.describe()}")
    return EXIT_FAILED if failed else EXIT_OK


# -- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    failed = False
    for name in DEMO_CASES:
        path = EXAMPLES_DIR / f"{name}.json"
        if not path.exists():
            raise UsageError(f"{path}: bundled example not found (run `make examples` in a source checkout)")
        (case,) = load_cases(path)
        result = _timed_run(case, args.engine)
        status, problems = _status(case, result)
        failed |= status != "ok"
        rax = result.regs["rax"]
        print(f"{case.name}: {case.description}")
        print(f"  result rax = {rax} (0x{rax:x}); expected {case.final_regs.get('rax') if case.final_regs else '?'}"
              f": {status.upper()}")
        for line in problems:
            print(f"  {line}")
        print(f"  stop: {result.stop['message'] or result.stop['kind']}")
        print(_format_stats(result.stats))
    return EXIT_FAILED if failed else EXIT_OK


# -- parser -------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """User mode: the guest's own exit status, or 128+ when it crashed (the message says where)."""
    from tcg2wasm.linux.process import Process

    process = Process(args.program, [args.program, *args.args], engine=args.engine)
    result = process.run()
    sys.stdout.flush()
    if result.message:
        print(f"tcg2wasm run: {result.message}", file=sys.stderr)
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(result.stats, indent=2, sort_keys=True) + "\n")
    return result.status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tcg2wasm", description="x86-64 to WebAssembly dynamic binary translator")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("exec", help="run state cases and check their final state")
    p.add_argument("cases", nargs="+", metavar="CASE.json")
    p.add_argument("--json", action="store_true", help="one JSON object per case per line")
    p.add_argument("--engine", choices=ENGINES, default="wasm")
    p.add_argument("--capture", action="store_true",
                   help="first record the blocks Unicorn executes; regions grow only along those")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("show", help="show a case's blocks: asm, ops before/after optimization, wat")
    p.add_argument("case", metavar="CASE.json")
    p.add_argument("--pc", type=_int, help="region entry (default: the case's rip)")
    p.add_argument("--max-blocks", type=_int, default=SHOW_MAX_BLOCKS,
                   help=f"blocks to discover from the entry (default {SHOW_MAX_BLOCKS})")
    p.add_argument("--no-wat", action="store_true", help="leave out the wasm text")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="lockstep comparison with Unicorn; reports the first divergence")
    p.add_argument("cases", nargs="+", metavar="CASE.json")
    p.add_argument("--engine", choices=("wasm", "interp"), default="wasm")
    p.add_argument("--max-insns", type=_int, default=1_000_000, help="stop comparing after this many instructions")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("run", help="run a static x86-64 Linux program; exits with the guest's status")
    p.add_argument("--engine", choices=ENGINES, default="wasm", help="executor (default: wasm)")
    p.add_argument("--stats-json", metavar="FILE", help="write execution statistics (guest_insns, ...) as JSON")
    p.add_argument("program", help="static ELF executable")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")
    p.set_defaults(func=cmd_run)

    add_trace_commands(sub)
    p = sub.add_parser("demo", help="run the bundled example programs (sieve, CRC-32)")
    p.add_argument("--engine", choices=ENGINES, default="wasm")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_for_commands()
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` (an OSError: caught first)
        sys.stderr.close()
        return EXIT_OK
    except (Tcg2WasmError, OSError) as e:
        print(f"tcg2wasm {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
