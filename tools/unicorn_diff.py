#!/usr/bin/env python3
"""Run a Unicorn script under ``unicorn`` and under ``tcg2wasm.unicorn`` (only its imports changed); diff the output.

Every ``from unicorn...`` / ``import unicorn...`` line of the script is rewritten to
name ``tcg2wasm.unicorn`` instead, nothing else. Exit 0 when both runs print the
same (stdout, and the type and text of an uncaught exception), 1 with a unified
diff otherwise, 2 for a script that cannot be read.

Usage: tools/unicorn_diff.py SCRIPT.py [SCRIPT.py ...]
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from unicorn_compare import run_script  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    status = 0
    for name in argv:
        path = Path(name)
        try:
            source = path.read_text()
        except OSError as e:
            print(f"unicorn_diff: {name}: {e.strerror}", file=sys.stderr)
            return 2
        want = run_script(source, name, tcg2wasm=False)
        got = run_script(source, name, tcg2wasm=True)
        if want == got:
            print(f"{name}: same output ({len(want.splitlines())} lines)")
            continue
        status = 1
        sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "unicorn",
                                                   "tcg2wasm.unicorn"))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
