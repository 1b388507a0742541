"""Issue 9's acceptance checks, evaluated on one run's rows and printed as PASS/FAIL lines.

A check over "every workload" covers the workloads of this run (``--only`` narrows it; the
line says how many). A timed-out wasm run fails the speed checks; a check whose workload or
runners are not in the run is "n/a", never a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .report import Row

LONG_UNICORN_SECONDS = 2.0
HASH_WORKLOAD = "hashprobe"
MAX_EXITS_PER_MILLION = 10.0  # one host exit per 100,000 guest instructions


@dataclass(frozen=True)
class Check:
    status: str  # "PASS", "FAIL" or "n/a"
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:4} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Figure:
    """A requirement on one workload, evaluated: ``margin`` >= 1 when met (figure / what it needs)."""

    margin: float
    text: str

    @property
    def met(self) -> bool:
        return self.margin >= 1


# A requirement on one row: None when it does not apply to it.
Requirement = Callable[[Row], Figure | None]


def speed_vs_unicorn(runner: str, least: float, least_long: float) -> Requirement:
    """unicorn seconds / ``runner`` seconds >= ``least`` (``least_long`` where Unicorn takes >= 2 s)."""

    def requirement(row: Row) -> Figure | None:
        ratio = row.ratio("unicorn", runner)
        if ratio is None:
            return None
        need = least_long if row.cells["unicorn"].seconds >= LONG_UNICORN_SECONDS else least
        margin = 0.0 if row.cells[runner].timed_out else ratio.value / need
        return Figure(margin, f"{row.name} {ratio.text()} (needs {need:g}x)")

    return requirement


def within_of(runner: str, other: str, factor: float) -> Requirement:
    """``runner`` seconds <= ``factor`` x ``other`` seconds."""

    def requirement(row: Row) -> Figure | None:
        ratio = row.ratio(runner, other)
        if ratio is None:
            return None
        margin = 0.0 if row.cells[runner].timed_out else factor / max(ratio.value, 1e-9)
        return Figure(margin, f"{row.name} {runner} {ratio.text()} the time of {other} (at most {factor:g}x)")

    return requirement


def rss_within(factor: float) -> Requirement:
    def requirement(row: Row) -> Figure | None:
        unicorn = row.cells.get("unicorn")
        wasm = [row.cells[r].max_rss_kib for r in ("wasm-cold", "wasm-warm") if r in row.cells]
        if unicorn is None or not wasm or unicorn.max_rss_kib <= 0:
            return None
        ratio = max(wasm) / unicorn.max_rss_kib
        return Figure(factor / ratio, f"{row.name} {ratio:.2f}x ({max(wasm) / 1024:.0f} MiB vs "
                      f"{unicorn.max_rss_kib / 1024:.0f} MiB)")

    return requirement


def few_exits(row: Row) -> Figure | None:
    per_million = [e for r in ("wasm-cold", "wasm-warm") if (e := row.exits_per_million(r)) is not None]
    if not per_million:
        return None
    worst = max(per_million)
    return Figure(MAX_EXITS_PER_MILLION / max(worst, 1e-9),
                  f"{row.name} {worst:,.1f} host exits per million insns (at most {MAX_EXITS_PER_MILLION:g})")


def outputs_match(row: Row) -> Figure | None:
    """A timed-out run fails this too: it never gave the native output."""
    bad = [f"{runner}{' (timed out)' if cell.timed_out else ''}" for runner, cell in row.cells.items() if not cell.ok]
    return Figure(0.0, f"{row.name}: {', '.join(bad)} differ") if bad else Figure(1.0, f"{row.name}: all match")


def outputs_check(rows: list[Row]) -> Check:
    name = f"outputs identical to native in every run ({len(rows)} workload(s))"
    figures = [f for row in rows if (f := outputs_match(row)) is not None]
    failed = [f.text for f in figures if not f.met]
    if not figures:
        return Check("n/a", name, "no workload ran")
    runs = sum(cell.samples for row in rows for cell in row.cells.values())
    return Check("FAIL", name, "; ".join(failed)) if failed else Check("PASS", name, f"{runs} runs, all match")


def evaluate(name: str, rows: list[Row], requirements: list[Requirement]) -> Check:
    figures = [f for row in rows for req in requirements if (f := req(row)) is not None]
    if not figures:
        return Check("n/a", name, "no workload of this run has the runs it needs")
    failed = [f.text for f in figures if not f.met]
    if failed:
        return Check("FAIL", name, "; ".join(failed))
    closest = min(figures, key=lambda f: f.margin)
    return Check("PASS", name, f"closest: {closest.text}" + (f" ({len(figures)} figures)" if len(figures) > 1 else ""))


def _named(rows: list[Row], name: str) -> list[Row]:
    return [row for row in rows if row.name == name]


def acceptance(rows: list[Row]) -> list[Check]:
    n = f"{len(rows)} workload(s)"
    return [
        outputs_check(rows),
        evaluate(f"warm >= 3x unicorn, >= 5x where unicorn >= 2 s ({n})", rows, [speed_vs_unicorn("wasm-warm", 3, 5)]),
        evaluate(f"cold never slower than unicorn, >= 2x where unicorn >= 2 s ({n})", rows,
                 [speed_vs_unicorn("wasm-cold", 1, 2)]),
        evaluate("hashprobe (random access): warm >= 3x unicorn, <= 1 host exit per 100,000 insns",
                 _named(rows, HASH_WORKLOAD), [speed_vs_unicorn("wasm-warm", 3, 3), few_exits]),
        evaluate("hello.glibc: wasm (cold and warm) no slower than unicorn", _named(rows, "hello.glibc"),
                 [within_of("wasm-cold", "unicorn", 1), within_of("wasm-warm", "unicorn", 1)]),
        evaluate("compute.musl: wasm (cold and warm) within 2x qemu-x86_64", _named(rows, "compute.musl"),
                 [within_of("wasm-cold", "qemu", 2), within_of("wasm-warm", "qemu", 2)]),
        evaluate(f"peak RSS of wasm (cold and warm) <= 2x unicorn ({n})", rows, [rss_within(2)]),
    ]
