"""``python -m tcg2wasm.trace record|replay|trace-summary ...``: the same as ``tcg2wasm record ...``."""

from tcg2wasm.cli import entry

entry()
