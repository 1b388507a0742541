"""``tcg2wasm --version``: tcg2wasm's version and those of the libraries it runs on."""

from __future__ import annotations

import platform
from importlib import metadata

from tcg2wasm._version import __version__

#: (what it is, its distribution on PyPI)
LIBRARIES = (("wasmtime", "wasmtime"), ("binaryen", "binaryen-py"), ("unicorn", "unicorn"),
             ("iced-x86", "iced-x86"), ("pyelftools", "pyelftools"))


def version_text() -> str:
    """One line for tcg2wasm, one for Python and the libraries (a missing one says so)."""
    parts = []
    for name, dist in LIBRARIES:
        try:
            parts.append(f"{name} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"tcg2wasm {__version__}\nPython {platform.python_version()}; " + ", ".join(parts)
