#!/usr/bin/env python3
"""How long tcg2wasm.asm takes: building its form table once, and assembling a 100-instruction program.

Usage: tools/asm_bench.py [--repeat N]   (prints the median and the best of N runs, in milliseconds)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from tcg2wasm.asm import Assembler, ecx, edx, ptr, qword, rax, rbx, rcx, rdi, rip, rsi, xmm0, xmm1, xmmword
from tcg2wasm.asm.forms import forms_by_mnemonic


def program() -> bytes:
    """100 instructions: loads, rip-relative data, SSE, immediates of several widths, 10 loops."""
    a = Assembler(0x10000)
    data = a.label("data")
    for i in range(10):
        top = a.bind(f"top{i}")
        a.mov(rax, qword[rip + data])
        a.add(rax, qword[rsi + rcx * 8 - 8])
        a.xor(ecx, 0x12345)
        a.lea(edx, ptr[rax + rbx * 2 + 4])
        a.movdqu(xmm0, xmmword[rdi])
        a.paddd(xmm0, xmm1)
        a.shl(rax, 3)
        a.cmp(rax, 100)
        a.dec(rcx)
        a.jnz(top)
    a.bind(data)
    a.dq(1, 2, 3)
    return a.assemble()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    table = forms_by_mnemonic()
    print(f"form table: {len(table)} mnemonics, {sum(map(len, table.values()))} forms, "
          f"{(time.perf_counter() - t0) * 1e3:.1f} ms (once per process)")
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        program()
        times.append(time.perf_counter() - t0)
    print(f"100-instruction program: median {statistics.median(times) * 1e3:.2f} ms, "
          f"best {min(times) * 1e3:.2f} ms over {args.repeat} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
