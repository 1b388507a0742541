"""Lane ops of SSSE3, SSE4.1 and SSE4.2 (on the 64-bit halves of xmm registers, as ``ops_vec``).

Only what cannot be composed from a handful of core or SSE2 lane ops has an
op here: the lane widths and signednesses SSE2 lacks for min/max and multiply,
``packusdw``, the byte shuffle with a variable selector (``pshufb``, which
reads both halves of its table), the horizontal adds and subtracts (pairs of
adjacent lanes), and the CRC-32C steps of ``crc32``. The front end composes
everything else (sem_sse4.py). Each ``fold`` is the exact semantics, used by
the interpreter and the constant folder; the wasm emitters are in
backend/emit_vec_ext.py.
"""

from __future__ import annotations

from tcg2wasm.ir.opdef import MASK64, OpDef, PureFn
from tcg2wasm.ir.ops_vec import _lanewise, _pack_fold, join_lanes, lanes, saturate, signed

#: CRC-32C (Castagnoli), bit-reflected, as the crc32 instruction computes it.
CRC32C_POLY = 0x82F6_3B78


def crc32c(crc: int, data: int, bits: int) -> int:
    """The crc32 instruction: ``crc`` (32 bits) updated with the low ``bits`` of ``data``, least significant first."""
    crc = (crc ^ data) & 0xFFFF_FFFF if bits <= 32 else crc & 0xFFFF_FFFF
    if bits == 64:
        crc = crc32c(crc32c(crc, data & 0xFFFF_FFFF, 32), data >> 32, 32)
        return crc
    for _ in range(bits):
        crc = (crc >> 1) ^ (CRC32C_POLY if crc & 1 else 0)
    return crc


def _crc_fold(bits: int) -> PureFn:
    return lambda crc, data: crc32c(crc, data & ((1 << bits) - 1), bits)


def _pshufb(lo: int, hi: int, idx: int) -> int:
    table = (lo | hi << 64).to_bytes(16, "little")
    return join_lanes([0 if i & 0x80 else table[i & 15] for i in lanes(idx, 8)], 8)


def _horizontal(bits: int, op: str) -> PureFn:
    """Lanes (a0 op a1, a2 op a3, ..., b0 op b1, ...): pairs of adjacent lanes of a, then of b."""

    def fold(a: int, b: int) -> int:
        values = [signed(x, bits) for x in lanes(a, bits) + lanes(b, bits)]
        pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
        out = [x + y if op.startswith("add") else x - y for x, y in pairs]
        if op.endswith("sat"):
            out = [saturate(v, bits, True) for v in out]
        return join_lanes(out, bits)

    return fold


def _minmax_ops() -> list[OpDef]:
    ops: list[OpDef] = []
    for bits, sign in ((8, "s"), (16, "u"), (32, "s"), (32, "u")):
        is_signed = sign == "s"
        kind = "signed" if is_signed else "unsigned"
        ops += [
            OpDef(f"min{bits}{sign}_i64", 1, 2, 0, fold=_lanewise(bits, min, is_signed),
                  doc=f"lane-wise {kind} {bits}-bit minimum (pmin{sign}{'bwd'[bits // 16]})"),
            OpDef(f"max{bits}{sign}_i64", 1, 2, 0, fold=_lanewise(bits, max, is_signed),
                  doc=f"lane-wise {kind} {bits}-bit maximum (pmax{sign}{'bwd'[bits // 16]})"),
        ]
    return ops


def _horizontal_ops() -> list[OpDef]:
    ops: list[OpDef] = []
    for bits in (16, 32):
        ops += [
            OpDef(f"hadd{bits}_i64", 1, 2, 0, fold=_horizontal(bits, "add"),
                  doc=f"{bits}-bit sums of adjacent lanes, a's pairs then b's, wrapping (phadd)"),
            OpDef(f"hsub{bits}_i64", 1, 2, 0, fold=_horizontal(bits, "sub"),
                  doc=f"{bits}-bit differences (even - odd) of adjacent lanes, a's then b's (phsub)"),
        ]
    ops += [
        OpDef("haddsat16s_i64", 1, 2, 0, fold=_horizontal(16, "addsat"),
              doc="as hadd16_i64 with signed saturation (phaddsw)"),
        OpDef("hsubsat16s_i64", 1, 2, 0, fold=_horizontal(16, "subsat"),
              doc="as hsub16_i64 with signed saturation (phsubsw)"),
    ]
    return ops


VEC_EXT_OPS: tuple[OpDef, ...] = tuple(_minmax_ops() + _horizontal_ops() + [
    OpDef("mul32_i64", 1, 2, 0, fold=_lanewise(32, lambda x, y: (x * y) & MASK64),
          doc="lane-wise dword product, low 32 bits (pmulld)"),
    OpDef("packus32_i64", 1, 2, 0, fold=_pack_fold(32, False),
          doc="words 0-1 = the 2 signed dwords of a, words 2-3 = those of b, saturated to uint16 (packusdw)"),
    OpDef("pshufb_i64", 1, 3, 0, fold=_pshufb,
          doc="bytes of the 16-byte table (a = bytes 0-7, b = bytes 8-15) selected by the bytes of c: "
              "0 where bit 7 is set, else byte c & 15 (one half of pshufb)"),
] + [OpDef(f"crc32c{bits}_i64", 1, 2, 0, fold=_crc_fold(bits),
           doc=f"CRC-32C of a (32 bits) updated with the low {bits} bits of b (crc32 r, r/m{bits})")
     for bits in (8, 16, 32, 64)])
