"""The fuzz kinds a campaign can run, and what one case of each reports.

A kind's *worker* runs cases by seed (``run(seed) -> dict``); the same seed gives the same case
everywhere. The dict has ``seed``, ``labels`` (counter keys for the summary) and, for a case
that found something, ``failure``: ``status``, ``detail`` (lines), and for kinds whose inputs
are state cases a minimized, re-checked ``case`` (the JSON to keep in tests/regressions/).
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from typing import Any, Protocol

#: kind name -> "module:WorkerClass"
KINDS: dict[str, str] = {
    "streams": "tcg2wasm.fuzz.kinds:StreamWorker",
    "blobs": "tcg2wasm.fuzz.blobs:BlobWorker",
    "cfg": "tcg2wasm.fuzz.cfg:CfgWorker",
    "files": "tcg2wasm.fuzz.files:FileWorker",
    "selftest": "tcg2wasm.fuzz.kinds:SelfTestWorker",
}


class Worker(Protocol):
    def run(self, seed: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


def make_worker(kind: str, options: dict[str, Any]) -> Worker:
    if kind not in KINDS:
        raise ValueError(f"unknown fuzz kind {kind!r} (known: {', '.join(KINDS)})")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)(options)


def traceback_failure(seed: int, exc: BaseException, where: str) -> dict[str, Any]:
    """A Python exception escaping the code under test: always a failure (never a documented stop)."""
    lines = traceback.format_exception(exc)
    return {"seed": seed, "labels": ["traceback"],
            "failure": {"status": "traceback", "detail": [f"{where}: {type(exc).__name__}: {exc}",
                                                          *"".join(lines).splitlines()[-12:]]}}


class StreamWorker:
    """Instruction streams against the CPU (``tcg2wasm.fuzz.differential``)."""

    def __init__(self, options: dict[str, Any]) -> None:
        from tcg2wasm.fuzz.differential import StreamChecker

        self.options = options
        self.checker = StreamChecker(wasm_every=int(options.get("wasm_every", 50)),
                                     unicorn_every=int(options.get("unicorn_every", 1)))

    def close(self) -> None:
        self.checker.close()

    def run(self, seed: int) -> dict[str, Any]:
        from tcg2wasm.fuzz.streams import stream_case

        case = stream_case(seed)
        try:
            verdict = self.checker.check(case, index=seed)
        except Exception as e:  # an exception from an engine: a finding, and the engines start afresh
            self.close()
            self.__init__(self.options)  # type: ignore[misc]
            return traceback_failure(seed, e, f"stream case {seed}")
        out: dict[str, Any] = {"seed": seed, "labels": verdict.labels()}
        if verdict.divergences:
            engine, first = next(iter(verdict.divergences.items()))
            out["failure"] = self._failure(case, engine, first.diffs)
        return out

    def _failure(self, case: Any, engine: str, diffs: list[Any]) -> dict[str, Any]:
        from tcg2wasm.fuzz.differential import fresh_check
        from tcg2wasm.fuzz.engines import MachineEngine, UnicornEngine
        from tcg2wasm.fuzz.minimize import minimize
        from tcg2wasm.fuzz.regressions import regression_case

        makers: dict[str, Callable[[], Any]] = {"interp": lambda: MachineEngine("interp"),
                                                "wasm": lambda: MachineEngine("wasm"), "unicorn": UnicornEngine}
        make = makers[engine]
        probe = make()
        field = diffs[0].field

        def fails(candidate: Any) -> bool:
            v = self.checker.check(candidate, [probe]).verdicts.get(engine)
            return v is not None and v.diverged and v.diffs[0].field == field

        reproduces = fresh_check(case, engine).divergences.get(engine) is not None
        small = minimize(case, fails) if reproduces else case
        again = fresh_check(small, engine)
        verdict = again.verdicts.get(engine)
        status = "divergence" if engine != "unicorn" else "unicorn-divergence"
        detail = [f"engine {engine}: " + "; ".join(str(d) for d in (verdict.diffs if verdict else [])[:6]),
                  f"CPU: {again.native.stop['message'] if again.native else again.skipped}"]
        if not reproduces:
            detail.append("does not reproduce with fresh engines: state carried over from earlier cases; "
                          "in the campaign: " + "; ".join(str(d) for d in diffs[:6]))
        return {"status": status, "engine": engine, "confirmed": bool(verdict and verdict.diverged),
                "detail": detail, "case": regression_case(small, again.native, detail)}


class SelfTestWorker:
    """A kind that tests the campaign machinery itself: options ``crash_at`` / ``hang_at`` / ``raise_at``
    name seeds where the worker process aborts, stops answering, or raises; other seeds pass."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def close(self) -> None:
        pass

    def run(self, seed: int) -> dict[str, Any]:
        import os
        import time

        if seed in self.options.get("crash_at", ()):
            os.abort()
        if seed in self.options.get("hang_at", ()):
            time.sleep(3600)
        if seed in self.options.get("raise_at", ()):
            return traceback_failure(seed, RuntimeError(f"raised at seed {seed}"), "selftest")
        return {"seed": seed, "labels": [f"parity:{seed % 2}"]}
