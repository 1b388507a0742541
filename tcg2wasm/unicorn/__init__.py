"""Unicorn's Python API for x86-64 over tcg2wasm: ``from tcg2wasm.unicorn import *`` for ``from unicorn import *``.

As ``unicorn`` does, this exports ``Uc``, ``UcError``, ``UcContext``, the ``UC_*``
constants (``unicorn_const``), ``uc_version``/``version_bind``/``uc_arch_supported``/
``debug``/``ucsubclass`` and ``__version__``; the x86 constants are in
``tcg2wasm.unicorn.x86_const``. docs/unicorn-api.md lists what is supported.
"""

from __future__ import annotations

from tcg2wasm.unicorn import (  # as unicorn/__init__.py: every architecture's constant module
    arm64_const,
    arm_const,
    m68k_const,
    mips_const,
    ppc_const,
    riscv_const,
    s390x_const,
    sparc_const,
    tricore_const,
    x86_const,
)
from tcg2wasm.unicorn.context import UcContext
from tcg2wasm.unicorn.errors import UcError
from tcg2wasm.unicorn.uc import Uc
from tcg2wasm.unicorn.unicorn_const import *  # noqa: F403 - Unicorn's own namespace, as `from unicorn import *` gives
from tcg2wasm.unicorn.unicorn_const import UC_API_EXTRA, UC_API_MAJOR, UC_API_MINOR, UC_API_PATCH, UC_ARCH_X86

__version__ = f"{UC_API_MAJOR}.{UC_API_MINOR}.{UC_API_PATCH}"


def uc_version() -> tuple[int, int, int]:
    """(major, minor, combined) as Unicorn's ``uc_version``: the Unicorn version this API follows."""
    return UC_API_MAJOR, UC_API_MINOR, (UC_API_MAJOR << 24) + (UC_API_MINOR << 16) + (UC_API_PATCH << 8) + UC_API_EXTRA


version_bind = uc_version


def uc_arch_supported(atype: int) -> bool:
    return atype == UC_ARCH_X86


def debug() -> str:
    """Unicorn's build description: here, which architecture and what runs it."""
    return f"python-x86-tcg2wasm-{__version__}"


def ucsubclass(cls: type) -> type:
    """Unicorn's class decorator for Uc subclasses: a plain subclass works here."""
    return cls


__all__ = [name for name in dir() if name.startswith("UC_")] + [  # noqa: PLE0605
    "Uc", "UcContext", "UcError", "__version__", "debug", "uc_arch_supported", "uc_version", "ucsubclass",
    "version_bind", "x86_const", "arm_const", "arm64_const", "m68k_const", "mips_const", "ppc_const", "riscv_const",
    "s390x_const", "sparc_const", "tricore_const",
]
