"""Native-oracle conformance: project-written C programs (guests/conformance/*.c), built static with gcc,
run natively and through ``tcg2wasm run``; their output must be equal line for line, with no fallback.

``make test`` runs the short sets (``short`` argument: a third of the operand pairs); ``make
conformance`` runs every program in full and also reports the ones with known gaps
(tools/conformance.py; fenv.c differs on the SSE lines: MXCSR exception flags are not raised yet).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from conformance import build, run_both  # noqa: E402

#: Program -> arguments of its short set (make test).
SHORT = {"x87_arith": ["short"], "integer": []}


@pytest.mark.parametrize("name", sorted(SHORT))
def test_conformance_program_matches_native(name: str, tmp_path: Path) -> None:
    binary = build(name, tmp_path)
    result = run_both(binary, SHORT[name], tmp_path)
    assert result.differing == [], f"{len(result.differing)} of {result.lines} lines differ: {result.differing[:5]}"
    assert result.lines > 100
    assert result.stats["fallback_insns"] == 0

