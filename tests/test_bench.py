"""The benchmark harness (tools/benchkit) on fake tiny workloads: measurement, table, checks, JSON, plot.

The real benchmark (`make bench`) takes many minutes and stays out of `make test`; here the
"translator" and "qemu" are small scripts that run the workload themselves, so every path of
the harness runs in a few seconds: fresh and reused cache directories, --stats-json figures,
output comparison with native, timeouts, repeats and the per-child peak RSS.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402  (tools/bench.py)
from benchkit import checks, workloads  # noqa: E402
from benchkit.child import run_child  # noqa: E402
from benchkit.measure import Options, Tools  # noqa: E402
from benchkit.report import Cell, Row, table  # noqa: E402
from benchkit.suite import finish, load_document, run_suite  # noqa: E402

# A stand-in for `tcg2wasm run [--engine E] --stats-json F PROG ARGS`: writes statistics that show
# whether its cache directory was already there (warm) or new (cold), then becomes the program.
FAKE_TCG2WASM = """
import json, os, sys
args = sys.argv[1:]
assert args.pop(0) == "run"
engine = "wasm"
if args[0] == "--engine":
    engine = args[1]
    args = args[2:]
assert args.pop(0) == "--stats-json"
stats = args.pop(0)
cache = os.environ["TCG2WASM_CACHE_DIR"]
assert os.environ["XDG_CACHE_HOME"] == os.path.dirname(cache)
warm = os.path.isdir(cache)
os.makedirs(cache, exist_ok=True)
with open(stats, "w") as f:
    json.dump({"guest_insns": 2000000, "host_exits": 10 if warm else 30, "translate_seconds": 0.0 if warm else 0.5}, f)
os.environ["FAKE_ENGINE"] = engine + ("-warm" if warm else "")
os.execv(args[0], args)
"""

FAKE_QEMU = "import os, sys\nos.execv(sys.argv[1], sys.argv[1:])\n"

# The workload: prints its arguments and exits with status 3; misbehaves under the engine named
# by its first argument ("differs-unicorn": other output; "hangs-wasm": sleeps).
FAKE_PROGRAM = """
import os, sys, time
mode, engine = sys.argv[1], os.environ.get("FAKE_ENGINE", "none")
if mode == "hangs-wasm" and engine == "wasm":
    time.sleep(60)
