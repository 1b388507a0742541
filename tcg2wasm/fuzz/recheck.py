"""Re-checking a campaign's failures with the current code (``tcg2wasm fuzz streams --recheck DIR``).

Every state case a stream campaign wrote (``DIR/streams-SEED-*.json``) runs again, with fresh
engines, on the interpreter, wasm and Unicorn against the CPU. Each is reported as still
diverging, explained by a known difference (which), or matching now (fixed); the counts are what
docs/testing.md reports for the campaign's triage.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tcg2wasm.cases import load_case
from tcg2wasm.fuzz.differential import fresh_check

ENGINES = ("interp", "wasm", "unicorn")


def recheck(directory: Path) -> tuple[Counter[str], list[str]]:
    """(counts by engine:outcome, one line per case still diverging)."""
    counts: Counter[str] = Counter()
    open_lines = []
    for path in sorted(directory.glob("streams-*.json")):
        case = load_case(path)
        for engine in ENGINES:
            verdict = fresh_check(case, engine)
            v = verdict.verdicts.get(engine)
            if v is None:
                counts[f"{engine}:skipped"] += 1
            elif v.diverged:
                counts[f"{engine}:diverged"] += 1
                open_lines.append(f"{path.name} {engine}: " + "; ".join(str(d) for d in v.diffs[:4]))
            else:
                counts[f"{engine}:{'known:' + v.known if v.known else 'match'}"] += 1
    return counts, open_lines
