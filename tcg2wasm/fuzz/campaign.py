"""Fuzz campaigns: shards of seeds run by supervised worker processes, on every core or a cluster.

A campaign of one kind starts at ``seed`` and cuts the seeds into shards of ``shard_size``:
shard k is ``[seed + k*shard_size, seed + (k+1)*shard_size)``. Each job is a :class:`Supervisor`
owning one worker process (``tcg2wasm.fuzz.worker``) and takes the next shard until the time is up
(or ``max_cases`` ran). Since a seed determines its case, a campaign's results depend on which
shards ran, never on how they were scheduled: shard ranges are reported, and any case can be
rerun by its seed (``tcg2wasm fuzz KIND --seed S --cases 1``).

The supervisor turns a worker that dies into a ``crash`` failure and one silent for
``case_timeout`` seconds into a ``hang``, both at the seed it was running, then starts a new
worker after that seed. Every failure is written to ``out_dir`` as a JSON file (for stream
cases: a minimized, re-checked state case with the CPU's result, ready for tests/regressions/),
and the summary to ``out_dir/summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SHARD = 200
CASE_TIMEOUT = 120.0  # seconds without a result before a worker counts as hung (wasm compiles are slow)
PROGRESS_EVERY = 10.0


class Supervisor:
    """One worker process; runs shards, turning its death or silence into crash/hang failures."""

    def __init__(self, kind: str, options: dict[str, Any], *, case_timeout: float = CASE_TIMEOUT) -> None:
        self.kind = kind
        self.options = options
        self.case_timeout = case_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._eof = False  # the worker closed its output: it is dying, whatever poll() says yet
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "tcg2wasm.fuzz.worker", self.kind, json.dumps(self.options)]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                bufsize=0)

    def close(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.kill()
            proc.wait()

    def _line(self, deadline: float) -> bytes | None:
        """The next protocol line, or None if the worker died or stayed silent until ``deadline``."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._eof = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _stderr_tail(self) -> list[str]:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            os.set_blocking(self.proc.stderr.fileno(), False)
            data = self.proc.stderr.read() or b""
        except OSError:
            data = b""
        return data.decode(errors="replace").strip().splitlines()[-8:]

    def run_shard(self, lo: int, hi: int, emit: Callable[[dict[str, Any]], None],
                  stop: Callable[[], bool] = lambda: False) -> int:
        """Run seeds lo..hi-1, calling ``emit`` with each case's result; returns the seeds done."""
        seed = lo
        while seed < hi and not stop():
            if self.proc is None:
                self.proc = self._start()
                self._buffer, self._eof = b"", False
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write(f"{seed} {hi}\n".encode())
            seed = self._collect(seed, hi, emit, stop)
        return seed - lo

    def _collect(self, seed: int, hi: int, emit: Callable[[dict[str, Any]], None], stop: Callable[[], bool]) -> int:
        while seed < hi:
            line = self._line(time.monotonic() + self.case_timeout)
            if line is None:
                return self._lost(seed, emit)
            msg = json.loads(line)
            if "done" in msg:
                return hi
            emit(msg)
            seed = msg["seed"] + 1
            if stop():
                self.close()
                return seed
        line = self._line(time.monotonic() + self.case_timeout)  # the shard's "done"
        return hi if line is not None else self._lost(hi, emit)

    def _lost(self, seed: int, emit: Callable[[dict[str, Any]], None]) -> int:
        assert self.proc is not None
        if self._eof:  # its files are closed before it can be waited for: a crash, never a hang
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        alive = self.proc.poll() is None
        status = "hang" if alive and not self._eof else "crash"
        if alive:
            self.proc.kill()
            self.proc.wait()
        detail = [f"worker {'silent for ' + str(self.case_timeout) + ' s' if alive else 'died'} "
                  f"(exit status {self.proc.returncode})", *self._stderr_tail()]
        self.close()
        self.restarts += 1
        emit({"seed": seed, "labels": [status], "failure": {"status": status, "detail": detail}})
        return seed + 1


