"""The wasmtime side: engine, store, the shared memory and table, host imports and the dispatcher.

Every region module imports ``env.memory``, ``env.table`` and the functions of
``abi.REGION_IMPORTS`` through one ``wasmtime.Linker``: the memory slow paths
``ld_miss``/``st_miss``, exported by the runtime's own module (``memory_wat.py``,
which calls the Python helpers ``ld_slow``/``st_slow`` only when it must), and
the Python helper ``div128``. The dispatcher, in the same hand-written module
(WAT below), loops over the jump cache and
``call_indirect``s into region functions, so that going from one region to
another never returns to Python; only an exit code other than
``Exit.CONTINUE`` (miss, fault, syscall, fallback, stop, icount...) does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Callable

import wasmtime

from tcg2wasm import abi
from tcg2wasm.errors import TranslationError
from tcg2wasm.ir.ops import MASK64, Exit
from tcg2wasm.runtime.memory_wat import MEMORY_HELPER_IMPORTS_WAT, MEMORY_HELPERS_WAT

INITIAL_TABLE_SLOTS = 64
#: Set to 0 to turn off wasmtime's on-disk cache of compiled modules (see ``_engine_config``).
CACHE_ENV = "TCG2WASM_WASM_CACHE"
_U64 = struct.Struct("<Q")


def _i64(value: int) -> int:
    """Unsigned 64-bit to the signed form wasmtime passes as i64."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


DISPATCHER_WAT = f"""
(module
  (import "{abi.IMPORT_MODULE}" "{abi.IMPORT_MEMORY}" (memory 1 {abi.MAX_WASM_PAGES}))
  (import "{abi.IMPORT_MODULE}" "{abi.IMPORT_TABLE}" (table 1 funcref))
""" + MEMORY_HELPER_IMPORTS_WAT + f"""
  (type $region (func (result i32)))
  ;; Run regions until one returns a code other than CONTINUE, rip reaches stop_pc,
  ;; or the jump cache has no translation for rip.
  (func (export "dispatch") (result i32)
    (local $pc i64) (local $slot i32) (local $code i32)
    (loop $next
      (local.set $pc (i64.load (i32.const {abi.STATE_OFFSET["rip"]})))
      (if (i64.eq (local.get $pc) (i64.load (i32.const {abi.STATE_OFFSET["stop_pc"]})))
        (then (return (i32.const {int(Exit.STOP)}))))
      ;; slot = JC_BASE + ((pc ^ (pc >> 12)) & (JC_ENTRIES - 1)) * JC_ENTRY_SIZE
      (local.set $slot
        (i32.add (i32.const {abi.JC_BASE})
          (i32.shl
            (i32.and (i32.wrap_i64 (i64.xor (local.get $pc) (i64.shr_u (local.get $pc) (i64.const 12))))
                     (i32.const {abi.JC_ENTRIES - 1}))
            (i32.const {abi.JC_ENTRY_SIZE.bit_length() - 1}))))
      (if (i64.ne (i64.load (local.get $slot)) (local.get $pc))
        (then (return (i32.const {int(Exit.MISS)}))))
      (local.set $code (call_indirect (type $region) (i32.load offset=8 (local.get $slot))))
      (br_if $next (i32.eqz (local.get $code)))
    )
    (local.get $code))
  ;; Table slot 0, the slot of the empty jump-cache entries: their tag JC_INVALID_PC (2^64-1) is a pc a
  ;; block may start at, so a lookup of that pc is a miss, not a call of nothing (found by issue 14's fuzzing).
  (func (export "jc_empty") (result i32)
    (i32.const {int(Exit.MISS)}))
""" + MEMORY_HELPERS_WAT + ")\n"
assert abi.JC_ENTRY_SIZE & (abi.JC_ENTRY_SIZE - 1) == 0 and int(Exit.CONTINUE) == 0


