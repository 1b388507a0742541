"""The Binaryen backend: a region of translation blocks becomes one wasm module.

The module imports ``env.memory``, ``env.table`` and the host helpers of
:data:`tcg2wasm.abi.REGION_IMPORTS`, and exports one function
:data:`tcg2wasm.abi.REGION_EXPORT` of type ``() -> i32`` (an Exit code).
See docs/backend.md for the function layout and the exit/fault protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tcg2wasm.abi import IMPORT_MEMORY, IMPORT_MODULE, IMPORT_TABLE, MAX_WASM_PAGES, REGION_EXPORT, REGION_IMPORTS
from tcg2wasm.backend.bn import I32, I64, MEMORY_NAME, NONE, NULL, c_free, ffi, lib
from tcg2wasm.backend.function import BackendError, FunctionBuilder
from tcg2wasm.cfg.region import Region
from tcg2wasm.ir.validate import IRError, validate_tb

#: Binaryen passes run when ``optimize`` is true: cheap, local clean-ups (docs/backend.md).
#: Off by default: on real programs they cost more than half of the Binaryen-side time per
#: region and change neither Cranelift's compile time nor the speed of the code, since
#: Cranelift does its own GVN/DCE; they only make modules smaller.
OPT_PASSES: tuple[str, ...] = (
    "simplify-locals-nostructure",
    "vacuum",
    "remove-unused-brs",
    "merge-blocks",
)
FEATURES = (lib.BinaryenFeatureMutableGlobals() | lib.BinaryenFeatureSignExt() | lib.BinaryenFeatureBulkMemory()
            | lib.BinaryenFeatureSIMD128() | lib.BinaryenFeatureTailCall() | lib.BinaryenFeatureNontrappingFPToInt())
TABLE_NAME = b"table"
_VALTYPES = {"i32": I32, "i64": I64}


@dataclass
class CompiledRegion:
    wasm: bytes  # module: imports per tcg2wasm.abi, exports REGION_EXPORT () -> i32
    n_ops: int  # IR ops compiled
    n_blocks: int  # translation blocks compiled (those reachable from the entry)


def _check_region(region: Region) -> dict[int, Any]:
    """Validate the region's TBs in Python (a malformed op must not reach Binaryen)."""
    order = region.reachable()
    for pc in order:
        tb = region.blocks[pc]
        if tb.pc != pc:
            raise BackendError(f"region block keyed 0x{pc:x} has pc 0x{tb.pc:x}")
        try:
            validate_tb(tb)
        except IRError as err:
            raise BackendError(f"TB 0x{pc:x}: {err}") from None
    return {pc: region.blocks[pc] for pc in order}


def _type_of(types: tuple[str, ...]) -> int:
    if not types:
        return NONE
    if len(types) == 1:
        return _VALTYPES[types[0]]
    return lib.BinaryenTypeCreate(ffi.new("BinaryenType[]", [_VALTYPES[t] for t in types]), len(types))


def _add_imports(module: Any) -> None:
    lib.BinaryenSetMemory(module, 1, MAX_WASM_PAGES, NULL, NULL, NULL, NULL, NULL, NULL, 0, False, False,
                          MEMORY_NAME)
    lib.BinaryenAddMemoryImport(module, MEMORY_NAME, IMPORT_MODULE.encode(), IMPORT_MEMORY.encode(), False)
    lib.BinaryenAddTable(module, TABLE_NAME, 0, 0xFFFF_FFFF, lib.BinaryenTypeFuncref())
    lib.BinaryenAddTableImport(module, TABLE_NAME, IMPORT_MODULE.encode(), IMPORT_TABLE.encode())
    for name, (params, results) in sorted(REGION_IMPORTS.items()):
        lib.BinaryenAddFunctionImport(module, name.encode(), IMPORT_MODULE.encode(), name.encode(),
                                      _type_of(params), _type_of(results))


@contextmanager
def _region_module(region: Region, optimize: bool) -> Iterator[tuple[Any, int, int]]:
    """Build, validate and optionally optimize the module; yields (module, n_ops, n_blocks); disposes it."""
    tbs = _check_region(region)
    module = lib.BinaryenModuleCreate()
    try:
        lib.BinaryenModuleSetFeatures(module, FEATURES)
        _add_imports(module)
        fb = FunctionBuilder(module, tbs)
        for tb in tbs.values():
            fb.emit_tb(tb)
        body = fb.build_body(region.entry)
        var_types = ffi.new("BinaryenType[]", fb.var_types)
        name = REGION_EXPORT.encode()
        lib.BinaryenAddFunction(module, name, NONE, I32, var_types, len(fb.var_types), body)
        lib.BinaryenAddFunctionExport(module, name, name)
        if not lib.BinaryenModuleValidate(module):
            raise BackendError(f"region 0x{region.entry:x}: Binaryen rejected the generated module (see stderr)")
        if optimize:
            _run_passes(module, OPT_PASSES)
        yield module, fb.n_ops, len(tbs)
    finally:
        lib.BinaryenModuleDispose(module)


def _run_passes(module: Any, passes: tuple[str, ...]) -> None:
    names = [ffi.new("char[]", p.encode()) for p in passes]
    lib.BinaryenModuleRunPasses(module, ffi.new("char*[]", names), len(names))


def _write_binary(module: Any) -> bytes:
    result = lib.BinaryenModuleAllocateAndWrite(module, NULL)
    try:
        return bytes(ffi.buffer(result.binary, result.binaryBytes))
    finally:
        c_free(result.binary)
        c_free(result.sourceMap)


def _write_text(module: Any) -> str:
    text = lib.BinaryenModuleAllocateAndWriteText(module)
    try:
        return ffi.string(text).decode()
    finally:
        c_free(text)


def compile_region(region: Region, *, optimize: bool = False) -> CompiledRegion:
    """Compile ``region`` into a wasm module (bytes) exporting the region function."""
    with _region_module(region, optimize) as (module, n_ops, n_blocks):
        return CompiledRegion(_write_binary(module), n_ops, n_blocks)


def region_wat(region: Region, *, optimize: bool = False) -> str:
    """The region's module in wasm text form (for ``show`` commands and golden tests)."""
    with _region_module(region, optimize) as (module, _n_ops, _n_blocks):
        return _write_text(module)
