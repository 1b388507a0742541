"""Emitters of the SSSE3/SSE4 lane ops (``tcg2wasm.ir.ops_vec_ext``), with wasm SIMD as emit_vec.py does.

``pshufb_i64`` is ``i8x16.swizzle`` of the 16-byte table with the selector
masked to bits 7 and 0-3 (swizzle gives 0 for indices >= 16, as pshufb does
for bit 7). The horizontal ops gather the even and the odd lanes of (a, b)
with one shuffle each and combine them lane-wise. crc32 has no wasm
instruction: its steps are unrolled bit by bit on i64 locals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcg2wasm.backend.bn import Op as W
from tcg2wasm.backend.bn import lib
from tcg2wasm.backend.emit_vec import Emitter, V, _lane0, _lanewise, _pair, _set, _shuffle, _splat
from tcg2wasm.ir.core import Op
from tcg2wasm.ir.ops_vec_ext import CRC32C_POLY

if TYPE_CHECKING:
    from tcg2wasm.backend.function import FunctionBuilder


def _pshufb(fb: FunctionBuilder, op: Op) -> None:
    _, lo, hi, idx = op.args
    e = fb.e
    selector = e.bin(lib.BinaryenAndVec128(), _splat(fb, idx.index), e.un(V.SPLAT64, e.c64(0x8F8F_8F8F_8F8F_8F8F)))
    _set(fb, op, _lane0(fb, e.bin(lib.BinaryenSwizzleVecI8x16(), _pair(fb, lo.index, hi.index), selector)))


def _horizontal(simd_op: int, bits: int) -> Emitter:
    """o = simd_op(even lanes of (a, b), odd lanes of (a, b)), lane 0."""
    size = bits // 8
    evens = [lane * size + k for lane in range(0, 16 // size, 2) for k in range(size)]
    odds = [lane * size + k for lane in range(1, 16 // size, 2) for k in range(size)]

    def emit(fb: FunctionBuilder, op: Op) -> None:
        _, a, b = op.args
        even = _shuffle(fb, _pair(fb, a.index, b.index), _pair(fb, a.index, b.index), evens)
        odd = _shuffle(fb, _pair(fb, a.index, b.index), _pair(fb, a.index, b.index), odds)
        _set(fb, op, _lane0(fb, fb.e.bin(simd_op, even, odd)))

    return emit


def _crc32c(bits: int) -> Emitter:
    """crc ^= data, then one shift-and-conditional-xor per bit (64 bits: two 32-bit rounds)."""

    def emit(fb: FunctionBuilder, op: Op) -> None:
        out, crc, data = op.args
        e = fb.e
        c, d = fb.scratch[0], fb.scratch[1]
        fb.stmt(e.set(d, e.get(data.index)))
        fb.stmt(e.set(c, e.bin(W.AND64, e.get(crc.index), e.c64(0xFFFF_FFFF))))
        for chunk in range(0, bits, 32):
            width = min(bits, 32)
            piece = e.bin(W.SHRU64, e.get(d), e.c64(chunk)) if chunk else e.get(d)
            fb.stmt(e.set(c, e.bin(W.XOR64, e.get(c), e.bin(W.AND64, piece, e.c64((1 << width) - 1)))))
            for _ in range(width):
                low_bit = e.bin(W.SUB64, e.c64(0), e.bin(W.AND64, e.get(c), e.c64(1)))
                fb.stmt(e.set(c, e.bin(W.XOR64, e.bin(W.SHRU64, e.get(c), e.c64(1)),
                                       e.bin(W.AND64, low_bit, e.c64(CRC32C_POLY)))))
        fb.stmt(e.set(out.index, e.get(c)))

    return emit


def _table() -> dict[str, Emitter]:
    simd = {
        "min8s_i64": "BinaryenMinSVecI8x16", "max8s_i64": "BinaryenMaxSVecI8x16",
        "min16u_i64": "BinaryenMinUVecI16x8", "max16u_i64": "BinaryenMaxUVecI16x8",
        "min32s_i64": "BinaryenMinSVecI32x4", "max32s_i64": "BinaryenMaxSVecI32x4",
        "min32u_i64": "BinaryenMinUVecI32x4", "max32u_i64": "BinaryenMaxUVecI32x4",
        "mul32_i64": "BinaryenMulVecI32x4",
    }
    table: dict[str, Emitter] = {name: _lanewise(getattr(lib, fn)()) for name, fn in simd.items()}
    horizontal = {
        "hadd16_i64": ("BinaryenAddVecI16x8", 16), "hsub16_i64": ("BinaryenSubVecI16x8", 16),
        "haddsat16s_i64": ("BinaryenAddSatSVecI16x8", 16), "hsubsat16s_i64": ("BinaryenSubSatSVecI16x8", 16),
        "hadd32_i64": ("BinaryenAddVecI32x4", 32), "hsub32_i64": ("BinaryenSubVecI32x4", 32),
    }
    table.update({name: _horizontal(getattr(lib, fn)(), bits) for name, (fn, bits) in horizontal.items()})
    table["pshufb_i64"] = _pshufb
    table.update({f"crc32c{bits}_i64": _crc32c(bits) for bits in (8, 16, 32, 64)})
    return table


def _packus32(fb: FunctionBuilder, op: Op) -> None:
    _, a, b = op.args
    narrowed = fb.e.bin(lib.BinaryenNarrowUVecI32x4ToVecI16x8(), _pair(fb, a.index, b.index),
                        _pair(fb, a.index, b.index))
    _set(fb, op, _lane0(fb, narrowed))


VEC_EXT_EMITTERS: dict[str, Emitter] = {**_table(), "packus32_i64": _packus32}
