#!/usr/bin/env python3
"""Write a regression case (tests/regressions/NAME.json) from code bytes and registers, with the CPU's result.

The case uses the instruction-stream fuzzer's memory layout (tcg2wasm.fuzz.streams.LAYOUT, data
pages zero unless ``--data ADDR=HEX`` is given), the code at ``--at`` (default 0x10000) followed by
``int3`` at the stop address, and the host CPU's final state as ``final``
(tcg2wasm.fuzz.regressions.regression_case). ``--open`` names it ``open-NAME.json``: a finding not
fixed yet, run by tests/test_regressions.py as a strict xfail.

Usage: tools/mkregression.py NAME --code HEX [--reg rax=0x10 ...] [--at ADDR] [--desc TEXT] [--open]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tcg2wasm.cases import Case, MemoryRegion, Stop
from tcg2wasm.fuzz.native import NativeRunner
from tcg2wasm.fuzz.regressions import regression_case
from tcg2wasm.fuzz.streams import CODE_ADDR, LAYOUT

ROOT = Path(__file__).resolve().parent.parent


def build(name: str, code: bytes, regs: dict[str, int], at: int, data: dict[int, bytes], desc: str) -> Case:
    memory = []
    for addr, size, perms in LAYOUT:
        image = bytearray(size)
        if addr == CODE_ADDR:
            blob = (code + b"\xcc")[:size - (at - addr)]  # no int3 past the mapping (a case ending at its end)
            image[at - addr:at - addr + len(blob)] = blob
        for where, blob in data.items():
            if addr <= where < addr + size:
                image[where - addr:where - addr + len(blob)] = blob
        memory.append(MemoryRegion(addr, size, perms, bytes(image).rstrip(b"\0")))
    return Case(name, {"rflags": 0x202, **regs, "rip": at}, memory, Stop(until=at + len(code)), description=desc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name")
    p.add_argument("--code", required=True, type=bytes.fromhex)
    p.add_argument("--reg", action="append", default=[], help="NAME=VALUE")
    p.add_argument("--data", action="append", default=[], help="ADDR=HEX")
    p.add_argument("--at", type=lambda t: int(t, 0), default=CODE_ADDR)
    p.add_argument("--desc", default="")
    p.add_argument("--open", action="store_true")
    args = p.parse_args()
    regs = {k: int(v, 0) for k, v in (r.split("=", 1) for r in args.reg)}
    data = {int(k, 0): bytes.fromhex(v) for k, v in (d.split("=", 1) for d in args.data)}
    case = build(args.name, args.code, regs, args.at, data, args.desc)
    with NativeRunner() as cpu:
        native = cpu.run(case)
    obj = regression_case(case, native, [])
    obj["description"] = args.desc
    path = ROOT / "tests" / "regressions" / f"{'open-' if args.open else ''}{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
    print(f"{path.relative_to(ROOT)}: CPU {native.stop['message']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
