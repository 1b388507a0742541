"""A static x86-64 Linux ELF executable from assembled segments, so a program written with
:mod:`tcg2wasm.asm` can run natively (tools/bench.py) or under ``tcg2wasm run`` without ld.

Each segment is one ``PT_LOAD`` at its own page-aligned file offset; a segment's memory size may
exceed its data (the rest is zero, like ``.bss``). No sections, no symbols: the kernel needs neither.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tcg2wasm.asm.errors import AsmError, caller

PAGE = 0x1000
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # ELF64 file header
_PHDR = struct.Struct("<IIQQQQQQ")          # ELF64 program header
_PT_LOAD = 1
_FLAGS = {"x": 1, "w": 2, "r": 4}


@dataclass(frozen=True)
class Segment:
    """``data`` loaded at ``address`` (page-aligned), ``size`` bytes of memory (>= len(data)), perms like ``"rx"``."""

    address: int
    data: bytes
    size: int
    perms: str


def static_elf(segments: list[Segment], entry: int) -> bytes:
    """The executable's bytes: ELF header, program headers, then each segment's data on its own pages."""
    where = caller()
    for seg in segments:
        if seg.address % PAGE or seg.size < len(seg.data) or not set(seg.perms) <= set(_FLAGS):
            raise AsmError(f"static_elf: bad segment at {seg.address:#x} (page-aligned, size >= data, "
                           "perms from 'rwx')", where)
    header_size = _EHDR.size + _PHDR.size * len(segments)
    offset = -(-header_size // PAGE) * PAGE
    phdrs, body = [], bytearray()
    for seg in segments:
        flags = sum(_FLAGS[p] for p in set(seg.perms))
        phdrs.append(_PHDR.pack(_PT_LOAD, flags, offset + len(body), seg.address, seg.address, len(seg.data),
                                seg.size, PAGE))
        body += seg.data + bytes(-len(seg.data) % PAGE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1, System V
    ehdr = _EHDR.pack(ident, 2, 62, 1, entry, _EHDR.size, 0, 0, _EHDR.size, _PHDR.size, len(segments), 64, 0, 0)
    head = ehdr + b"".join(phdrs)
    return head + bytes(offset - len(head)) + bytes(body)
