"""Sieve of Eratosthenes: count the primes below N, REPEAT times over.

Result: rax = number of primes below N; the program ends at the label ``done`` (a ``hlt``).
tools/mkcase.py turns it into examples/sieve.json and bench_sieve.json; tools/bench.py builds it with
NATIVE=1 into a Linux program that exits with the count (low byte). ``python examples/sieve.py``
prints the listing.
"""

from __future__ import annotations

from tcg2wasm.asm import Assembler, Label, byte, eax, ebx, ecx, edi, esi, ptr, qword, r12d, rax, rbx, rcx, rdi, rip, rsi

PAGE = 0x1000


def build(base: int = 0x400000, N: int = 10000, REPEAT: int = 1, NATIVE: int = 0) -> Assembler:
    """Code from ``base``; from the label ``data`` (the next page) on, writable memory."""
    a = Assembler(base)
    composite, sieve = a.label("composite"), a.label("sieve")
    a.bind("_start")
    a.mov(r12d, REPEAT)
    again = a.bind("again")
    a.lea(rdi, ptr[rip + composite])
    a.mov(esi, N)
    a.call(sieve)
    a.dec(r12d)
    a.jnz(again)
    a.bind("done")
    if NATIVE:  # exit(primes & 0xff)
        a.mov(edi, eax)
        a.mov(eax, 60)
        a.syscall()
    else:
        a.hlt()
    emit_sieve(a, sieve)
    a.align(PAGE, fill=0)
    a.bind("data")
    a.align(64, fill=0)
    a.bind(composite)
    a.space(N + 8)
    return a


def emit_sieve(a: Assembler, sieve: Label) -> None:
    """sieve(rdi = byte array of n flags, rsi = n) -> rax = primes below n."""
    outer, mark, next_i, count = a.label("outer"), a.label("mark"), a.label("next"), a.label("count")
    count_loop, count_done = a.label("count_loop"), a.label("count_done")
    a.bind(sieve)
    a.push(rbx)
    a.xor(ecx, ecx)                       # clear the flags (they are reused across repeats)
    clear = a.bind("clear")
    a.mov(qword[rdi + rcx], 0)
    a.add(rcx, 8)
    a.cmp(rcx, rsi)
    a.jb(clear)
    a.mov(ecx, 2)                         # i
    a.bind(outer)
    a.mov(rax, rcx)
    a.imul(rax, rcx)                      # j = i * i
    a.cmp(rax, rsi)
    a.jae(count)
    a.cmp(byte[rdi + rcx], 0)
    a.jne(next_i)
    a.bind(mark)
    a.mov(byte[rdi + rax], 1)
    a.add(rax, rcx)
    a.cmp(rax, rsi)
    a.jb(mark)
    a.bind(next_i)
    a.inc(rcx)
    a.jmp(outer)
    a.bind(count)
    a.xor(eax, eax)
    a.mov(ecx, 2)
    a.bind(count_loop)
    a.cmp(rcx, rsi)
    a.jae(count_done)
    a.movzx(ebx, byte[rdi + rcx])
    a.xor(ebx, 1)
    a.add(rax, rbx)                       # one more prime when the flag is clear
    a.inc(rcx)
    a.jmp(count_loop)
    a.bind(count_done)
    a.pop(rbx)
    a.ret()


if __name__ == "__main__":
    print(build().listing())
