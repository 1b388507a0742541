#!/usr/bin/env python3
"""Issue 10's hooked loop under Unicorn, tcg2wasm.unicorn and the plain Machine: seconds and guest MIPS.

The guest is a loop of 5 instructions (a load, a store, two ALU ops, the loop branch)
run ``--iterations`` times. The hooked script adds a code hook on one address outside
the loop, a block hook and a memory-write hook on a range the loop never touches:
Unicorn then checks every access against the memory hook at run time; tcg2wasm
compiles the loop without any hook in it. Each configuration runs ``--repeats``
times in this process (a fresh emulator each time); the median is reported. Then
the cost of one callback of a hook that fires in every iteration (a code hook on the
loop's load, a write hook on its store), once each, over ``--hooked-iterations``.

Usage: tools/bench_unicorn_api.py [--iterations N] [--repeats R]   (make bench-unicorn-api)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from types import ModuleType

import unicorn
import unicorn.x86_const as ux

import tcg2wasm.unicorn as tu
import tcg2wasm.unicorn.x86_const as tx
from tcg2wasm.asm import Assembler, qword, rax, rcx, rdi, rsi
from tcg2wasm.machine import Machine

CODE, DATA, ELSEWHERE = 0x1000, 0x10000, 0x40000


def loop(iterations: int) -> bytes:
    a = Assembler(base=CODE)
    top = a.label()
    a.mov(rcx, iterations)
    a.mov(rsi, DATA)
    a.bind(top)
    a.add(rax, qword[rsi + 0x100])
    a.mov(qword[rsi + 0x108], rax)
    a.add(rdi, rcx)
    a.dec(rcx)
    a.jnz(top)
    a.nop()
    return a.assemble()


def run_uc(mod: ModuleType, x86: ModuleType, code: bytes, hooks: bool) -> tuple[float, int]:
    mu = mod.Uc(mod.UC_ARCH_X86, mod.UC_MODE_64)
    mu.mem_map(CODE, 0x1000)
    mu.mem_map(DATA, 0x1000)
    mu.mem_map(ELSEWHERE, 0x1000)
    mu.mem_write(CODE, code)
    mu.mem_write(DATA + 0x100, (3).to_bytes(8, "little"))
    if hooks:
        mu.hook_add(mod.UC_HOOK_CODE, lambda *a: None, None, ELSEWHERE, ELSEWHERE)
        mu.hook_add(mod.UC_HOOK_BLOCK, lambda *a: None, None, ELSEWHERE, ELSEWHERE + 0xFFF)
        mu.hook_add(mod.UC_HOOK_MEM_WRITE, lambda *a: None, None, ELSEWHERE, ELSEWHERE + 0xFFF)
    t0 = time.perf_counter()
    mu.emu_start(CODE, CODE + len(code) - 1)
    return time.perf_counter() - t0, mu.reg_read(x86.UC_X86_REG_RAX)


def per_callback(mod: ModuleType, code: bytes, kind: str) -> tuple[float, int]:
    """Seconds per callback of a hook that fires in every iteration: on the loop's load (code) or its store."""
    mu = mod.Uc(mod.UC_ARCH_X86, mod.UC_MODE_64)
    mu.mem_map(CODE, 0x1000)
    mu.mem_map(DATA, 0x1000)
    mu.mem_write(CODE, code)
    calls = [0]

    def count(*_args: object) -> None:
        calls[0] += 1

    if kind == "code":
        mu.hook_add(mod.UC_HOOK_CODE, count, None, CODE + 14, CODE + 14)  # the loop's first instruction
    else:
        mu.hook_add(mod.UC_HOOK_MEM_WRITE, count, None, DATA + 0x108, DATA + 0x10F)
    t0 = time.perf_counter()
    mu.emu_start(CODE, CODE + len(code) - 1)
    return (time.perf_counter() - t0) / max(1, calls[0]), calls[0]


def run_machine(code: bytes) -> tuple[float, int]:
    m = Machine()
    m.mem_map(CODE, 0x1000)
    m.mem_map(DATA, 0x1000)
    m.mem_write(CODE, code)
    m.mem_write(DATA + 0x100, (3).to_bytes(8, "little"))
    t0 = time.perf_counter()
    m.run(CODE, CODE + len(code) - 1)
    return time.perf_counter() - t0, m.reg_read("rax")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40_000_000, help="loop iterations (5 instructions each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hooked-iterations", type=int, default=100_000,
                        help="iterations of the loop whose load (code hook) or store (write hook) is hooked")
    args = parser.parse_args(argv)
    code = loop(args.iterations)
    insns = 2 + 5 * args.iterations
    configs = {
        "unicorn, hooks": lambda: run_uc(unicorn, ux, code, True),
        "tcg2wasm.unicorn, hooks": lambda: run_uc(tu, tx, code, True),
        "unicorn, no hooks": lambda: run_uc(unicorn, ux, code, False),
        "tcg2wasm.unicorn, no hooks": lambda: run_uc(tu, tx, code, False),
        "Machine": lambda: run_machine(code),
    }
    medians = {}
    for name, fn in configs.items():
        times = []
        for _ in range(args.repeats):
            seconds, rax = fn()
            if rax != 3 * args.iterations:
                print(f"{name}: wrong result rax={rax:#x}", file=sys.stderr)
                return 1
            times.append(seconds)
        medians[name] = statistics.median(times)
        print(f"{name:28s} {medians[name]:8.2f} s  {insns / medians[name] / 1e6:8.1f} MIPS  "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    hooked = loop(args.hooked_iterations)
    for kind in ("code", "write"):
        for mod in (unicorn, tu):
            seconds, calls = per_callback(mod, hooked, kind)
            if calls != args.hooked_iterations:
                print(f"{mod.__name__} {kind}: {calls} callbacks, expected {args.hooked_iterations}", file=sys.stderr)
                return 1
            print(f"{mod.__name__ + ', ' + kind + ' hook in the loop':44s} {seconds * 1e6:8.1f} us per callback")
    print(f"hooked speed-up over Unicorn: {medians['unicorn, hooks'] / medians['tcg2wasm.unicorn, hooks']:.1f}x; "
          f"tcg2wasm.unicorn without hooks / Machine: "
          f"{medians['tcg2wasm.unicorn, no hooks'] / medians['Machine']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
