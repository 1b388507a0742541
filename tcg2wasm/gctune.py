"""Garbage-collector settings for the command-line tools (not applied to library users).

Translation makes many small objects that live as long as the translation caches: TBs,
ops, prepared interpreter forms. With the default thresholds the collector runs every 700
allocations and rescans those growing caches each time. A larger first threshold, and
``gc.freeze()`` of everything that exists once the modules are imported, cut that cost
(``tcg2wasm run /bin/busybox sort``: about 10 % of the wall time).
"""

from __future__ import annotations

import gc
import os

#: Set (to anything) to keep Python's default collector settings, e.g. to measure them.
KEEP_DEFAULTS_ENV = "TCG2WASM_GC_DEFAULTS"


def tune_for_commands() -> None:
    if os.environ.get(KEEP_DEFAULTS_ENV):
        return
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
