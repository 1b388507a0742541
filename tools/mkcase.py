#!/usr/bin/env python3
"""Turn the example programs (examples/*.S) into state cases (examples/*.json).

Each example is assembled with GNU ``as`` (with ``--defsym`` parameters) and
linked with ``ld`` into a static ELF; its loadable segments become the case's
memory (page-aligned, with the segments' permissions), a stack is added, and the
case runs from the ELF entry until the address of the ``done`` symbol (a
``hlt``). The expected ``rax`` is computed here in Python and stored as
``final`` so that ``tcg2wasm exec`` checks it.

Usage: tools/mkcase.py [examples/NAME.S ...]   (no argument: every example)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.constants import P_FLAGS, SH_FLAGS
from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
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
    """The buffer crc32.S builds with ``.rept``: the high byte of a 31-bit LCG."""
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
        "sieve", "sieve.S", {"N": 10000, "REPEAT": 1},
        lambda p: primes_below(p["N"]), "primes below 10000 by a sieve of Eratosthenes (rax)",
    ),
    "crc32": Example(
        "crc32", "crc32.S", {"LEN": 4096, "REPEAT": 1},
        lambda p: zlib.crc32(lcg_bytes(p["LEN"])), "table-driven CRC-32 of a 4096-byte buffer (rax)",
    ),
    "bench_sieve": Example(
        "bench_sieve", "sieve.S", {"N": 65536, "REPEAT": 110},
        lambda p: primes_below(p["N"]), "benchmark: the sieve below 65536, 110 times over (about 1.1e8 instructions)",
    ),
}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mkcase: {' '.join(cmd)} failed:\n{proc.stderr}")


def build_elf(source: Path, params: dict[str, int], out: Path) -> None:
    """Assemble and link ``source`` into a static ELF at TEXT_BASE."""
    obj = out.with_suffix(".o")
    defsyms = [arg for k, v in sorted(params.items()) for arg in ("--defsym", f"{k}={v}")]
    _run(["as", "--64", *defsyms, "-o", str(obj), str(source)])
    _run(["ld", "-static", "-nostdlib", "--build-id=none", f"-Ttext=0x{TEXT_BASE:x}", "-o", str(out), str(obj)])


def _perms(p_flags: int) -> str:
    return "".join(c for c, bit in (("r", P_FLAGS.PF_R), ("w", P_FLAGS.PF_W), ("x", P_FLAGS.PF_X)) if p_flags & bit)


def elf_memory(elf: ELFFile) -> list[dict]:
    """Page-aligned regions for the PT_LOAD segments that hold allocated sections."""
    regions: list[dict] = []
    alloc = [s for s in elf.iter_sections() if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"]]
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or not any(seg.section_in_segment(s) for s in alloc):
            continue
        start = seg["p_vaddr"] & ~(PAGE - 1)
        end = (seg["p_vaddr"] + seg["p_memsz"] + PAGE - 1) & ~(PAGE - 1)
        image = bytearray(end - start)
        offset = seg["p_vaddr"] - start
        image[offset : offset + seg["p_filesz"]] = seg.data()
        if regions and regions[-1]["addr"] + regions[-1]["size"] > start:
            raise SystemExit(f"mkcase: segments share the page 0x{start:x}: give them separate pages")
        regions.append({"addr": start, "size": end - start, "perms": _perms(seg["p_flags"]),
                        "data": bytes(image).rstrip(b"\0").hex()})
    return regions


def symbol(elf: ELFFile, name: str) -> int:
    symtab = elf.get_section_by_name(".symtab")
    found = symtab.get_symbol_by_name(name) if symtab else None
    if not found:
        raise SystemExit(f"mkcase: the program has no symbol {name!r}")
    return found[0]["st_value"]


def make_case(ex: Example) -> dict:
    with tempfile.TemporaryDirectory(prefix="tcg2wasm-mkcase-") as tmp:
        elf_path = Path(tmp) / f"{ex.name}.elf"
        build_elf(EXAMPLES_DIR / ex.source, ex.params, elf_path)
        with elf_path.open("rb") as f:
            elf = ELFFile(f)
            memory = elf_memory(elf)
            entry, done = elf.header["e_entry"], symbol(elf, "done")
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
        out = EXAMPLES_DIR / f"{ex.name}.json"
        out.write_text(json.dumps(make_case(ex), indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
