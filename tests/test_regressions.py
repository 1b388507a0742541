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


@pytest.mark.parametrize("engine", ["interp", "wasm"])
def test_run_from_the_last_address(engine: str) -> None:
    """'No stop address' was stored as 2^64-1, so a run from 0xffffffffffffffff stopped at once as 'until';
    it is a non-canonical pc now (runtime/stops.py NO_STOP). On wasm the jump cache's empty tag is 2^64-1
    too: a lookup of that pc called table slot 0 (a wasm trap) until slot 0 became a miss."""
    from tcg2wasm import Machine

    m = Machine(engine=engine, hot_threshold=1)
    m.mem_map(0xFFFFFFFFFFFFF000, 0x1000, "rwx")
    m.mem_write(0xFFFFFFFFFFFFFFFF, b"\x90")  # nop; rip then wraps to 0 (unmapped)
    for _ in range(2):  # the second run finds the block compiled
        stop = m.run(0xFFFFFFFFFFFFFFFF)
        assert (stop.kind, stop.fault, stop.pc) == ("fault", "FETCH_UNMAPPED", 0)
    assert m.stats.guest_insns == 2


def test_run_until_the_last_address() -> None:
    from tcg2wasm import Machine

    for engine in ("interp", "wasm"):
        m = Machine(engine=engine, hot_threshold=1)
        m.mem_map(0xFFFFFFFFFFFFF000, 0x1000, "rwx")
        m.mem_write(0xFFFFFFFFFFFFFFF0, b"\x90" * 16)
        stop = m.run(0xFFFFFFFFFFFFFFF0, until=0xFFFFFFFFFFFFFFFF)
        assert (stop.kind, stop.pc, m.stats.guest_insns) == ("until", 0xFFFFFFFFFFFFFFFF, 15)


def test_run_from_a_non_canonical_address_faults() -> None:
    from tcg2wasm import Machine

    for begin in (1 << 63, (1 << 63) + 1, 1 << 47):
        stop = Machine(engine="interp").run(begin, count=1)
        assert stop.kind == "fault", (hex(begin), stop)


def test_run_count_out_of_range() -> None:
    """run(count=2**64) was accepted, ran no instruction and reported 2^64 guest instructions."""
    from tcg2wasm import Machine

    m = Machine(engine="interp")
    m.mem_map(0x10000, 0x1000, "rwx")
    m.mem_write(0x10000, b"\x90" * 16)
    with pytest.raises((ValueError, TypeError), match="count"):
        m.run(0x10000, count=2**64)


def test_hot_threshold_of_the_wrong_type() -> None:
    """Machine(hot_threshold='x') raised a bare TypeError ("'>' not supported...") from deep inside."""
    from tcg2wasm import Machine

    with pytest.raises((ValueError, TypeError), match="hot_threshold"):
        Machine(hot_threshold="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["interp", "wasm"])
def test_fallback_exceptions_do_not_become_double_faults(engine: str) -> None:
    """QEMU kept the exception a fallback instruction raised, so the next #GP was a double fault (interrupt 8)
    and the one after ran on (found by tcg2wasm fuzz blobs, seed 42000553: xrstor64 [rax] with a bad header);
    the x87 stack, which only Unicorn holds, survives the reset."""
    import struct

    from tcg2wasm import Machine

    m = Machine(engine=engine)
    m.mem_map(0x10000, 0x1000, "rx")
    m.mem_map(0x20000, 0x1000, "rw")
    m.mem_write(0x20000, b"\xff" * 0x1000)
    m.mem_write(0x10000, bytes.fromhex("d9eb480fae28f4"))  # fldpi; xrstor64 [rax]; hlt
    m.mem_write(0x10100, bytes.fromhex("dd1c2500010200f4"))  # fstp qword [0x20100]; hlt
    stops = []
    for _ in range(3):
        m.reg_write("rax", 0x20000)
        stops.append(m.run(0x10000, count=3))
    assert [(s.kind, s.fault, s.pc) for s in stops] == [("fault", "GP", 0x10002)] * 3
    assert m.run(0x10100, count=2).kind == "hlt"
    assert struct.unpack("<d", m.mem_read(0x20100, 8))[0] == 3.141592653589793


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
