"""Exceptions raised by the tcg2wasm API.

A *guest* fault (the translated program touching unmapped memory, dividing by
zero...) is not an exception: ``Machine.run`` returns a ``StopReason`` with
``kind="fault"``. These exceptions report misuse of the API by the host.
"""

from __future__ import annotations


class Tcg2WasmError(Exception):
    """Base class of every error tcg2wasm raises on purpose."""


class GuestMemoryError(Tcg2WasmError, ValueError):
    """A bad host request on guest memory (mem_map/unmap/protect/read/write); the message names the address."""


class RegisterError(Tcg2WasmError, ValueError):
    """An unknown register name or a value that does not fit the register."""


class CaseError(Tcg2WasmError, ValueError):
    """A malformed case file; the message names the file and the field."""


class TranslationError(Tcg2WasmError, RuntimeError):
    """Translated code could not be produced or installed (names the guest pc)."""
