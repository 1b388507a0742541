#!/usr/bin/env python3
"""Turn the example programs (examples/*.py, written with tcg2wasm.asm) into state cases
(tcg2wasm/examples/*.json, package data).

Each example module has ``build(base, **params)`` returning an Assembler whose code starts at
``base`` and whose writable memory starts at the page-aligned label ``data``. Its output becomes the
case's memory -- code pages read/execute, data pages read/write, each region page-rounded with its
trailing zeros left out of the JSON -- a stack is added, and the case runs from ``base`` until the
label ``done`` (a ``hlt``). The expected ``rax`` is computed here in Python, independently of the
program, and stored as ``final`` so that ``tcg2wasm exec`` checks it. No assembler or linker is
needed: the encoding is tcg2wasm.asm's (iced-x86).

Usage: tools/mkcase.py [examples/NAME.py ...]   (no argument: every example)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tcg2wasm.asm import AsmError, Assembler
from tcg2wasm.asm.elf import Segment

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
CASES_DIR = ROOT / "tcg2wasm" / "examples"  # the generated cases: package data, so installations have them
TEXT_BASE = 0x400000
STACK_BASE = 0x7FFF0000
STACK_SIZE = 0x10000
PAGE = 0x1000


def primes_below(n: int) -> int:
    """Primes below n, by a sieve on Python integers."""
    flags = bytearray([1]) * n
    flags[:2] = b"\0\0"
    for i in range(2, int(n**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = bytes(len(range(i * i, n, i)))
    return sum(flags)


def lcg_bytes(length: int, seed: int = 12345) -> bytes:
    """The buffer examples/crc32.py holds: the high byte of a 31-bit LCG."""
    out = bytearray()
    for _ in range(length):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((seed >> 16) & 0xFF)
    return bytes(out)


@dataclass(frozen=True)
class Example:
    """One case built from one source with fixed parameters."""

    name: str
    source: str
    params: dict[str, int] = field(default_factory=dict)
    expected_rax: Callable[[dict[str, int]], int] | None = None
    description: str = ""


EXAMPLES: dict[str, Example] = {
    "sieve": Example(
        "sieve", "sieve.py", {"N": 10000, "REPEAT": 1},
        lambda p: primes_below(p["N"]), "primes below 10000 by a sieve of Eratosthenes (rax)",
    ),
    "crc32": Example(
        "crc32", "crc32.py", {"LEN": 4096, "REPEAT": 1},
        lambda p: zlib.crc32(lcg_bytes(p["LEN"])), "table-driven CRC-32 of a 4096-byte buffer (rax)",
    ),
    "bench_sieve": Example(
        "bench_sieve", "sieve.py", {"N": 65536, "REPEAT": 110},
        lambda p: primes_below(p["N"]), "benchmark: the sieve below 65536, 110 times over (about 1.1e8 instructions)",
    ),
}


def load_example(source: str) -> ModuleType:
    """The module examples/``source`` (examples/ is not a package)."""
    path = EXAMPLES_DIR / source
    spec = importlib.util.spec_from_file_location(f"tcg2wasm_example_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"mkcase: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_program(ex: Example, **extra: int) -> Assembler:
    """The example's program at TEXT_BASE, assembled (``labels`` filled)."""
    program = load_example(ex.source).build(TEXT_BASE, **ex.params, **extra)
    try:
        program.assemble()
    except AsmError as exc:
        raise SystemExit(f"mkcase: {exc}") from None
    return program


def segments(program: Assembler) -> list[Segment]:
    """Code (rx) up to the label ``data``, data (rw) from it; each page-rounded, zeros at the end left out."""
    image = program.assemble()
    data = program.labels["data"]
    if data % PAGE:
        raise SystemExit(f"mkcase: the label 'data' ({data:#x}) is not page-aligned")
    cut = data - program.base
    parts = [(program.base, image[:cut], "rx"), (data, image[cut:], "rw")]
    return [Segment(addr, body.rstrip(b"\0"), -(-len(body) // PAGE) * PAGE, perms)
            for addr, body, perms in parts if body]


def make_case(ex: Example) -> dict:
    program = build_program(ex)
    memory = [{"addr": seg.address, "size": seg.size, "perms": seg.perms, "data": seg.data.hex()}
              for seg in segments(program)]
    entry, done = program.base, program.labels["done"]
    memory.append({"addr": STACK_BASE, "size": STACK_SIZE, "perms": "rw", "data": ""})
    case = {
        "name": ex.name,
        "description": f"{ex.description}; built from examples/{ex.source} with "
        + " ".join(f"{k}={v}" for k, v in sorted(ex.params.items())),
        "initial": {"regs": {"rip": entry, "rsp": STACK_BASE + STACK_SIZE - 0x100, "rflags": 0x202},
                    "memory": memory},
        "stop": {"until": done},
    }
    if ex.expected_rax is not None:
        case["final"] = {"regs": {"rax": ex.expected_rax(ex.params), "rip": done}}
    return case


def examples_for(sources: list[str]) -> list[Example]:
    if not sources:
        return list(EXAMPLES.values())
    wanted = {Path(s).name for s in sources}
    unknown = wanted - {ex.source for ex in EXAMPLES.values()}
    if unknown:
        raise SystemExit(f"mkcase: no example is built from {', '.join(sorted(unknown))}")
    return [ex for ex in EXAMPLES.values() if ex.source in wanted]


def main(argv: list[str]) -> int:
    for ex in examples_for(argv):
        out = CASES_DIR / f"{ex.name}.json"
        out.write_text(json.dumps(make_case(ex), indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
