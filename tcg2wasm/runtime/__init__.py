"""The runtime: what runs translated code and what it calls back into.

- ``wasm_runtime``: wasmtime's engine, store, the one memory and table, the in-wasm dispatcher.
- ``memory``: guest memory (page table, host pages, soft TLB, code-page tracking).
- ``registers``: guest registers by name over the state block.
- ``translator``: lifting, optimizing and region building, cached by pc (the translation service).
- ``code_cache``: installed region functions, their table slots and jump-cache entries.
- ``tiering``: which tier runs a pc (interpreted while cold, compiled once hot).
- ``engines``: the engines behind one interface, ``enter(pc) -> (exit, pc)``: wasm and the IR interpreter.
- ``exits``: what the host does for each exit code (miss, fault, fallback, syscall, cpuid...).
- ``host_helpers``: the functions translated code imports (slow memory paths, 128-bit division).
- ``unicorn_cpu``: Unicorn over the same pages and state block: one instruction the lifter lacks
  (the fallback), or a slice of cold code.
- ``unicorn_tier``: cold code in Unicorn slices; samples and profiles that make code hot.

The package imports nothing itself, so that using one part does not import Unicorn for another.
"""
