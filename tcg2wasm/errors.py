"""Exceptions raised by the tcg2wasm API.

A *guest* fault (the translated program touching unmapped memory, dividing by
zero...) is not an exception: ``Machine.run`` returns a ``StopReason`` with
``kind="fault"``. These exceptions report misuse of the API by the host.
"""

from __future__ import annotations

from tcg2wasm.abi import Excp


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


class GuestFault(Exception):
    """A guest access or instruction faulted (raised by guest memory and the interpreter, caught by the runtime).

    Not an API error: the runtime turns it into a ``fault`` stop. ``kind`` is the ``Excp`` kind and
    ``addr`` the faulting data address (memory faults) or 0.
    """

    def __init__(self, kind: Excp, addr: int) -> None:
        super().__init__(f"{kind.name} at 0x{addr:x}")
        self.kind = kind
        self.addr = addr
