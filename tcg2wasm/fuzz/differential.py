"""One instruction-stream case through every engine, compared with the CPU (the stream fuzzer's check).

:class:`StreamChecker` holds one engine of each kind, reused across cases (``tcg2wasm.fuzz.engines``):
the CPU (the reference), tcg2wasm's IR-interpreter engine on every case, the wasm engine on a
sample (compiling a region costs ~10 ms, running it microseconds: ``wasm_every``), and Unicorn
(``unicorn_every``). For each engine the differences from the CPU (``compare.compare``) are a
divergence unless one known difference covers them (``known.explain``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tcg2wasm.cases import Case, RunResult
from tcg2wasm.fuzz import known
from tcg2wasm.fuzz.compare import Difference, compare, undefined_flags
from tcg2wasm.fuzz.engines import MachineEngine, NativeEngine, UnicornEngine
from tcg2wasm.fuzz.native import NativeUnsupported

TCG2WASM_ENGINES = ("interp", "wasm")


@dataclass
class EngineVerdict:
    engine: str
    diffs: list[Difference]
    known: str | None = None  # id of the known difference that covers the diffs

    @property
    def diverged(self) -> bool:
        return bool(self.diffs) and self.known is None


@dataclass
class StreamVerdict:
    case: Case
    native: RunResult | None
    verdicts: dict[str, EngineVerdict] = field(default_factory=dict)
    skipped: str | None = None  # "native-unsupported: ..." / "timeout"

    @property
    def divergences(self) -> dict[str, EngineVerdict]:
        return {name: v for name, v in self.verdicts.items() if v.diverged}

    def labels(self) -> list[str]:
        """Counter keys of this case for campaign summaries."""
        if self.skipped:
            return [f"skipped:{self.skipped.split(':')[0]}"]
        out = []
        for name, v in self.verdicts.items():
            out.append(f"{name}:{'diverged' if v.diverged else 'known:' + v.known if v.known else 'match'}")
        return out


class StreamChecker:
    def __init__(self, *, wasm_every: int = 0, unicorn_every: int = 1, native_timeout_ms: int = 200) -> None:
        self.native = NativeEngine(timeout_ms=native_timeout_ms)
        self.interp = MachineEngine("interp")
        self.wasm = MachineEngine("wasm") if wasm_every else None
        self.unicorn = UnicornEngine() if unicorn_every else None
        self.wasm_every = wasm_every
        self.unicorn_every = unicorn_every
        self.cases = 0

    def close(self) -> None:
        self.native.close()

    def engines_for(self, index: int) -> list[Any]:
        out: list[Any] = [self.interp]
        if self.wasm is not None and index % self.wasm_every == 0:
            out.append(self.wasm)
        if self.unicorn is not None and index % self.unicorn_every == 0:
            out.append(self.unicorn)
        return out

    def check(self, case: Case, engines: list[Any] | None = None, index: int | None = None) -> StreamVerdict:
        """``index`` (the case's seed in campaigns) picks the sampled engines, so that which cases ran on
        wasm does not depend on how the seeds were scheduled."""
        index = self.cases if index is None else index
        self.cases += 1
        try:
            native = self.native.run(case)
        except NativeUnsupported as e:
            return StreamVerdict(case, None, skipped=f"native-unsupported: {e}")
        if native.stop["kind"] == "timeout":
            return StreamVerdict(case, native, skipped="timeout: the CPU did not stop")
        verdict = StreamVerdict(case, native)
        results: dict[str, RunResult] = {}
        for engine in engines if engines is not None else self.engines_for(index):
            result = results[engine.engine] = engine.run(case)
            diffs = compare(case, native, result)
            explained = known.explain(case, native, result, diffs)
            verdict.verdicts[engine.engine] = EngineVerdict(engine.engine, diffs, explained.id if explained else None)
        self._fallback_as_unicorn(case, native, verdict, results)
        return verdict

    def _fallback_as_unicorn(self, case: Case, native: RunResult, verdict: StreamVerdict,
                             results: dict[str, RunResult]) -> None:
        """A divergence of a tcg2wasm engine whose run used the Unicorn fallback, with exactly Unicorn's own
        result, is Unicorn's (``fallback:same-as-unicorn``); Unicorn's divergence is still reported."""
        for name in TCG2WASM_ENGINES:
            v, result = verdict.verdicts.get(name), results.get(name)
            if v is None or result is None or not v.diverged or not result.stats.get("fallback_insns"):
                continue
            theirs = results.get("unicorn")
            if theirs is None:
                theirs = results["unicorn"] = (self.unicorn or UnicornEngine()).run(case)
            if not compare(case, theirs, result, flag_mask=undefined_flags(case, native.stop.get("pc"))):
                v.known = "fallback:same-as-unicorn"


def fresh_check(case: Case, engine: str) -> StreamVerdict:
    """Check ``case`` against ``engine`` with new instances of everything (no state from earlier cases)."""
    checker = StreamChecker(wasm_every=0, unicorn_every=0)
    try:
        factory: dict[str, Callable[[], Any]] = {"interp": lambda: MachineEngine("interp"),
                                                 "wasm": lambda: MachineEngine("wasm"), "unicorn": UnicornEngine}
        return checker.check(case, [factory[engine]()])
    finally:
        checker.close()