def i32_caller(store: wasmtime.Store, func: wasmtime.Func) -> Callable[[], int]:
    """A Python callable for a wasm function of type ``() -> i32``, made for the per-exit path.

    ``Func.__call__`` asks wasmtime for the function's type, converts and boxes every value
    and allocates its arrays on each call: ~9 µs of Python per call, and the dispatcher is
    called at every host exit. This calls ``wasmtime_func_call`` directly with arrays made
    once. Traps and errors are raised as ``Func.__call__`` raises them (an exception a host
    function raised first, then the trap). Falls back to ``Func.__call__`` when this wasmtime
    binding lacks the pieces (they are not public API; constraints.txt pins the version).
    """
    try:
        from wasmtime import _bindings as ffi
        from wasmtime._func import maybe_raise_last_exn
        from wasmtime._trap import Trap
    except ImportError:
        return lambda: func(store)
    if [str(t) for t in func.type(store).results] != ["i32"] or func.type(store).params:
        raise TranslationError("i32_caller: the function must take nothing and return one i32")
    context = store._context()  # noqa: SLF001 - fixed for the store's lifetime
    func_ref = ctypes.byref(func._func)  # noqa: SLF001
    results = (ffi.wasmtime_val_t * 1)()
    call = ffi.wasmtime_func_call

    def call_i32() -> int:
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = call(context, func_ref, None, 0, results, 1, ctypes.byref(trap))
        if error:
            maybe_raise_last_exn()
            raise wasmtime.WasmtimeError._from_ptr(error)  # noqa: SLF001
        if trap:
            trap_obj = Trap._from_ptr(trap)  # noqa: SLF001
            maybe_raise_last_exn()
            raise trap_obj
        return results[0].of.i32

    return call_i32


_MAX_COPY = 1 << 30  # bytes per ctypes copy

