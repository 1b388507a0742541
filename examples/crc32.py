"""CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of a LEN-byte buffer, table-driven, REPEAT times.

The table is built at run time bit by bit; the buffer holds the high bytes of a 31-bit linear
congruential sequence (computed here, in Python). Result: rax = crc32(buffer); the program ends at
the label ``done`` (a ``hlt``). ``python examples/crc32.py`` prints the listing.
"""

from __future__ import annotations

from tcg2wasm.asm import (
    Assembler,
    Label,
    al,
    byte,
    cl,
    dword,
    eax,
    ecx,
    edx,
    ptr,
    r8d,
    r12d,
    rcx,
    rdi,
    rdx,
    rip,
    rsi,
)

PAGE = 0x1000


def lcg_buffer(length: int, seed: int = 12345) -> bytes:
    out = bytearray()
    for _ in range(length):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((seed >> 16) & 0xFF)
    return bytes(out)


def build(base: int = 0x400000, LEN: int = 4096, REPEAT: int = 1) -> Assembler:
    """Code from ``base``; from the label ``data`` (the next page) on, writable memory."""
    a = Assembler(base)
    table, buffer = a.label("table"), a.label("buffer")
    make_table, crc32 = a.label("make_table"), a.label("crc32")
    a.bind("_start")
    a.lea(rdi, ptr[rip + table])
    a.call(make_table)
    a.mov(r12d, REPEAT)
    again = a.bind("again")
    a.lea(rdi, ptr[rip + table])
    a.lea(rsi, ptr[rip + buffer])
    a.mov(edx, LEN)
    a.call(crc32)
    a.dec(r12d)
    a.jnz(again)
    a.bind("done")
    a.hlt()
    emit_make_table(a, make_table)
    emit_crc32(a, crc32)
    a.align(PAGE, fill=0)
    a.bind("data")
    a.align(64, fill=0)
    a.bind(buffer)
    a.db(lcg_buffer(LEN))
    a.align(64, fill=0)
    a.bind(table)
    a.space(1024)
    return a


def emit_make_table(a: Assembler, make_table: Label) -> None:
    """make_table(rdi = 256 dwords)."""
    no_xor = a.label("table_no_xor")
    a.bind(make_table)
    a.xor(ecx, ecx)
    entry = a.bind("table_entry")
    a.mov(eax, ecx)
    a.mov(r8d, 8)
    bit = a.bind("table_bit")
    a.shr(eax, 1)                         # CF = the bit shifted out
    a.jnc(no_xor)
    a.xor(eax, 0xEDB88320)
    a.bind(no_xor)
    a.dec(r8d)
    a.jnz(bit)
    a.mov(dword[rdi + rcx * 4], eax)
    a.inc(ecx)
    a.cmp(ecx, 256)
    a.jb(entry)
    a.ret()


def emit_crc32(a: Assembler, crc32: Label) -> None:
    """crc32(rdi = table, rsi = buffer, rdx = length) -> rax."""
    done = a.label("crc_done")
    a.bind(crc32)
    a.mov(eax, 0xFFFFFFFF)
    a.test(rdx, rdx)
    a.jz(done)
    byte_loop = a.bind("crc_byte")
    a.movzx(ecx, byte[rsi])
    a.xor(cl, al)
    a.shr(eax, 8)
    a.xor(eax, dword[rdi + rcx * 4])
    a.inc(rsi)
    a.dec(rdx)
    a.jnz(byte_loop)
    a.bind(done)
    a.not_(eax)                           # also zero-extends into rax
    a.ret()


if __name__ == "__main__":
    print(build().listing())
