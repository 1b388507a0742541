"""The fuzzers in their fixed-seed mode, the native oracle, the comparison, the campaign machinery.

Each fuzzer runs a fixed range of seeds (the same cases on every run and machine) and must find
nothing; the campaign tests use the ``selftest`` kind to check that a crash, a hang and a Python
exception in a worker each become a failure at the right seed. Long campaigns are ``make fuzz``.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcg2wasm.cases import Case, MemoryRegion, Stop
from tcg2wasm.fuzz import known
from tcg2wasm.fuzz.campaign import run_local
from tcg2wasm.fuzz.compare import compare, undefined_flags
from tcg2wasm.fuzz.draw import HypothesisDraw
from tcg2wasm.fuzz.kinds import make_worker
from tcg2wasm.fuzz.minimize import minimize
from tcg2wasm.fuzz.streams import generate, stream_case

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="the native oracle runs guest code on an x86-64 host CPU")
EXAMPLES = int(os.environ.get("TCG2WASM_EXAMPLES", "20"))


def _case(code: str, regs: dict[str, int] | None = None, data: bytes = b"") -> Case:
    raw = bytes.fromhex(code)
    memory = [MemoryRegion(0x10000, 0x1000, "rx", raw + b"\xcc"), MemoryRegion(0x20000, 0x1000, "rw", data)]
    return Case("t", {"rip": 0x10000, "rflags": 0x202, **(regs or {})}, memory, Stop(until=0x10000 + len(raw)))


@pytest.fixture(scope="module")
def cpu():
    from tcg2wasm.fuzz.native import NativeRunner

    with NativeRunner() as runner:
        yield runner


@pytest.mark.parametrize(("code", "regs", "stop"), [
    ("4801d8", {"rax": 2, "rbx": 3}, {"kind": "until", "pc": 0x10003}),  # add rax, rbx
    ("488b042500000300", {}, {"kind": "fault", "fault": "READ_UNMAPPED", "address": 0x30000, "pc": 0x10000}),
    ("c70425000001000000000000", {}, {"kind": "fault", "fault": "WRITE_PROT", "address": 0x10000}),
    ("0f05", {"rax": 60}, {"kind": "syscall", "pc": 0x10002}),
    ("cc90", {}, {"kind": "interrupt", "vector": 3, "pc": 0x10001}),
    ("f4", {}, {"kind": "hlt", "pc": 0x10001}),
    ("48f7f1", {"rcx": 0}, {"kind": "fault", "fault": "DIVIDE", "pc": 0x10000}),
    ("0f0b", {}, {"kind": "fault", "fault": "INVALID_OPCODE", "pc": 0x10000}),
])
def test_native_oracle_stops(cpu, code: str, regs: dict[str, int], stop: dict) -> None:
    result = cpu.run(_case(code, regs))
    assert {k: result.stop[k] for k in stop} == stop, result.stop["message"]


def test_native_oracle_state(cpu) -> None:
    """Registers, flags, xmm, MXCSR in; registers, flags, memory out (paddd, mov to memory, add)."""
    case = _case("660ffec1" "48890425080002004801d8", {"rax": 5, "rbx": 7, "xmm0": 1 | 2 << 64, "xmm1": 3 << 64,
                                                     "mxcsr": 0x1f80 | 0x6000})
    result = cpu.run(case)
    assert result.stop["kind"] == "until"
    assert result.regs["rax"] == 12 and result.regs["xmm0"] == 1 | 5 << 64 and result.regs["mxcsr"] == 0x7f80
    assert dict(result.memory)[0x20000][8:16] == (5).to_bytes(8, "little")


def test_native_oracle_runs_a_guest_with_ac_set(cpu) -> None:
    """rflags.AC set, by the case or by popf: the runner died (its signal handler ran with AC and Linux's
    CR0.AM, and its unaligned copies raised #AC); pushf; pop rbx shows AC kept."""
    for regs, code in (({"rflags": 0x40202}, "9c5b"), ({"rax": 0x40202}, "509d9c5b")):
        result = cpu.run(_case(code, {"rsp": 0x21000, **regs}))
        assert result.stop["kind"] == "until" and result.regs["rbx"] & 0x40000, result.stop["message"]
    assert cpu.run(_case("4801d8", {"rax": 2, "rbx": 3})).regs["rax"] == 5  # the runner lives on


def test_native_oracle_count_mode(cpu) -> None:
    case = _case("48ffc048ffc048ffc0")
    case.stop = Stop(count=2)
    result = cpu.run(case)
    assert result.stop["kind"] == "count" and result.regs["rax"] == 2 and result.stats["guest_insns"] == 2


def test_undefined_flags_are_masked() -> None:
    """mul leaves SF ZF AF PF undefined; a following add defines them again."""
    assert undefined_flags(_case("48f7e1"), None) == 0x4 | 0x10 | 0x40 | 0x80
    assert undefined_flags(_case("48f7e14801d8"), None) == 0


def test_streams_fixed_seeds_match_the_cpu() -> None:
    worker = make_worker("streams", {"wasm_every": 4})
    try:
        results = [worker.run(seed) for seed in range(5 * EXAMPLES)]
    finally:
        worker.close()
    failures = [r["failure"]["detail"] for r in results if r.get("failure")]
    assert failures == []
    assert sum("interp:match" in r["labels"] for r in results) > len(results) // 2


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_streams_hypothesis_interp_matches_the_cpu(cpu, data: st.DataObject) -> None:
    """The same generator driven by hypothesis: a divergence would shrink to a small stream and state."""
    from tcg2wasm.fuzz.engines import MachineEngine

    case = generate(HypothesisDraw(data))
    native = cpu.run(case)
    if native.stop["kind"] == "timeout":
        return
    result = MachineEngine("interp").run(case)
    diffs = compare(case, native, result)
    assert not diffs or known.explain(case, native, result, diffs) is not None, [str(d) for d in diffs]


@pytest.mark.parametrize("kind", ["blobs", "cfg", "files"])
def test_other_kinds_fixed_seeds(kind: str) -> None:
    worker = make_worker(kind, {"wasm_every": 5})
    try:
        results = [worker.run(seed) for seed in range({"blobs": 5, "cfg": 1, "files": 1}[kind] * EXAMPLES)]
    finally:
        worker.close()
    assert [r["failure"] for r in results if r.get("failure")] == []


# campaign 44000000 (tcg2wasm fuzz files): traces damaged behind their checksum -- a register missing from the
# initial set, checkpoint registers of the wrong type, a checkpoint after the exit (46000648) -- were Python
# tracebacks in replay
FOUND = {"files": [44000133, 44000167, 44000554, 44000675, 46000648]}


@pytest.mark.parametrize(("kind", "seed"), [(k, s) for k, seeds in FOUND.items() for s in seeds])
def test_seeds_campaigns_found_pass_now(kind: str, seed: int) -> None:
    worker = make_worker(kind, {"wasm_every": 1})
    try:
        result = worker.run(seed)
    finally:
        worker.close()
    assert not result.get("failure"), result.get("failure")


def test_a_seed_is_the_same_case_everywhere() -> None:
    from tcg2wasm.cases import case_to_json

    assert case_to_json(stream_case(1234)) == case_to_json(stream_case(1234))
    assert case_to_json(stream_case(1234)) != case_to_json(stream_case(1235))


def test_minimizer_keeps_the_failure_and_shrinks() -> None:
    case = stream_case(77)

    def fails(c: Case) -> bool:  # "diverges" while rax is not the default: the minimizer must keep rax
        return c.regs.get("rax", 0) != 0

    small = minimize(case, fails)
    assert fails(small)
    assert sum(1 for v in small.regs.values() if v) < sum(1 for v in case.regs.values() if v)


def test_known_difference_explains_a_unicorn_error(cpu) -> None:
    """movaps from a misaligned address: #GP on the CPU, none in Unicorn (listed as unicorn-sse-alignment)."""
    from tcg2wasm.fuzz.engines import UnicornEngine

    case = _case("0f2804250100020090")
    native, other = cpu.run(case), UnicornEngine().run(case)
    diffs = compare(case, native, other)
    assert diffs and known.explain(case, native, other, diffs).id == "unicorn-sse-alignment"


def test_campaign_turns_crash_hang_and_exception_into_failures(tmp_path: Path) -> None:
    options = {"crash_at": [3], "hang_at": [6], "raise_at": [8]}
    summary = run_local("selftest", seconds=None, jobs=2, seed=0, out_dir=tmp_path, options=options,
                        max_cases=12, shard_size=4, case_timeout=5.0)
    statuses = {f["seed"]: f["status"] for f in summary.failures}
    assert statuses == {3: "crash", 6: "hang", 8: "traceback"}
    assert summary.cases == 12 and summary.to_json()["shards"] == [[0, 12]]
    assert json.loads((tmp_path / "summary.json").read_text())["failures"] == 3
    assert sorted(p.name for p in tmp_path.glob("selftest-*.json")) == [
        "selftest-3-crash.json", "selftest-6-hang.json", "selftest-8-traceback.json"]


def test_campaign_streams_two_jobs(tmp_path: Path) -> None:
    summary = run_local("streams", seconds=None, jobs=2, seed=500, out_dir=None, options={"wasm_every": 10},
                        max_cases=40, shard_size=10)
    assert summary.cases == 40 and not summary.failures


def test_distributed_on_a_local_dask_cluster(tmp_path: Path) -> None:
    """The Dask mode on a LocalCluster of 2 workers: the same seeds give the same labels as local jobs."""
    pytest.importorskip("distributed")
    from tcg2wasm.fuzz.distributed import run_dask

    common = {"seconds": None, "seed": 900, "options": {"wasm_every": 5}, "max_cases": 30, "shard_size": 10}
    dask = run_dask("streams", local_workers=2, out_dir=tmp_path, **common)
    local = run_local("streams", jobs=1, out_dir=None, **common)
    assert dask.cases == local.cases == 30
    assert dask.labels == local.labels and dask.to_json()["shards"] == [[900, 930]]
    assert (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("engine", ["wasm", "interp", "unicorn"])
@pytest.mark.parametrize("text", [
    '{"name": "big", "initial": {"regs": {"rip": 65536}, "memory": [{"addr": 65536, "size": 68719476736, '
    '"perms": "rwx", "data": "90f4"}]}, "stop": {"count": 5}}',
    "[" * 100_000 + "]" * 100_000,
], ids=["64GiB-mapping", "nested-100000-deep"])
def test_bad_case_files_give_one_line(tmp_path: Path, engine: str, text: str) -> None:
    """Found by ``tcg2wasm fuzz files`` (issue 14): these were Python tracebacks with exit 1."""
    from tcg2wasm.fuzz.files import judge, run_cli

    path = tmp_path / "damaged.json"
    path.write_text(text)
    code, stderr = run_cli(["exec", "--engine", engine, str(path)])
    assert code == 2 and judge(code, stderr, path) == [], stderr


def test_known_differences_are_documented() -> None:
    """docs/testing.md lists every known difference the comparison accepts, with its reference."""
    from tcg2wasm.fuzz import known

    text = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text()
    missing = [k.id for k in known.ALL if f"| `{k.id}` |" not in text]
    assert not missing, f"not in docs/testing.md: {missing}"