print("result", mode, "unicorn" if mode == "differs-unicorn" and engine == "unicorn" else "")
sys.exit(3)
"""


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def fakes(tmp_path: Path) -> tuple[Tools, str]:
    tools = Tools(tcg2wasm=(_script(tmp_path / "tcg2wasm", FAKE_TCG2WASM),),
                  qemu=_script(tmp_path / "qemu", FAKE_QEMU))
    return tools, _script(tmp_path / "prog", FAKE_PROGRAM)


def _workload(program: str, mode: str) -> workloads.Workload:
    return workloads.Workload(mode, f"fake {mode}", (program, mode))


def test_suite_measures_compares_and_writes(tmp_path: Path, fakes: tuple[Tools, str]) -> None:
    tools, program = fakes
    loads = [_workload(program, "ok"), _workload(program, "differs-unicorn")]
    options = Options(repeat=2, timeout=20)
    outcome = run_suite(loads, tools, options, tmp_path / "out", {"date": "today"})
    ok, differs = outcome.rows
    assert set(ok.cells) == {"native", "qemu", "unicorn", "wasm-cold", "wasm-warm"}
    assert all(cell.ok and cell.samples == 2 for cell in ok.cells.values())
    # every cold run had a new cache directory, every warm run the one its cold run filled
    assert [r.stats["host_exits"] for r in outcome.runs[0].runs["wasm-cold"]] == [30, 30]
    assert [r.stats["host_exits"] for r in outcome.runs[0].runs["wasm-warm"]] == [10, 10]
    assert ok.stat("translate_seconds", "wasm-cold") == 0.5 and ok.stat("translate_seconds", "wasm-warm") == 0.0
    assert ok.exits_per_million("wasm-warm") == pytest.approx(5.0)
    assert ok.cells["native"].max_rss_kib > 1000  # a Python process: megabytes
    assert not differs.cells["unicorn"].ok and "stdout differs from native" in differs.cells["unicorn"].problems[0]
    assert differs.cells["wasm-warm"].ok and outcome.mismatches == 1
    assert "MISMATCH differs-unicorn / unicorn: run 1: stdout differs" in outcome.text
    assert "FAIL outputs identical to native" in outcome.text
    doc = json.loads(outcome.files["json"].read_text())
    assert doc["format"] == "tcg2wasm-bench/1" and doc["host"]["date"] == "today"
    assert [len(doc["workloads"][0]["runs"][r]) for r in ("native", "wasm-warm")] == [2, 2]
    assert doc["workloads"][0]["ratios"]["unicorn/wasm-warm"]["bound"] == ""
    assert outcome.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs, loaded_options, host, quick = load_document(outcome.files["json"])
    again = finish(runs, loaded_options, tmp_path / "again", host, quick, plot=False)
    assert again.text == outcome.text  # the JSON holds every figure the table is made from


def test_timeout_is_shown_not_dropped(tmp_path: Path, fakes: tuple[Tools, str]) -> None:
    tools, program = fakes
    options = Options(repeat=1, timeout=1.0, runners=("native", "unicorn", "wasm-cold"))
    outcome = run_suite([_workload(program, "hangs-wasm")], tools, options, tmp_path, {}, plot=False)
    (row,) = outcome.rows
    cold = row.cells["wasm-cold"]
    assert cold.timed_out and 1.0 <= cold.seconds < 10 and not cold.ok
    assert "TIMEOUT" in table(outcome.rows, 1) and "TIMEOUT hangs-wasm / wasm cold" in outcome.text
    ratio = row.ratio("unicorn", "wasm-cold")
    assert ratio is not None and ratio.bound == "<"
    assert outcome.mismatches == 0  # a timeout is not a wrong output...
    assert "FAIL outputs identical" in outcome.text  # ...but it never gave the native one either


def test_long_runs_are_not_repeated(tmp_path: Path, fakes: tuple[Tools, str]) -> None:
    tools, program = fakes
    options = Options(repeat=3, repeat_limit=1e-6, runners=("native", "wasm-cold", "wasm-warm"))
    outcome = run_suite([_workload(program, "ok")], tools, options, tmp_path, {}, plot=False)
    assert {r: c.samples for r, c in outcome.rows[0].cells.items()} == {"native": 1, "wasm-cold": 1, "wasm-warm": 1}
    assert "| ok | 0." in outcome.text and "*" in table(outcome.rows, 3)


def test_peak_rss_is_the_childs_own() -> None:
    big = run_child([sys.executable, "-c", "b = bytearray(256 << 20); b[::4096] = b'x' * (65536)"])
    parent = bytearray(64 << 20)
    parent[::4096] = b"y" * (len(parent) // 4096)  # this process now has > 64 MiB resident
    small = run_child(["/bin/true"])
    assert big.status == 0 and big.max_rss_kib > 250 << 10
    # neither the largest child so far (RUSAGE_CHILDREN: 256 MiB) nor this parent (a forked child's peak
    # starts at its parent's, and Linux keeps it across exec): the launcher's few MiB
    assert small.status == 0 and small.max_rss_kib < 32 << 10
    assert small.wall_seconds < 1.0 and small.cpu_seconds < 0.5


def _cell(runner: str, seconds: float, rss: int = 100 << 10, **stats: float) -> Cell:
    return Cell(runner, 1, seconds, seconds, rss, False, (), dict(stats))


def test_acceptance_thresholds() -> None:
    fast = Row("fast", "", {"unicorn": _cell("unicorn", 10), "wasm-cold": _cell("wasm-cold", 4.9),
                            "wasm-warm": _cell("wasm-warm", 1.9)}, {})
    short = Row("short", "", {"unicorn": _cell("unicorn", 1), "wasm-cold": _cell("wasm-cold", 1.01),
                              "wasm-warm": _cell("wasm-warm", 0.3, rss=201 << 10)}, {})
    probe = Row("hashprobe", "", {"unicorn": _cell("unicorn", 3), "wasm-warm": _cell(
        "wasm-warm", 0.5, guest_insns=10**7, host_exits=101)}, {})
    by_name = {c.name.split(" ")[0]: c for c in checks.acceptance([fast, short])}
    assert by_name["warm"].status == "PASS"  # 5.26x >= 5 where unicorn >= 2 s, 3.33x >= 3 elsewhere
    assert by_name["warm"].detail == "closest: fast 5.26x (needs 5x) (2 figures)"
    assert by_name["cold"].status == "FAIL" and "short 0.99x (needs 1x)" in by_name["cold"].detail
    assert "fast" not in by_name["cold"].detail  # 2.04x >= 2 where unicorn >= 2 s
    assert by_name["peak"].status == "FAIL" and "short 2.01x" in by_name["peak"].detail
    assert by_name["hello.glibc:"].status == "n/a"
    (probe_check,) = [c for c in checks.acceptance([probe]) if c.name.startswith("hashprobe")]
    assert probe_check.status == "FAIL" and "10.1 host exits per million" in probe_check.detail
    calls = Row("hashprobe", "", {"wasm-warm": _cell("wasm-warm", 1, guest_insns=10**7, host_exits=50,
                                                     host_calls=50)}, {})
    assert calls.exits_per_million() == 10.0  # calls from wasm into Python helpers count as exits too
    fast_only = {c.name.split(" ")[0]: c.status for c in checks.acceptance([fast])}
    assert fast_only["warm"] == "PASS" and fast_only["cold"] == "PASS"


def test_inputs_are_deterministic(tmp_path: Path) -> None:
    first = workloads.standard_workloads(quick=True, inputs=tmp_path / "a")
    second = workloads.standard_workloads(quick=True, inputs=tmp_path / "b")
    assert [w.name for w in first] == [w.name for w in second]
    for name in ("random-131072.bin", "lines-10000.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len((tmp_path / "a" / "lines-10000.txt").read_text().splitlines()) == 10_000
    assert {"hashprobe", "sqlite", "zstd-zlib", "bytecode", "calls", "nbody", "sort"} <= {w.name for w in first}


def test_command_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="no workload nope"):
        bench.main(["--only", "nope", "--list"])
    with pytest.raises(SystemExit, match="unknown runner"):
        bench.parse_runners("native,wasm-hot")
    assert bench.parse_runners("wasm-warm,unicorn") == ("native", "unicorn", "wasm-warm")
    assert bench.main(["--list", "--only", "sqlite"]) == 0 and "SQLite" in capsys.readouterr().out


def test_a_runner_a_workload_cannot_use_is_shown_as_na(tmp_path: Path, fakes: tuple[Tools, str]) -> None:
    tools, program = fakes
    load = workloads.Workload("ok", "fake", (program, "ok"), not_run=(("qemu", "qemu cannot load it"),))
    outcome = run_suite([load], tools, Options(repeat=1, runners=("native", "qemu")), tmp_path, {}, plot=False)
    assert "qemu" not in outcome.rows[0].cells and "n/a ok / qemu-x86_64: qemu cannot load it" in outcome.text
