"""Helpers of the commands that run state cases (``exec``, ``demo``): load, run, judge, print."""

from __future__ import annotations

import time
from typing import Any

from tcg2wasm.cases import RESULT_REGS, Case, RunResult, check_result, load_cases, run_case

SUMMARY_STATS = ("guest_insns", "fallback_insns", "blocks_translated", "regions_translated", "modules",
                 "host_exits", "translate_seconds", "run_seconds")


def load_all(paths: list[str]) -> list[Case]:
    """Every case of every file, or a CaseError naming the first bad file."""
    cases: list[Case] = []
    for path in paths:
        cases += load_cases(path)
    return cases


def case_status(case: Case, result: RunResult) -> tuple[str, list[str]]:
    """("ok" | "done" | "mismatch" | "fault", mismatch lines)."""
    problems = check_result(case, result) if case.has_final else []
    if problems:
        return "mismatch", problems
    if result.stop["kind"] == "fault":
        return "fault", []
    return ("ok" if case.has_final else "done"), []


def format_regs(regs: dict[str, int]) -> list[str]:
    cells = [f"{name:>6}={regs[name]:#018x}" for name in RESULT_REGS]
    return ["  " + " ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]


def format_stats(stats: dict[str, Any]) -> str:
    parts = []
    for key in SUMMARY_STATS:
        value = stats.get(key)
        if value is not None:
            parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    return "  " + " ".join(parts)


def print_summary(case: Case, result: RunResult, status: str, problems: list[str]) -> None:
    print(f"{case.name} [{result.engine}]: {status.upper()} - {result.stop['message'] or result.stop['kind']}")
    for line in problems:
        print(f"  {line}")
    for line in format_regs(result.regs):
        print(line)
    print(format_stats(result.stats))


def timed_run(case: Case, engine: str, capture: bool = False) -> RunResult:
    t0 = time.perf_counter()
    result = run_case(case, engine, capture=capture)
    result.stats.setdefault("run_seconds", round(time.perf_counter() - t0, 6))
    return result
