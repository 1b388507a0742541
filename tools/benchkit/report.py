"""From runs to figures: medians per runner, ratios, the markdown table and the JSON document."""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field

from .measure import LABELS, Run, WorkloadRuns

MIB = 1024


@dataclass(frozen=True)
class Cell:
    """One runner on one workload: medians over its runs."""

    runner: str
    samples: int
    seconds: float  # median wall seconds; the timeout when a run timed out (a lower bound then)
    cpu_seconds: float
    max_rss_kib: int
    timed_out: bool
    problems: tuple[str, ...]  # mismatches with native (and timeouts), one per run that had one
    stats: dict[str, float] = field(default_factory=dict)  # medians of the numeric --stats-json figures

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Ratio:
    """a / b; ``bound`` is "<" or ">" when a timeout makes it a bound, "" when exact."""

    value: float
    bound: str = ""

    def text(self) -> str:
        return f"{self.bound}{self.value:.2f}x" if self.value < 10 else f"{self.bound}{self.value:.1f}x"


NUMERIC_STATS = ("guest_insns", "host_exits", "host_calls", "translate_seconds", "fallback_insns", "blocks_translated",
                 "blocks_interpreted", "regions_translated")


def _stats_medians(runs: list[Run]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in NUMERIC_STATS:
        values = [r.stats[key] for r in runs if r.stats and isinstance(r.stats.get(key), int | float)]
        if values:
            out[key] = statistics.median(values)
    return out


def summarize(runner: str, runs: list[Run]) -> Cell:
    timed_out = any(r.timed_out for r in runs)
    seconds = max(r.wall_seconds for r in runs) if timed_out else statistics.median(r.wall_seconds for r in runs)
    return Cell(runner=runner, samples=len(runs), seconds=seconds,
                cpu_seconds=statistics.median(r.cpu_seconds for r in runs),
                max_rss_kib=int(statistics.median(r.max_rss_kib for r in runs)), timed_out=timed_out,
                problems=tuple(f"run {r.repeat + 1}: {r.problem}" for r in runs if r.problem),
                stats=_stats_medians(runs))


@dataclass(frozen=True)
class Row:
    """Everything the table shows about one workload."""

    name: str
    description: str
    cells: dict[str, Cell]
    unavailable: dict[str, str]

    def ratio(self, num: str, den: str) -> Ratio | None:
        a, b = self.cells.get(num), self.cells.get(den)
        if a is None or b is None or (a.timed_out and b.timed_out) or b.seconds <= 0:
            return None
        bound = ">" if a.timed_out else "<" if b.timed_out else ""
        return Ratio(a.seconds / b.seconds, bound)

    def stat(self, key: str, runner: str) -> float | None:
        cell = self.cells.get(runner)
        return cell.stats.get(key) if cell else None

    def wasm_stat(self, key: str) -> float | None:
        """A figure of the warm run, else of the cold one (guest instructions are the same in both)."""
        warm = self.stat(key, "wasm-warm")
        return warm if warm is not None else self.stat(key, "wasm-cold")

    def exits_per_million(self, runner: str = "wasm-warm") -> float | None:
        """Times wasm left for the host per million guest instructions: ``host_exits`` (returns of the
        dispatcher to Python) plus ``host_calls`` (calls from wasm into Python helpers, such as TLB
        fills) where the translator reports them (``host_calls`` is in --stats-json since main's 6dfb84b)."""
        insns, exits = self.stat("guest_insns", runner), self.stat("host_exits", runner)
        if not insns or exits is None:
            return None
        return (exits + (self.stat("host_calls", runner) or 0)) / insns * 1e6


def make_row(wr: WorkloadRuns) -> Row:
    cells = {runner: summarize(runner, runs) for runner, runs in wr.runs.items() if runs}
    return Row(wr.workload.name, wr.workload.description, cells, dict(wr.unavailable))


# -- the table ----------------------------------------------------------------------------------------

RATIOS = (("unicorn", "wasm-cold"), ("unicorn", "wasm-warm"), ("wasm-warm", "qemu"))
HEADER = ("workload", "native s", "qemu s", "unicorn s", "wasm cold s", "wasm warm s", "unicorn/cold",
          "unicorn/warm", "warm/qemu", "guest insns", "exits/M insns", "translate s cold/warm",
          "peak RSS MiB unicorn/cold/warm")


def seconds_text(s: float) -> str:
    return f"{s:.3f}" if s < 1 else f"{s:.2f}" if s < 10 else f"{s:.1f}" if s < 100 else f"{s:.0f}"


def cell_text(cell: Cell | None, repeat: int) -> str:
    if cell is None:
        return "–"
    if cell.timed_out:
        return f"> {seconds_text(cell.seconds)} TIMEOUT"
    text = seconds_text(cell.seconds) + ("*" if cell.samples < repeat else "")
    return text + (" MISMATCH" if not cell.ok else "")


def _opt(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _pair(row: Row, key: str, fmt: str) -> str:
    return "/".join(_opt(row.stat(key, r), fmt) for r in ("wasm-cold", "wasm-warm"))


def _rss(row: Row) -> str:
    return "/".join(f"{row.cells[r].max_rss_kib / MIB:.0f}" if r in row.cells else "–"
                    for r in ("unicorn", "wasm-cold", "wasm-warm"))


def row_cells(row: Row, repeat: int) -> list[str]:
    times = [cell_text(row.cells.get(r), repeat) for r in ("native", "qemu", "unicorn", "wasm-cold", "wasm-warm")]
    ratios = [r.text() if (r := row.ratio(a, b)) else "–" for a, b in RATIOS]
    insns = row.wasm_stat("guest_insns")
    exits = row.exits_per_million("wasm-warm")
    exits = row.exits_per_million("wasm-cold") if exits is None else exits
    return [row.name, *times, *ratios, _opt(insns, ",.0f"), _opt(exits, ",.1f"),
            _pair(row, "translate_seconds", ".2f"), _rss(row)]


def table(rows: list[Row], repeat: int) -> str:
    """The markdown table (it reads in a terminal and pastes into docs/performance.md)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(row_cells(row, repeat)) + " |" for row in rows]
    return "\n".join(lines)


def notes(rows: list[Row], options_repeat: int, repeat_limit: float) -> list[str]:
    """Lines under the table: what the marks mean, then every mismatch, timeout and missing runner."""
    out = [f"Seconds: wall time of the whole process, median of {options_repeat} run(s); "
           f"* = fewer runs (a run over {repeat_limit:g} s is not repeated). Ratios > 1: wasm faster "
           "(unicorn/...) or slower (warm/qemu). Insns, exits and translate s from `tcg2wasm run --stats-json`."]
    for row in rows:
        for runner, cell in row.cells.items():
            out += [f"MISMATCH {row.name} / {LABELS[runner]}: {p}" for p in cell.problems if "timed out" not in p]
            if cell.timed_out:
                out.append(f"TIMEOUT {row.name} / {LABELS[runner]}: killed after {seconds_text(cell.seconds)} s")
        out += [f"n/a {row.name} / {LABELS[runner]}: {why}" for runner, why in row.unavailable.items()]
    return out


# -- JSON ---------------------------------------------------------------------------------------------


def workload_json(wr: WorkloadRuns, row: Row) -> dict:
    ratios = {f"{a}/{b}": dataclasses.asdict(r) for a, b in RATIOS if (r := row.ratio(a, b))}
    ratios |= {f"{a}/{b}": dataclasses.asdict(r) for a, b in (("wasm-cold", "qemu"), ("wasm-warm", "native"))
               if (r := row.ratio(a, b))}
    return {
        "name": wr.workload.name,
        "description": wr.workload.description,
        "argv": list(wr.workload.argv),
        "summary": {runner: dataclasses.asdict(cell) for runner, cell in row.cells.items()},
        "ratios": ratios,
        "exits_per_million_insns": {r: row.exits_per_million(r) for r in ("wasm-cold", "wasm-warm")
                                    if r in row.cells},
        "unavailable": row.unavailable,
        "runs": {runner: [dataclasses.asdict(r) for r in runs] for runner, runs in wr.runs.items()},
    }
