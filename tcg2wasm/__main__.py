"""``python -m tcg2wasm``: the same as the ``tcg2wasm`` command."""

from tcg2wasm.cli import entry

entry()
