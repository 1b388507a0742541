"""The PNG: seconds per workload per runner (log scale) and the speed ratios against Unicorn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .measure import LABELS
from .report import Row

COLORS = {"native": "#444444", "qemu": "#8c6bb1", "unicorn": "#e6550d", "wasm-cold": "#9ecae1",
          "wasm-warm": "#3182bd"}
if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.axes import Axes

RATIO_TICKS = (0.01, 0.03, 0.1, 0.3, 1, 3, 5, 10, 30, 100, 300)
RATIO_SERIES = (("unicorn", "wasm-cold", "unicorn / wasm cold"), ("unicorn", "wasm-warm", "unicorn / wasm warm"))


def _import_matplotlib() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def _times_panel(ax: Axes, rows: list[Row]) -> None:
    runners = [r for r in COLORS if any(r in row.cells for row in rows)]
    height = 0.8 / max(len(runners), 1)
    for k, runner in enumerate(runners):
        ys, xs, timed_out = [], [], []
        for i, row in enumerate(rows):
            if (cell := row.cells.get(runner)) is not None:
                ys.append(i + (k - (len(runners) - 1) / 2) * height)
                xs.append(max(cell.seconds, 1e-3))
                timed_out.append(cell.timed_out or not cell.ok)
        bars = ax.barh(ys, xs, height=height, color=COLORS[runner], label=LABELS[runner])
        for bar, flagged in zip(bars, timed_out, strict=True):
            if flagged:  # a timeout (a lower bound) or a mismatch: hatched
                bar.set_hatch("xx")
                bar.set_edgecolor("red")
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [row.name for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("seconds, whole process (log); hatched: timeout or mismatch")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(runners), frameon=False)
    ax.grid(axis="x", which="both", alpha=0.3)


def _ratios_panel(ax: Axes, rows: list[Row]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for k, (num, den, label) in enumerate(RATIO_SERIES):
        ys, xs = [], []
        for i, row in enumerate(rows):
            if (ratio := row.ratio(num, den)) is not None:
                ys.append(i + (k - 0.5) * 0.35)
                xs.append(ratio.value)
        ax.barh(ys, xs, height=0.35, color=COLORS[den], label=label)
    for x, style in ((1, "-"), (3, "--"), (5, ":")):
        ax.axvline(x, color="black", linestyle=style, linewidth=0.8)
    ax.set_xscale("log")
    low = min([0.5, *(bar.get_width() for bar in ax.patches)]) / 1.5
    high = max([6, *(bar.get_width() for bar in ax.patches)]) * 1.5
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(FixedLocator([t for t in RATIO_TICKS if low <= t <= high]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(range(len(rows)))
    ax.tick_params(labelleft=False)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the rows of the times panel, top to bottom
    ax.set_xlabel("speed vs unicorn (log; > 1: wasm faster)")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    ax.grid(axis="x", which="both", alpha=0.3)


def write_plot(rows: list[Row], path: Path, title: str) -> Path:
    plt = _import_matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.42 * len(rows) + 1.9),
                                      gridspec_kw={"width_ratios": [3, 2]})
    _times_panel(left, rows)
    _ratios_panel(right, rows)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
