"""Regression cases found by the fuzzers (tests/regressions/*.json): every engine must end as the CPU did.

Each file is a state case whose ``final`` (registers, written memory, ``final.stop``) is what the host
CPU computed (``tcg2wasm.fuzz.regressions``). It runs on the interpreter and the wasm engine and
must match; where the native oracle can run here, the CPU is asked again, so that a stored
expectation never drifts from the hardware. Files named ``open-*.json`` are findings not fixed yet:
strict xfails (their description says where the fix belongs).
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from tcg2wasm.cases import check_result, load_case, run_case
from tcg2wasm.fuzz.native import NativeRunner, NativeUnsupported

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
FILES = sorted(REGRESSIONS.glob("*.json"))
NATIVE = platform.machine() in ("x86_64", "AMD64")


def _param(path: Path, engine: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=load_case(path).description)] if path.name.startswith("open-") \
        else []
    return pytest.param(path, engine, id=f"{path.stem}-{engine}", marks=marks)


@pytest.mark.parametrize(("path", "engine"), [_param(p, e) for p in FILES for e in ("interp", "wasm")])
def test_engine_matches_the_cpu(path: Path, engine: str) -> None:
    case = load_case(path)
    result = run_case(case, engine)
    assert check_result(case, result) == [], case.description


@pytest.fixture(scope="module")
def cpu() -> object:
    if not NATIVE:
        pytest.skip("the native oracle needs an x86-64 host")
    with NativeRunner() as runner:
        yield runner


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_expectation_is_the_cpus(path: Path, cpu: NativeRunner) -> None:
    case = load_case(path)
    try:
        native = cpu.run(case)
    except NativeUnsupported as e:
        pytest.fail(f"a regression case must run on the CPU: {e}")
    assert check_result(case, native) == []


def test_there_are_regression_cases() -> None:
    assert len(FILES) >= 5
