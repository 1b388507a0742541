"""The bundled example programs: assembly sources (``NAME.S``) and their state cases (``NAME.json``).

They are package data, so an installed tcg2wasm has them too (``tcg2wasm demo`` runs them)::

    from tcg2wasm.examples import example_path
    from tcg2wasm.cases import load_case
    case = load_case(example_path("sieve"))
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent


def example_path(name: str) -> Path:
    """The case file of a bundled example (``sieve``, ``crc32``, ``bench_sieve``)."""
    path = EXAMPLES_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(example_names()) or "none"
        raise FileNotFoundError(f"{path}: no bundled example {name!r} (bundled: {known})")
    return path


def example_names() -> list[str]:
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.json"))
