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


# -- the Machine API with arguments at its edges (issue 14, found by fuzzing the API) ------------------------
# Machine.run's argument checks live in tcg2wasm/machine.py, which the lead owns: these are strict xfails
# until the fix lands there.


@pytest.mark.xfail(strict=True, reason="issue 14: Machine.run stores 'no stop address' as 2^64-1, so a run "
                   "from 0xffffffffffffffff stops at once with kind 'until' (machine.py)")
def test_run_from_the_last_address() -> None:
    from tcg2wasm import Machine

    m = Machine(engine="interp")
    m.mem_map(0xFFFFFFFFFFFFF000, 0x1000, "rwx")
    m.mem_write(0xFFFFFFFFFFFFFFFF, b"\x90")  # nop; rip then wraps to 0 (unmapped)
    stop = m.run(0xFFFFFFFFFFFFFFFF, count=5)
    assert (stop.kind, stop.fault, stop.pc) == ("fault", "FETCH_UNMAPPED", 0)
    assert m.stats.guest_insns == 1


@pytest.mark.xfail(strict=True, reason="issue 14: run(count=2**64) is accepted, runs no instruction and "
                   "reports 2^64 guest instructions; it should be refused (count must fit in 64 bits)")
def test_run_count_out_of_range() -> None:
    from tcg2wasm import Machine

    m = Machine(engine="interp")
    m.mem_map(0x10000, 0x1000, "rwx")
    m.mem_write(0x10000, b"\x90" * 16)
    with pytest.raises((ValueError, TypeError), match="count"):
        m.run(0x10000, count=2**64)


@pytest.mark.xfail(strict=True, reason="issue 14: Machine(hot_threshold='x') raises a bare TypeError "
                   "(\"'>' not supported...\") from deep inside instead of naming the argument")
def test_hot_threshold_of_the_wrong_type() -> None:
    from tcg2wasm import Machine

    with pytest.raises((ValueError, TypeError), match="hot_threshold"):
        Machine(hot_threshold="x")  # type: ignore[arg-type]


def test_many_machines_keep_rss_flat() -> None:
    """Issue 14 saw a worker creating a Machine per case grow to gigabytes; 300 Machines on 50 stream cases
    (wasm, regions compiled at the first miss) now stay within a few MiB once warm."""
    import gc

    from tcg2wasm.fuzz.streams import stream_case

    def rss_mib() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 >> 20

    cases = [stream_case(i) for i in range(50)]
    for case in cases:
        run_case(case, "wasm")
    gc.collect()
    before = rss_mib()
    for case in cases * 6:
        run_case(case, "wasm")
    gc.collect()
    assert rss_mib() - before < 24
