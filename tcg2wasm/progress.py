"""Progress bars for long commands (record, replay): tqdm on stderr, only when stderr is a terminal.

A bar never goes to a pipe or a file, so logs and test output stay clean; ``--no-progress``
turns it off on a terminal too.
"""

from __future__ import annotations

import sys
from typing import Any


def wanted(no_progress: bool = False) -> bool:
    """Whether a command should draw a bar: stderr is a terminal and the user did not say no."""
    return not no_progress and sys.stderr.isatty()


def bar(desc: str, total: int | None = None, *, enabled: bool, unit: str = "insn") -> Any:
    """A tqdm bar counting ``unit`` (total None: a counter with a rate); a silent one when not enabled."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not enabled, leave=False,
                file=sys.stderr, mininterval=0.25, dynamic_ncols=True)


def advance_to(progress: Any, done: int) -> None:
    """Move a bar to the absolute count ``done`` (callers know totals so far, not increments)."""
    if done > progress.n:
        progress.update(done - progress.n)
