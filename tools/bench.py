#!/usr/bin/env python3
"""Benchmark: the loop-heavy example through tcg2wasm (wasm engine), Unicorn and natively.

Runs tcg2wasm/examples/bench_sieve.json (about 1.1e8 guest instructions) on the wasm
engine and on Unicorn without hooks in the same process, and the same program
(examples/sieve.py with NATIVE=1) as a static Linux executable on this host.
Prints guest instructions, seconds and instructions per second for each, the
ratios, and the translator's own costs (translation seconds, host exits).

Usage: tools/bench.py [--case tcg2wasm/examples/bench_sieve.json] [--no-native]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import mkcase  # noqa: E402

from tcg2wasm.asm.elf import static_elf  # noqa: E402
from tcg2wasm.cases import Case, build_machine, check_result, load_case, machine_result  # noqa: E402
from tcg2wasm.oracle.unicorn_ref import run_unicorn  # noqa: E402


def run_wasm(case: Case) -> tuple[float, dict, list[str]]:
    machine = build_machine(case, "wasm")
    t0 = time.perf_counter()
    stop = machine.run(case.entry, until=case.stop.until, count=case.stop.count)
    seconds = time.perf_counter() - t0
    result = machine_result(case, machine, stop, "wasm")
    return seconds, result.stats, check_result(case, result)


def run_native(example: mkcase.Example) -> tuple[float, int]:
    """Seconds and exit status of the example built (NATIVE=1) as a static Linux program on this host."""
    program = mkcase.build_program(example, NATIVE=1)
    with tempfile.TemporaryDirectory(prefix="tcg2wasm-bench-") as tmp:
        exe = Path(tmp) / "native"
        exe.write_bytes(static_elf(mkcase.segments(program), program.base))
        exe.chmod(0o755)
        best = float("inf")
        status = -1
        for _ in range(3):  # best of three: the process start-up is noise at this scale
            t0 = time.perf_counter()
            status = subprocess.run([str(exe)], check=False).returncode
            best = min(best, time.perf_counter() - t0)
        return best, status


def rate(insns: int, seconds: float) -> str:
    return f"{insns / seconds / 1e6:10.1f} M insns/s" if seconds > 0 else "-"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=ROOT / "tcg2wasm" / "examples" / "bench_sieve.json")
    parser.add_argument("--no-native", action="store_true", help="skip the native run")
    args = parser.parse_args(argv)
    case = load_case(args.case)
    print(f"case {case.name}: {case.description}")

    wasm_seconds, stats, problems = run_wasm(case)
    insns = int(stats["guest_insns"])
    print(f"wasm     {insns:>12,} insns {wasm_seconds:8.3f} s {rate(insns, wasm_seconds)}"
          f"   (translation {stats['translate_seconds']:.3f} s, host exits {stats['host_exits']:,}, "
          f"fallback insns {stats['fallback_insns']:,}, regions {stats['regions_translated']})")
    if problems:
        print("  WRONG RESULT: " + "; ".join(problems))

    uc = run_unicorn(case, count_insns=False)
    uc_seconds = uc.stats["run_seconds"]
    print(f"unicorn  {insns:>12,} insns {uc_seconds:8.3f} s {rate(insns, uc_seconds)}   (no hooks)")
    print(f"wasm / unicorn speed: {uc_seconds / wasm_seconds:.2f}x")

    example = mkcase.EXAMPLES.get(case.name)
    native = None if args.no_native or example is None else run_native(example)
    if native is not None:
        native_seconds, status = native
        want = (case.final_regs or {}).get("rax", 0) & 0xFF
        note = "" if status == want else f"  WRONG EXIT STATUS {status}, expected {want}"
        print(f"native   {insns:>12,} insns {native_seconds:8.3f} s {rate(insns, native_seconds)}"
              f"   (process start included){note}")
        print(f"native / wasm speed: {wasm_seconds / native_seconds:.2f}x")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
