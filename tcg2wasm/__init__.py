"""tcg2wasm: an x86-64 to WebAssembly dynamic binary translator.

Quick start::

    from tcg2wasm import Machine
    m = Machine()
    m.mem_map(0x10000, 0x1000, "rx")
    m.mem_write(0x10000, code)
    stop = m.run(0x10000, until=0x10000 + len(code))
"""

from tcg2wasm._version import __version__
from tcg2wasm.errors import CaseError, GuestMemoryError, RegisterError, Tcg2WasmError, TranslationError
from tcg2wasm.machine import Machine, Stats, StopReason

__all__ = [
    "CaseError", "GuestMemoryError", "Machine", "RegisterError", "Stats", "StopReason", "Tcg2WasmError",
    "TranslationError", "__version__",
]
