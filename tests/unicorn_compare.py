"""Running one Unicorn script under ``unicorn`` or ``tcg2wasm.unicorn``: only its import lines change.

The script runs in this process (``exec`` of its text as ``__main__``), its stdout
captured; an exception that escapes it is part of the output (its type and text),
as a script run from the shell would show it.
"""

from __future__ import annotations

import contextlib
import io
import re

_FROM = re.compile(r"^(\s*)from\s+unicorn\b", re.MULTILINE)
_IMPORT_AS = re.compile(r"^(\s*)import\s+unicorn\b(?=[\w.]*\s+as\s)", re.MULTILINE)
_IMPORT = re.compile(r"^(\s*)import\s+unicorn\s*$", re.MULTILINE)


def switch_imports(source: str) -> str:
    """``from unicorn ...`` -> ``from tcg2wasm.unicorn ...``, ``import unicorn`` -> ``import tcg2wasm.unicorn as
    unicorn`` (``import unicorn.x86_const as X`` likewise); nothing else."""
    source = _FROM.sub(lambda m: f"{m.group(1)}from tcg2wasm.unicorn", source)
    source = _IMPORT_AS.sub(lambda m: f"{m.group(1)}import tcg2wasm.unicorn", source)
    return _IMPORT.sub(lambda m: f"{m.group(1)}import tcg2wasm.unicorn as unicorn", source)


def run_script(source: str, filename: str, *, tcg2wasm: bool) -> str:
    """The stdout of the script (under tcg2wasm.unicorn if asked), then an uncaught exception's type and text."""
    text = switch_imports(source) if tcg2wasm else source
    out = io.StringIO()
    namespace = {"__name__": "__main__", "__file__": filename}
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - the script under test
        except Exception as e:  # noqa: BLE001 - part of what the script prints
            print(f"uncaught {type(e).__name__}: {e}")
    return out.getvalue()
