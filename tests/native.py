"""The host CPU as the oracle: small C programs in tests/native/ built with gcc and run natively.

``oracle()`` is tests/native/x87oracle.c (one x87 operation per input line);
``run_native(code, regs, data)`` runs a snippet with tests/native/snippet_runner.c at the lift
harness's addresses (code 0x10000, data 0x20000, stack 0x30000) and gives the same Outcome as
``lift_harness.run_unicorn``. Binaries are cached in .pytest_cache/native, keyed by the source.
A test that needs them fails when gcc is missing (the project's make targets install it).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from lift_harness import DATA_ADDR, DATA_SIZE, STACK_ADDR, STACK_SIZE, Outcome

from tcg2wasm.abi import GPR_NAMES

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "native"
CACHE = ROOT.parent / ".pytest_cache" / "native"


@functools.cache
def build(name: str) -> Path:
    """tests/native/NAME.c compiled statically (cached by a hash of the source)."""
    src = SOURCES / f"{name}.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    out = CACHE / f"{name}-{digest}"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run(["gcc", "-O1", "-static", "-o", str(tmp), str(src)], check=True, capture_output=True)
        tmp.rename(out)
    return out


class LineOracle:
    """A native process answering one line per input line (kept running, fed in batches)."""

    def __init__(self, name: str) -> None:
        self.path = build(name)

    def ask(self, lines: list[str]) -> list[str]:
        proc = subprocess.run([str(self.path)], input="".join(lines), capture_output=True, text=True, check=True)
        out = proc.stdout.splitlines()
        assert len(out) == len(lines), f"{self.path.name}: {len(out)} answers to {len(lines)} questions"
        return out


@functools.cache
def oracle() -> LineOracle:
    return LineOracle("x87oracle")


def _input(code: bytes, regs: dict[str, int], data: bytes, fpcw: int, mxcsr: int) -> str:
    values = " ".join(f"{regs.get(name, 0) & (2**64 - 1):x}" for name in GPR_NAMES)
    return (f"{code.hex()}\n{values} {regs.get('rflags', 0x202):x}\n{mxcsr:x} {fpcw:x}\n"
            f"{data.ljust(DATA_SIZE, bytes(1)).hex()}\n")


def run_native_many(cases: list[tuple[bytes, dict[str, int], bytes]], fpcw: int = 0x37F,
                    mxcsr: int = 0x1F80) -> list[Outcome]:
    """Run each (code, regs, data) natively; one process for all of them."""
    text = "".join(_input(code, regs, data, fpcw, mxcsr) for code, regs, data in cases)
    proc = subprocess.run([str(build("snippet_runner"))], input=text, capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    outcomes = []
    i = 0
    for code, _, _ in cases:
        head = lines[i].split()
        if head[0] == "signal":
            outcomes.append(Outcome({}, {}, f"signal {head[1]}", 0))
            i += 1
            continue
        gprs = [int(x, 16) for x in head[1:17]]
        out = dict(zip(GPR_NAMES, gprs, strict=True))
        out["rflags"] = int(head[17], 16)
        out["rip"] = 0x10000 + len(code)
        memory = {DATA_ADDR: bytes.fromhex(lines[i + 3]), STACK_ADDR: bytes(STACK_SIZE)}
        outcomes.append(Outcome(out, memory, "end", out["rip"], {"env": lines[i + 1], "st": lines[i + 2].split()}))
        i += 4
    return outcomes


def run_native(code: bytes, regs: dict[str, int], data: bytes = b"", fpcw: int = 0x37F) -> Outcome:
    return run_native_many([(code, regs, data)], fpcw)[0]
