"""The Binaryen backend: regions of IR blocks to wasm modules."""

from tcg2wasm.backend.function import BackendError
from tcg2wasm.backend.wasm import CompiledRegion, compile_region, region_wat

__all__ = ["BackendError", "CompiledRegion", "compile_region", "region_wat"]
