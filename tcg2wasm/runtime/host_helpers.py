"""The host functions every region module imports (``abi.HOST_IMPORTS``): slow memory paths, 128-bit division, x87.

Translated code calls them only off its fast paths: a soft-TLB miss or a
page-crossing access, a store into a page holding translated code, a division
whose dividend does not fit 64 bits. A fault is reported through the state
block (``fault_kind``, ``fault_addr``, ``exit_pending``), which the caller
checks right after the call.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from tcg2wasm.abi import X87_OUTPUTS
from tcg2wasm.cpu_state import MASK64
from tcg2wasm.errors import GuestFault
from tcg2wasm.ir.opdef import load_extend, memop_for_write, memop_size, two_output_values
from tcg2wasm.ir.ops_x87 import x87_host_call
from tcg2wasm.runtime.memory import GuestMemory
from tcg2wasm.runtime.stops import Stats
from tcg2wasm.runtime.wasm_runtime import WasmRuntime

__all__ = ["HostHelpers"]


class HostHelpers:
    """``ld_slow``, ``st_slow`` and ``div128`` over one guest memory and state block."""

    def __init__(self, rt: WasmRuntime, memory: GuestMemory, stats: Stats) -> None:
        self._rt = rt
        self._memory = memory
        self._stats = stats

    def install(self) -> None:
        """Define the helpers in the runtime's linker (and build the dispatcher that links them)."""
        self._rt.define_host_imports({name: _weak_method(fn) for name, fn in (
            ("ld_slow", self.ld_slow), ("st_slow", self.st_slow), ("div128", self.div128), ("x87", self.x87))})

    def ld_slow(self, addr: int, memop: int) -> int:
        self._stats.host_calls += 1
        try:
            size = memop_size(memop)
            raw = self._memory.load_for_write(addr, size) if memop_for_write(memop) else self._memory.load(addr, size)
        except GuestFault as f:
            self._raise_pending(f)
            return 0
        return load_extend(raw, memop)

    def st_slow(self, addr: int, value: int, memop: int) -> None:
        self._stats.host_calls += 1
        try:
            self._memory.store(addr, memop_size(memop), value)
        except GuestFault as f:
            self._raise_pending(f)

    def div128(self, nl: int, nh: int, d: int, is_signed: int) -> int:
        """Quotient of (nh:nl) / d; the remainder goes to ``state.scratch`` (the caller checked d and the range)."""
        self._stats.host_calls += 1
        quotient, remainder = two_output_values("divs2_i64" if is_signed else "divu2_i64", [nl, nh, d])
        self._rt.state_write("scratch", remainder & MASK64)
        return quotient

    def x87(self, code: int, *args: int) -> int:
        """An x87 op (``ir.ops_x87``): its first output; the others go to ``state.x87_out1``..."""
        first, *rest = x87_host_call(code, args)
        for field, value in zip(X87_OUTPUTS, rest, strict=False):
            self._rt.state_write(field, value)
        return first

    def _raise_pending(self, fault: GuestFault) -> None:
        self._rt.state_write("fault_kind", int(fault.kind))
        self._rt.state_write("fault_addr", fault.addr)
        self._rt.state_write("exit_pending", 1)


def _weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A host helper that does not keep its owner alive.

    wasmtime keeps the Python callables of host functions alive as long as the store,
    and the store belongs to the machine: a strong reference from the helper would make a
    cycle that the garbage collector cannot see through, and every machine (with its 4 GiB
    reservation) would leak.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: int) -> Any:
        return ref()(*args)  # type: ignore[misc]

    return call
