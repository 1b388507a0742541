"""Campaigns on a Dask cluster (``tcg2wasm fuzz KIND --scheduler tcp://HOST:PORT`` or ``--local-cluster N``).

The same shards as a local campaign (``tcg2wasm.fuzz.campaign``): each Dask task runs one shard of
seeds and returns its partial summary. Inside a Dask worker the shard still runs in a supervised
worker process (one :class:`~tcg2wasm.fuzz.campaign.Supervisor` per Dask worker process, kept
between tasks), so a crash or a hang of the code under test is a finding, never a lost Dask worker.
The client keeps twice as many shards in flight as the cluster has threads, merges the results,
writes the failures and ``summary.json`` on its own machine. Results depend only on the seeds that
ran (reported as ``shards``), never on the cluster.

Dask (``distributed``) is an optional dependency: ``pip install 'tcg2wasm[fuzz]'`` (docs/dependencies.md).
Every machine of the cluster needs the same tcg2wasm and, for ``streams``, an x86-64 CPU and gcc.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.fuzz.campaign import (
    CASE_TIMEOUT,
    DEFAULT_SHARD,
    PROGRESS_EVERY,
    ShardSource,
    Summary,
    Supervisor,
    write_failure,
    write_summary,
)

_SUPERVISORS: dict[str, Supervisor] = {}  # in a Dask worker process: kind+options -> its supervisor


def run_shard_task(kind: str, options: dict[str, Any], lo: int, hi: int, deadline: float | None,
                   case_timeout: float = CASE_TIMEOUT) -> dict[str, Any]:
    """A Dask task: seeds lo..hi-1 (until the wall-clock ``deadline``) -> a partial summary."""
    key = kind + json.dumps(options, sort_keys=True)
    sup = _SUPERVISORS.get(key)
    if sup is None:
        sup = _SUPERVISORS[key] = Supervisor(kind, options, case_timeout=case_timeout)
    results: list[dict[str, Any]] = []
    done = sup.run_shard(lo, hi, results.append, lambda: deadline is not None and time.time() >= deadline)
    labels: Counter[str] = Counter()
    failures = []
    for r in results:
        labels.update(r.get("labels", []))
        if r.get("failure"):
            failures.append({"seed": r["seed"], **r["failure"]})
    return {"lo": lo, "done": done, "cases": len(results), "labels": dict(labels), "failures": failures}


def _client(scheduler: str | None, local_workers: int | None) -> tuple[Any, Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise Tcg2WasmError("the distributed mode needs Dask: pip install 'tcg2wasm[fuzz]' "
                            "(or pip install 'distributed>=2024.1')") from None
    if local_workers:
        cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=30), None
    except OSError as e:
        raise Tcg2WasmError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None


def run_dask(kind: str, *, scheduler: str | None = None, local_workers: int | None = None,
             seconds: float | None, seed: int, out_dir: Path | None, options: dict[str, Any],
             max_cases: int | None = None, shard_size: int = DEFAULT_SHARD,
             progress: Callable[[Summary], None] | None = None) -> Summary:
    """Run a campaign on a Dask cluster (see the module docstring); the same Summary as ``run_local``."""
    client, cluster = _client(scheduler, local_workers)
    try:
        threads = max(1, sum(client.nthreads().values()))
        summary = Summary(kind, seed, threads)
        _drive(client, kind, summary, ShardSource(seed, shard_size, max_cases), seconds, out_dir, options, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return summary


def _drive(client: Any, kind: str, summary: Summary, source: ShardSource, seconds: float | None,
           out_dir: Path | None, options: dict[str, Any], progress: Callable[[Summary], None] | None) -> None:
    from dask.distributed import as_completed

    start = time.monotonic()
    deadline = time.time() + seconds if seconds is not None else None

    def submit() -> Any:
        shard = None if deadline is not None and time.time() >= deadline else source.take()
        if shard is None:
            return None
        return client.submit(run_shard_task, kind, options, shard[0], shard[1], deadline, pure=False)

    pending = [f for f in (submit() for _ in range(2 * summary.jobs)) if f is not None]
    last = time.monotonic()
    queue = as_completed(pending)
    for future in queue:
        part = future.result()
        _merge(summary, part, kind, out_dir)
        nxt = submit()
        if nxt is not None:
            queue.add(nxt)
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            summary.seconds = last - start
            write_summary(out_dir, summary)
            if progress is not None:
                progress(summary)
    summary.seconds = time.monotonic() - start
    write_summary(out_dir, summary)


def _merge(summary: Summary, part: dict[str, Any], kind: str, out_dir: Path | None) -> None:
    summary.cases += part["cases"]
    summary.labels.update(part["labels"])
    summary.failures += part["failures"]
    summary.shards.append((part["lo"], part["lo"] + part["done"]))
    if out_dir is not None:
        for failure in part["failures"]:
            write_failure(out_dir, kind, failure)