class WasmLinearMemory:
    """Byte access to a wasmtime Memory through its host address (bounds-checked in Python)."""

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self._store = store
        self._memory = memory
        self._refresh()

    def _refresh(self) -> None:
        self.base = ctypes.addressof(self._memory.data_ptr(self._store).contents)
        self._len = self._memory.data_len(self._store)

    def size(self) -> int:
        return self._len

    def _check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self._len:
            raise IndexError(f"linear memory access {offset:#x}+{size:#x} outside {self._len:#x} bytes")

    def read(self, offset: int, size: int) -> bytes:
        self._check(offset, size)
        if size <= _MAX_COPY:
            return ctypes.string_at(self.base + offset, size)
        # string_at takes a C int: 2 GiB and more was a SystemError (a 2 GiB mapping read back: fuzz files)
        return b"".join(ctypes.string_at(self.base + pos, min(_MAX_COPY, offset + size - pos))
                        for pos in range(offset, offset + size, _MAX_COPY))

    def write(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        ctypes.memmove(self.base + offset, bytes(data), len(data))

    def u64_array(self, offset: int, count: int) -> ctypes.Array:
        """A live ctypes view of ``count`` u64 at ``offset`` (valid for good: the memory never moves)."""
        self._check(offset, 8 * count)
        return (ctypes.c_uint64 * count).from_address(self.base + offset)

    def read_u64(self, offset: int) -> int:
        self._check(offset, 8)
        return ctypes.c_uint64.from_address(self.base + offset).value

    def write_u64(self, offset: int, value: int) -> None:
        self._check(offset, 8)
        ctypes.c_uint64.from_address(self.base + offset).value = value & MASK64

    def ensure_size(self, nbytes: int) -> None:
        if nbytes <= self._len:
            return
        pages = -(-nbytes // abi.WASM_PAGE) - self._len // abi.WASM_PAGE
        self._memory.grow(self._store, pages)
        self._refresh()


def _engine_config() -> wasmtime.Config:
    """The engine's features, and wasmtime's compilation cache unless ``TCG2WASM_WASM_CACHE=0``.

    Cranelift compiling a region costs milliseconds; the same region bytes come back every
    time a program (or a trace) runs again, and wasmtime's cache (keyed by module bytes,
    engine settings and wasmtime version; in ``~/.cache/wasmtime`` by default) turns that
    compile into a file read. Where the cache cannot be set up, modules are compiled each time.
    """
    config = wasmtime.Config()
    config.wasm_tail_call = True
    config.wasm_simd = True
    config.wasm_bulk_memory = True
    config.memory_may_move = False  # Unicorn keeps pointers into the memory
    if os.environ.get(CACHE_ENV, "1") != "0":
        with contextlib.suppress(wasmtime.WasmtimeError):  # no usable cache directory
            config.cache = True
    return config


class WasmRuntime:
    """One engine, store, memory, table and linker; installs region modules in table slots."""

    def __init__(self, initial_bytes: int = abi.GUEST_BASE + 0x10_0000) -> None:
        self.engine = wasmtime.Engine(_engine_config())
        self.store = wasmtime.Store(self.engine)
        min_pages = -(-initial_bytes // abi.WASM_PAGE)
        self.memory = wasmtime.Memory(
            self.store, wasmtime.MemoryType(wasmtime.Limits(min_pages, abi.MAX_WASM_PAGES)))
        self.linear = WasmLinearMemory(self.store, self.memory)
        self.table = wasmtime.Table(
            self.store, wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(INITIAL_TABLE_SLOTS, None)),
            None)
        self._free_slots: list[int] = []
        # slot 0: the empty entries' "miss" (define_host_imports); freed slots are null, so that a stale
        # jump-cache entry traps instead of running code
        self._next_slot = 1
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define(self.store, abi.IMPORT_MODULE, abi.IMPORT_MEMORY, self.memory)
        self.linker.define(self.store, abi.IMPORT_MODULE, abi.IMPORT_TABLE, self.table)
        self._dispatch: Callable[[], int] | None = None
        self.modules_instantiated = 0

    # -- host imports -----------------------------------------------------------
    def define_host_imports(self, helpers: dict[str, Callable[..., int | None]]) -> None:
        """Define every ``abi.HOST_IMPORTS`` helper (Python callables on unsigned ints) under "env"."""
        missing = sorted(set(abi.HOST_IMPORTS) - set(helpers))
        if missing:
            raise TranslationError(f"host imports not provided: {missing}")
        for name, (params, results) in abi.HOST_IMPORTS.items():
            ty = wasmtime.FuncType([_valtype(p) for p in params], [_valtype(r) for r in results])
            func = wasmtime.Func(self.store, ty, _wrap_helper(helpers[name], params, results))
            self.linker.define(self.store, abi.IMPORT_MODULE, name, func)
        dispatcher = wasmtime.Module(self.engine, DISPATCHER_WAT)
        instance = self.linker.instantiate(self.store, dispatcher)
        exports = instance.exports(self.store)
        for name in abi.REGION_IMPORTS.keys() - abi.HOST_IMPORTS.keys():  # the wasm slow paths (memory_wat.py)
            self.linker.define(self.store, abi.IMPORT_MODULE, name, exports[name])
        dispatch, empty = exports["dispatch"], exports["jc_empty"]
        if not isinstance(dispatch, wasmtime.Func) or not isinstance(empty, wasmtime.Func):
            raise TranslationError("the dispatcher module exports no functions 'dispatch' and 'jc_empty'")
        self.table.set(self.store, 0, empty)
        self._dispatch = i32_caller(self.store, dispatch)

    def dispatch(self) -> int:
        """Run the in-wasm dispatcher loop; returns the Exit code that ended it."""
        if self._dispatch is None:
            raise TranslationError("dispatcher not ready: define_host_imports() first")
        return self._dispatch()

    # -- state block --------------------------------------------------------------
    def state_read(self, name: str) -> int:
        return self.linear.read_u64(abi.STATE_OFFSET[name])

    def state_write(self, name: str, value: int) -> None:
        self.linear.write_u64(abi.STATE_OFFSET[name], value)

    # -- regions and the table -----------------------------------------------------
    def instantiate_region(self, wasm: bytes) -> wasmtime.Func:
        """Compile and link one region module; returns its exported region function."""
        return self.instantiate_module(self.compile_module(wasm))

    def compile_module(self, wasm: bytes) -> wasmtime.Module:
        """Cranelift's compiled form of a region module (thread-safe: only the engine is used)."""
        try:
            return wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as e:
            raise TranslationError(f"cannot compile region module: {e}") from e

    def deserialize_module(self, data: bytes) -> wasmtime.Module | None:
        """A module ``Module.serialize`` wrote with this engine's settings; None if wasmtime refuses it."""
        try:
            return wasmtime.Module.deserialize(self.engine, data)
        except wasmtime.WasmtimeError:
            return None

    def instantiate_module(self, module: wasmtime.Module) -> wasmtime.Func:
        """Link one compiled region module; returns its exported region function."""
        try:
            instance = self.linker.instantiate(self.store, module)
            func = instance.exports(self.store)[abi.REGION_EXPORT]
        except (wasmtime.WasmtimeError, KeyError) as e:
            raise TranslationError(f"cannot instantiate region module: {e}") from e
        if not isinstance(func, wasmtime.Func):
            raise TranslationError(f"region module export {abi.REGION_EXPORT!r} is not a function")
        self.modules_instantiated += 1
        return func

    def allocate_slot(self, func: wasmtime.Func) -> int:
        if self._free_slots:
            slot = self._free_slots.pop()
        else:
            slot = self._next_slot
            self._next_slot += 1
            size = self.table.size(self.store)
            if slot >= size:
                self.table.grow(self.store, size, None)
        self.table.set(self.store, slot, func)
        return slot

    def free_slot(self, slot: int) -> None:
        """Null the slot (a running function stays alive: the store owns its instance) and reuse it later."""
        self.table.set(self.store, slot, None)
        self._free_slots.append(slot)

    def slot_count(self) -> int:
        return self._next_slot - 1 - len(self._free_slots)

    # -- jump cache -----------------------------------------------------------------
    def jc_clear(self) -> None:
        self.linear.write(abi.JC_BASE, struct.pack("<QQ", abi.JC_INVALID_PC, 0) * abi.JC_ENTRIES)

    def jc_set(self, pc: int, slot: int) -> None:
        self.linear.write(_jc_offset(pc), struct.pack("<QQ", pc, slot))

    def jc_get(self, pc: int) -> tuple[int, int]:
        """(pc, table slot) stored in the jump-cache entry ``pc`` hashes to."""
        return struct.unpack("<QQ", self.linear.read(_jc_offset(pc), abi.JC_ENTRY_SIZE))

    def jc_remove(self, pc: int) -> None:
        """Clear the entry of ``pc`` if it holds ``pc``."""
        if self.jc_get(pc)[0] == pc:
            self.linear.write(_jc_offset(pc), struct.pack("<QQ", abi.JC_INVALID_PC, 0))


def _jc_offset(pc: int) -> int:
    return abi.JC_BASE + abi.jc_index(pc) * abi.JC_ENTRY_SIZE


def _valtype(name: str) -> wasmtime.ValType:
    return {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}[name]


def _wrap_helper(fn: Callable[..., int | None], params: tuple[str, ...],
                 results: tuple[str, ...]) -> Callable[..., int | None]:
    """Adapt a helper on unsigned values to wasmtime's signed i64/i32 calling convention."""
    masks = [MASK64 if p == "i64" else 0xFFFF_FFFF for p in params]

    def call(*args: int) -> int | None:
        value = fn(*(a & m for a, m in zip(args, masks, strict=True)))
        if not results:
            return None
        if results[0] == "i64":
            return _i64(value if value is not None else 0)
        return ctypes.c_int32(value or 0).value

    return call