@dataclass
class Summary:
    kind: str
    seed: int
    jobs: int
    cases: int = 0
    seconds: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    shards: list[tuple[int, int]] = field(default_factory=list)  # seed ranges actually run

    def add(self, result: dict[str, Any]) -> None:
        self.cases += 1
        self.labels.update(result.get("labels", []))
        if result.get("failure"):
            self.failures.append({"seed": result["seed"], **result["failure"]})

    def merge(self, other: Summary) -> None:
        self.cases += other.cases
        self.labels.update(other.labels)
        self.failures += other.failures
        self.shards += other.shards

    def to_json(self) -> dict[str, Any]:
        rate = self.cases / self.seconds if self.seconds else 0.0
        return {"kind": self.kind, "seed": self.seed, "jobs": self.jobs, "cases": self.cases,
                "seconds": round(self.seconds, 1), "cases_per_second": round(rate, 1),
                "cases_per_second_per_job": round(rate / max(1, self.jobs), 1),
                "labels": dict(sorted(self.labels.items())),
                "failures": len(self.failures), "failures_by_status": dict(Counter(f["status"] for f in self.failures)),
                "shards": _merge_ranges(self.shards)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Summary:
        s = cls(obj["kind"], obj["seed"], obj["jobs"], obj["cases"], obj["seconds"], Counter(obj["labels"]))
        s.shards = [(int(r[0]), int(r[1])) for r in obj["shards"]]
        return s


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and out[-1][1] >= lo:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


class ShardSource:
    """The shards of a campaign, handed out in order to whichever job asks next."""

    def __init__(self, seed: int, shard_size: int, max_cases: int | None) -> None:
        self.seed, self.size, self.max_cases = seed, shard_size, max_cases
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[int, int] | None:
        with self._lock:
            lo = self.seed + self._next * self.size
            end = self.seed + self.max_cases if self.max_cases is not None else None
            if end is not None and lo >= end:
                return None
            self._next += 1
            hi = lo + self.size if end is None else min(lo + self.size, end)
            return lo, hi

    def __iter__(self) -> Iterator[tuple[int, int]]:
        while (shard := self.take()) is not None:
            yield shard


def write_failure(out_dir: Path, kind: str, failure: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{failure['seed']}-{failure['status']}.json"
    if failure.get("case") is not None:
        path.write_text(json.dumps(failure["case"], indent=1) + "\n")
        (out_dir / f"{path.stem}.txt").write_text("\n".join(failure.get("detail", [])) + "\n")
    else:
        path.write_text(json.dumps(failure, indent=1) + "\n")
    return path


def run_local(kind: str, *, seconds: float | None, jobs: int, seed: int, out_dir: Path | None,
              options: dict[str, Any], max_cases: int | None = None, shard_size: int = DEFAULT_SHARD,
              progress: Callable[[Summary], None] | None = None, case_timeout: float = CASE_TIMEOUT) -> Summary:
    """Run a campaign on this machine with ``jobs`` worker processes (see the module docstring)."""
    summary = Summary(kind, seed, jobs)
    source = ShardSource(seed, shard_size, max_cases)
    start = time.monotonic()
    deadline = start + seconds if seconds is not None else None
    lock = threading.Lock()

    def over() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def emit(result: dict[str, Any]) -> None:
        with lock:
            summary.add(result)
            if result.get("failure") and out_dir is not None:
                write_failure(out_dir, kind, {"seed": result["seed"], **result["failure"]})

    def job() -> None:
        sup = Supervisor(kind, options, case_timeout=case_timeout)
        try:
            for lo, hi in source:
                if over():
                    break
                done = sup.run_shard(lo, hi, emit, over)
                with lock:
                    summary.shards.append((lo, lo + done))
        finally:
            sup.close()

    threads = [threading.Thread(target=job, daemon=True) for _ in range(jobs)]
    for t in threads:
        t.start()
    last = time.monotonic()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.5)
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                with lock:
                    summary.seconds = last - start
                    write_summary(out_dir, summary)
                if progress is not None:
                    progress(summary)
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM, see tcg2wasm.cli.fuzz): the shards stop at their next case
        deadline = time.monotonic()
        for t in threads:
            t.join()
    summary.seconds = time.monotonic() - start
    write_summary(out_dir, summary)
    return summary


def write_summary(out_dir: Path | None, summary: Summary) -> None:
    """``out_dir/summary.json``, rewritten as the campaign goes (a killed campaign keeps its figures)."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary.to_json(), indent=1) + "\n")
        tmp.replace(out_dir / "summary.json")
