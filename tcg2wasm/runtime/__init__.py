"""The runtime: guest memory with a soft TLB, the wasmtime side with the in-wasm dispatcher, the Unicorn fallback."""

from tcg2wasm.runtime.fallback import UnicornFallback, unicorn_cpuid
from tcg2wasm.runtime.memory import BytearrayLinearMemory, GuestMemory, HostAllocator, LinearMemory
from tcg2wasm.runtime.wasm_runtime import DISPATCHER_WAT, WasmLinearMemory, WasmRuntime

__all__ = [
    "DISPATCHER_WAT", "BytearrayLinearMemory", "GuestMemory", "HostAllocator", "LinearMemory", "UnicornFallback",
    "WasmLinearMemory", "WasmRuntime", "unicorn_cpuid",
]
