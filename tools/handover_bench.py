"""What one hand-over between Unicorn and wasm costs: a compiled function called from cold code.

The caller's loop stays in Unicorn (its blocks never get hot: the counter's threshold is
raised), the function is compiled first by a run of its own, and short visits are never
run through, so every call is one slice in Unicorn and one entry into wasm. Prints the CPU
microseconds per (slice + entry) pair. ``tools/handover_bench.py [CALLS]``.
"""

from __future__ import annotations

import os
import sys
import time

os.environ["TCG2WASM_BACKGROUND"] = "0"

from tcg2wasm import Machine  # noqa: E402
from tcg2wasm.asm import Assembler, rax, rbx, rcx  # noqa: E402
from tcg2wasm.runtime import tiering, unicorn_cpu  # noqa: E402

CODE, HLT_AT, STACK_TOP = 0x10000, 0x20000, 0x7F000


def program(calls: int) -> tuple[bytes, int]:
    a = Assembler(base=CODE)
    f, top = a.label("f"), a.label()
    a.mov(rcx, calls)
    a.bind(top)
    a.call(f)
    a.add(rax, rbx)
    a.dec(rcx)
    a.jnz(top)
    a.hlt()
    a.bind(f)
    a.add(rbx, rcx)
    a.rol(rbx, 3)
    a.ret()
    return a.assemble(), a.labels[f]


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    unicorn_cpu.HOT_BLOCK_RUNS = 1 << 30
    tiering.UNICORN_HOT_MISSES = 1 << 40
    unicorn_cpu.VISITS_JUDGED = 1 << 40
    code, f = program(calls)
    m = Machine(cold_tier="unicorn")
    m.mem_map(CODE, 0x1000, "rx")
    m.mem_write(CODE, code)
    m.mem_map(HLT_AT, 0x1000, "rx")
    m.mem_write(HLT_AT, b"\xf4")
    m.mem_map(STACK_TOP - 0x10000, 0x10000, "rw")
    m.seed_profile([], hot=[f])
    m.reg_write("rsp", STACK_TOP - 8)
    m.mem_write(STACK_TOP - 8, HLT_AT.to_bytes(8, "little"))
    if m.run(f).kind != "hlt" or f not in m.cached_regions():
        sys.exit("handover_bench: the function did not get compiled")
    m.reg_write("rsp", STACK_TOP)
    slices = m.stats.unicorn_slices
    t0 = time.process_time()
    m.run(CODE)
    pairs = m.stats.unicorn_slices - slices
    print(f"{pairs} hand-over pairs, {(time.process_time() - t0) / pairs * 1e6:.1f} us CPU each")


if __name__ == "__main__":
    main()
