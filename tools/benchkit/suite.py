"""One benchmark run: measure every workload, then the table, the checks, the JSON and the plot."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .checks import Check, acceptance
from .measure import Options, Progress, Run, Tools, WorkloadRuns, measure_workload
from .report import Row, make_row, notes, table, workload_json
from .workloads import Workload

JSON_NAME, TABLE_NAME, PLOT_NAME = "bench.json", "bench.md", "bench.png"
FORMAT = "tcg2wasm-bench/1"


@dataclass
class Outcome:
    runs: list[WorkloadRuns]
    rows: list[Row]
    checks: list[Check]
    text: str  # table, notes and checks as printed
    files: dict[str, Path]

    @property
    def mismatches(self) -> int:
        return sum(1 for row in self.rows for cell in row.cells.values() if not cell.ok and not cell.timed_out)


def load_line(host: dict) -> str:
    start, end = host.get("load_average_at_start"), host.get("load_average_at_end")
    if not start or not end:
        return ""
    return (f"Load average (1 min) {start[0]:.1f} at the start, {end[0]:.1f} at the end on {host.get('cpus')} CPUs; "
            "bench.json also has each run's CPU seconds (steadier than wall time on a shared machine).")


def report_text(rows: list[Row], checks: list[Check], options: Options, title: str, host: dict) -> str:
    lines = [title, "", table(rows, options.repeat), ""]
    lines += notes(rows, options.repeat, options.repeat_limit) + [line for line in [load_line(host)] if line]
    lines += ["", "Acceptance (issue 9):"] + [check.line() for check in checks]
    return "\n".join(lines) + "\n"


def document(host: dict, options: Options, quick: bool, runs: list[WorkloadRuns], rows: list[Row],
             checks: list[Check]) -> dict:
    """Every figure of the run, machine-readable."""
    return {
        "format": FORMAT,
        "host": host,
        "options": dataclasses.asdict(options) | {"quick": quick},
        "workloads": [workload_json(wr, row) for wr, row in zip(runs, rows, strict=True)],
        "checks": [dataclasses.asdict(check) for check in checks],
    }


def run_suite(workloads: list[Workload], tools: Tools, options: Options, out_dir: Path, host: dict,
              quick: bool = False, progress: Progress = lambda _: None, plot: bool = True) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="tcg2wasm-bench-") as scratch:
        runs = [measure_workload(w, tools, options, Path(scratch), progress) for w in workloads]
    return finish(runs, options, out_dir, host, quick, plot)


def load_document(path: Path) -> tuple[list[WorkloadRuns], Options, dict, bool]:
    """The runs, options and host of a bench.json written earlier (to render them again)."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        opts = doc["options"]
        options = Options(repeat=opts["repeat"], repeat_limit=opts["repeat_limit"], timeout=opts["timeout"],
                          runners=tuple(opts["runners"]))
        runs = [WorkloadRuns(Workload(w["name"], w["description"], tuple(w["argv"])),
                             {runner: [Run(**r) for r in rs] for runner, rs in w["runs"].items()},
                             dict(w.get("unavailable", {})))
                for w in doc["workloads"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"bench: {path}: cannot read it as benchmark results: {exc}") from None
    return runs, options, dict(doc.get("host", {})), bool(opts.get("quick"))


def finish(runs: list[WorkloadRuns], options: Options, out_dir: Path, host: dict, quick: bool,
           plot: bool) -> Outcome:
    """Rows, checks, text, JSON and plot from the runs."""
    rows = [make_row(wr) for wr in runs]
    checks = acceptance(rows)
    host = {"load_average_at_end": list(os.getloadavg())} | host  # kept when rendering an earlier run
    title = (f"tcg2wasm benchmark, {host.get('date')}, {host.get('cpu')} x{host.get('cpus')}, commit "
             f"{host.get('tcg2wasm_commit')}{' (QUICK: reduced sizes)' if quick else ''}")
    text = report_text(rows, checks, options, title, host)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / JSON_NAME, "table": out_dir / TABLE_NAME}
    files["json"].write_text(json.dumps(document(host, options, quick, runs, rows, checks), indent=1) + "\n")
    files["table"].write_text(text)
    if plot:
        from .plot import write_plot

        files["plot"] = write_plot(rows, out_dir / PLOT_NAME, title)
    return Outcome(runs, rows, checks, text, files)
