#!/usr/bin/env python3
"""Benchmark: whole Linux programs through `tcg2wasm run` (wasm), Unicorn, and natively.

Real programs spend much of their time outside hot loops, so this is where translation
cost shows (tools/bench.py measures a hot loop). Each program is timed as a command,
process start included, in the same run:

- ``wasm cold``: `tcg2wasm run` with wasmtime's module cache off (TCG2WASM_WASM_CACHE=0),
  i.e. every region compiled by Cranelift, as on a first run;
- ``wasm warm``: `tcg2wasm run` with the cache on, after one run that filled it;
- ``unicorn``: `tcg2wasm run --engine unicorn` (Unicorn with only the syscall hook);
- ``native``: the program itself on this x86-64 host.

Each figure is the median of ``--repeat`` runs (default 3); the wasm columns also give
the translator's own seconds (lifting, optimizing, compiling) from ``--stats-json``.
Outputs of every engine are checked against the native run.

Usage: tools/programs_bench.py [--repeat N] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests" / "bin"
BUSYBOX = "/bin/busybox"


def _workloads(tmp: Path) -> dict[str, list[str]]:
    lines = tmp / "lines.txt"
    lines.write_text("".join(f"{(i * 7919) % 10007} item {i}\n" for i in range(3000)))
    programs = {
        "compute.musl": [str(GUESTS / "compute.musl")],
        "numbers.glibc": [str(GUESTS / "numbers.glibc"), "one", "two"],
        "strings.glibc": [str(GUESTS / "strings.glibc"), "one", "two"],
    }
    if Path(BUSYBOX).exists():
        programs |= {
            "busybox sort": [BUSYBOX, "sort", str(lines)],
            "busybox sha256sum": [BUSYBOX, "sha256sum", str(lines)],
            "busybox awk": [BUSYBOX, "awk", "{s += $1} END {print s}", str(lines)],
        }
    return programs


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    return time.perf_counter() - t0, proc.stdout, proc.returncode


def _translator(argv: list[str], engine: str, stats: Path) -> list[str]:
    return [sys.executable, "-m", "tcg2wasm", "run", "--engine", engine, "--stats-json", str(stats), *argv]


def _measure(name: str, argv: list[str], repeat: int, tmp: Path) -> dict[str, float]:
    base_env = dict(os.environ)
    stats = tmp / "stats.json"
    native_s, expected, status = _timed(argv, base_env)
    columns: dict[str, list[float]] = {"native": [native_s]}
    translate: dict[str, list[float]] = {"wasm cold": [], "wasm warm": []}
    runs = [("wasm cold", "wasm", "0"), ("wasm warm", "wasm", "1"), ("unicorn", "unicorn", "1")]
    _timed(_translator(argv, "wasm", stats), base_env | {"TCG2WASM_WASM_CACHE": "1"})  # fills the cache
    for _ in range(repeat):
        for label, engine, cache in runs:
            seconds, out, code = _timed(_translator(argv, engine, stats), base_env | {"TCG2WASM_WASM_CACHE": cache})
            if (out, code) != (expected, status):
                sys.exit(f"{name}: {label} output or status differs from the native run")
            columns.setdefault(label, []).append(seconds)
            if label in translate:
                translate[label].append(json.loads(stats.read_text())["translate_seconds"])
        columns["native"].append(_timed(argv, base_env)[0])
    result = {label: statistics.median(values) for label, values in columns.items()}
    result |= {f"{label} translate": statistics.median(values) for label, values in translate.items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and program (median reported)")
    parser.add_argument("--only", help="run only the program whose name contains this")
    args = parser.parse_args()
    if not Path(BUSYBOX).exists():
        print("note: /bin/busybox missing (busybox-static): busybox programs left out", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        programs = {k: v for k, v in _workloads(tmp).items() if not args.only or args.only in k}
        print(f"{'program':18} {'native':>8} {'wasm cold':>16} {'wasm warm':>16} {'unicorn':>8}  "
              f"{'warm/unicorn':>12} {'warm/native':>11}")
        for name, argv in programs.items():
            r = _measure(name, argv, args.repeat, tmp)
            cold = f"{r['wasm cold']:.2f} ({r['wasm cold translate']:.2f})"
            warm = f"{r['wasm warm']:.2f} ({r['wasm warm translate']:.2f})"
            print(f"{name:18} {r['native']:8.3f} {cold:>16} {warm:>16} {r['unicorn']:8.2f}  "
                  f"{r['unicorn'] / r['wasm warm']:11.2f}x {r['wasm warm'] / r['native']:10.1f}x")
    print("seconds per command (median), process start included; in parentheses: the translator's own "
          "seconds (lift, optimize, compile). warm/unicorn > 1: wasm faster than Unicorn.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
