"""The runners and the measurement loop: every workload under every runner, ``repeat`` times.

Runners, each timed as a whole process (start-up included):

- ``native``: the program on this host: the reference output and exit status;
- ``qemu``: qemu-x86_64 (user mode, QEMU's own TCG);
- ``unicorn``: ``tcg2wasm run --engine unicorn``;
- ``wasm-cold``: ``tcg2wasm run`` with a fresh, empty cache directory: XDG_CACHE_HOME (wasmtime's
  compilation cache lives under it) and TCG2WASM_CACHE_DIR (the translator's own cache);
- ``wasm-warm``: ``tcg2wasm run`` again on the directory the cold run just filled.

Every other run gets a fresh directory too, so that nothing is carried between runs. Within one
repeat the runners go in this order; repeats interleave, so a slow spell of the machine spreads
over all runners instead of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .child import ChildResult, run_child
from .workloads import Workload

RUNNERS = ("native", "qemu", "unicorn", "wasm-cold", "wasm-warm")
LABELS = {"native": "native", "qemu": "qemu-x86_64", "unicorn": "unicorn", "wasm-cold": "wasm cold",
          "wasm-warm": "wasm warm"}
QEMU_NAMES = ("qemu-x86_64-static", "qemu-x86_64")


@dataclass(frozen=True)
class Tools:
    """How to start the translator and qemu (None: qemu not installed)."""

    tcg2wasm: tuple[str, ...]
    qemu: str | None

    @staticmethod
    def find() -> Tools:
        script = Path(sys.executable).parent / "tcg2wasm"  # the command a user of the venv runs
        tcg2wasm = (str(script),) if script.exists() else (sys.executable, "-m", "tcg2wasm")
        qemu = next((found for name in QEMU_NAMES if (found := shutil.which(name))), None)
        return Tools(tcg2wasm, qemu)


@dataclass(frozen=True)
class Options:
    repeat: int = 3
    repeat_limit: float = 60.0  # a runner whose first run took longer is not repeated on that workload
    timeout: float = 300.0
    runners: tuple[str, ...] = RUNNERS


@dataclass
class Run:
    """One child process of one runner on one workload."""

    runner: str
    repeat: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_kib: int
    status: int | None
    stdout_bytes: int
    stdout_sha256: str
    problem: str | None = None  # why the run does not count as the native result (None: it does)
    stats: dict | None = None  # `--stats-json` of the translator's runs
    stderr_tail: str = ""

    @property
    def timed_out(self) -> bool:
        return self.status is None


@dataclass
class WorkloadRuns:
    workload: Workload
    runs: dict[str, list[Run]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # runner -> why it did not run


def command(runner: str, workload: Workload, stats: Path, tools: Tools) -> list[str] | None:
    argv = list(workload.argv)
    if runner == "native":
        return argv
    if runner == "qemu":
        return [tools.qemu, *argv] if tools.qemu else None
    engine = ["--engine", "unicorn"] if runner == "unicorn" else []
    return [*tools.tcg2wasm, "run", *engine, "--stats-json", str(stats), *argv]


def child_env(cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCG2WASM_WASM_CACHE"}  # caches on, as for a user
    return env | {"LC_ALL": "C", "XDG_CACHE_HOME": str(cache_dir), "TCG2WASM_CACHE_DIR": str(cache_dir / "tcg2wasm")}


def describe_difference(run: ChildResult, reference: ChildResult) -> str | None:
    """None when ``run`` gave the reference's exit status and stdout, else what differs."""
    if run.timed_out:
        return "timed out"
    parts = []
    if run.status != reference.status:
        parts.append(f"exit status {run.status}, native {reference.status}")
    if run.stdout != reference.stdout:
        at = next((i for i, (a, b) in enumerate(zip(run.stdout, reference.stdout, strict=False)) if a != b),
                  min(len(run.stdout), len(reference.stdout)))
        parts.append(f"stdout differs from native at byte {at} ({len(run.stdout)} bytes, native "
                     f"{len(reference.stdout)})")
    if not parts:
        return None
    last_err = run.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return "; ".join(parts + [f"stderr: {last_err[0][:200]}"] if last_err else parts)


def _read_stats(path: Path) -> dict | None:
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def to_run(runner: str, repeat: int, result: ChildResult, reference: ChildResult | None, stats: Path) -> Run:
    problem = describe_difference(result, reference) if reference is not None else None
    if reference is None and result.timed_out:
        problem = "timed out"
    return Run(runner=runner, repeat=repeat, wall_seconds=result.wall_seconds, cpu_seconds=result.cpu_seconds,
               max_rss_kib=result.max_rss_kib, status=result.status, stdout_bytes=len(result.stdout),
               stdout_sha256=hashlib.sha256(result.stdout).hexdigest(), problem=problem,
               stats=_read_stats(stats) if runner not in ("native", "qemu") else None,
               stderr_tail=result.stderr.decode(errors="replace")[-400:])


def _skipped(runner: str, wr: WorkloadRuns, repeat: int, options: Options) -> bool:
    """Runs longer than ``repeat_limit`` are not repeated (their noise is small beside their length);
    the warm run follows its cold run's decision, as it needs that run's cache."""
    if repeat == 0:
        return False
    key = "wasm-cold" if runner == "wasm-warm" and "wasm-cold" in options.runners else runner
    first = wr.runs.get(key, [])
    return bool(first) and first[0].wall_seconds > options.repeat_limit


Progress = Callable[[str], None]


def measure_workload(workload: Workload, tools: Tools, options: Options, scratch: Path,
                     progress: Progress = lambda _: None) -> WorkloadRuns:
    """All runs of one workload; ``progress`` is called once per (runner, repeat), run or skipped."""
    wr = WorkloadRuns(workload, unavailable=dict(workload.not_run))
    reference: ChildResult | None = None
    stats = scratch / "stats.json"
    for repeat in range(options.repeat):
        cold_cache: Path | None = None
        for runner in options.runners:
            progress(f"{workload.name}: {LABELS[runner]} ({repeat + 1}/{options.repeat})")
            if _skipped(runner, wr, repeat, options) or runner in wr.unavailable:
                continue
            argv = command(runner, workload, stats, tools)
            if argv is None:
                wr.unavailable[runner] = "qemu-x86_64(-static) not found"
                continue
            cache = cold_cache if runner == "wasm-warm" and cold_cache else Path(tempfile.mkdtemp(dir=scratch))
            if runner == "wasm-warm" and cold_cache is None:  # no cold run this repeat: fill the cache first
                run_child(argv, child_env(cache), options.timeout)
            stats.unlink(missing_ok=True)
            result = run_child(argv, child_env(cache), options.timeout)
            if runner == "native" and reference is None:
                reference = result
            wr.runs.setdefault(runner, []).append(to_run(runner, repeat, result, reference, stats))
            if runner == "wasm-cold":
                cold_cache = cache
            else:
                shutil.rmtree(cache, ignore_errors=True)
        if cold_cache is not None:
            shutil.rmtree(cold_cache, ignore_errors=True)
    return wr


def steps(workloads: list[Workload], options: Options) -> int:
    """How many times ``measure_workload`` calls ``progress`` over all workloads."""
    return len(workloads) * options.repeat * len(options.runners)
