"""The benchmark's workloads: project-written programs and busybox on generated, deterministic inputs.

The C programs live in guests/bench/ and are built static by `make bench-guests` into
build/bench/bin/ (not committed); the inputs (a random file, a file of lines) are generated here
from fixed seeds into build/bench/inputs/. ``quick`` selects smaller sizes of the same programs.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "guests" / "bin"
BUILD = ROOT / "build" / "bench"
BENCH_BIN = BUILD / "bin"

RANDOM_SEED = 2026
QEMU_SIEVE = ("qemu-x86_64 7.2 itself crashes (SIGSEGV, before the first guest instruction) loading the ELF "
              "that tcg2wasm.asm.elf writes; Linux and tcg2wasm run it")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


@dataclass(frozen=True)
class Workload:
    """One command measured by every runner; its native output is the reference."""

    name: str
    description: str
    argv: tuple[str, ...]
    not_run: tuple[tuple[str, str], ...] = ()  # (runner, why): shown as n/a under the table, never silently

    @property
    def program(self) -> Path:
        return Path(self.argv[0])


@dataclass(frozen=True)
class Sizes:
    random_bytes: int
    lines: int
    hash_keys: int
    sqlite_rows: int
    zstd_mib: int
    bytecode_n: int
    nbody_steps: int


FULL = Sizes(random_bytes=1 << 20, lines=100_000, hash_keys=1 << 20, sqlite_rows=20_000, zstd_mib=3,
             bytecode_n=30_000, nbody_steps=1_000_000)
QUICK = Sizes(random_bytes=128 << 10, lines=10_000, hash_keys=100_000, sqlite_rows=2_000, zstd_mib=1,
              bytecode_n=3_000, nbody_steps=100_000)


def random_file(path: Path, size: int, seed: int = RANDOM_SEED) -> Path:
    """``size`` pseudo-random bytes from a fixed seed (rewritten only when missing or of another size)."""
    if not (path.exists() and path.stat().st_size == size):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(seed).randbytes(size))
    return path


def lines_file(path: Path, count: int, seed: int = RANDOM_SEED) -> Path:
    """``count`` lines of random hex keys, words and numbers, in no order, from a fixed seed."""
    rng = random.Random(seed)
    text = "".join(f"{rng.getrandbits(32):08x} {rng.choice(WORDS)} {rng.randrange(10**6)} {i}\n"
                   for i in range(count))
    if not (path.exists() and path.read_text() == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def busybox() -> str:
    return "/bin/busybox" if Path("/bin/busybox").exists() else shutil.which("busybox") or "/bin/busybox"


def _busybox_workloads(sizes: Sizes, inputs: Path) -> list[Workload]:
    data = str(random_file(inputs / f"random-{sizes.random_bytes}.bin", sizes.random_bytes))
    lines = str(lines_file(inputs / f"lines-{sizes.lines}.txt", sizes.lines))
    kib = sizes.random_bytes >> 10
    bb = busybox()
    return [
        Workload("sha256sum", f"busybox sha256sum, {kib} KiB random file", (bb, "sha256sum", data)),
        Workload("gzip", f"busybox gzip -c, {kib} KiB random file", (bb, "gzip", "-c", data)),
        Workload("sort", f"busybox sort, {sizes.lines:,} lines", (bb, "sort", lines)),
        Workload("bzip2", f"busybox bzip2 -c, {kib} KiB random file", (bb, "bzip2", "-c", data)),
    ]


def _c_workloads(sizes: Sizes) -> list[Workload]:
    def prog(name: str) -> str:
        return str(BENCH_BIN / name)

    return [
        Workload("hashprobe", f"random probes into a 16 MiB hash table ({sizes.hash_keys:,} inserts + lookups)",
                 (prog("hashprobe"), str(sizes.hash_keys))),
        Workload("sqlite", f"static SQLite: {sizes.sqlite_rows:,}-row in-memory table, 7 queries",
                 (prog("sqlite"), str(sizes.sqlite_rows))),
        Workload("zstd-zlib", f"static zstd + zlib: {sizes.zstd_mib} MiB round trips at 3 levels each",
                 (prog("zstdzlib"), str(sizes.zstd_mib))),
        Workload("bytecode", f"bytecode interpreter, switch dispatch (primes, Collatz below {sizes.bytecode_n:,})",
                 (prog("bytecode"), str(sizes.bytecode_n))),
        Workload("calls", "recursion (fib, Ackermann, a tree) and calls through function pointers",
                 (prog("calls"), "1")),
        Workload("nbody", f"n-body floating-point kernel, {sizes.nbody_steps:,} steps",
                 (prog("nbody"), str(sizes.nbody_steps))),
    ]


def standard_workloads(quick: bool = False, inputs: Path = BUILD / "inputs") -> list[Workload]:
    """Every workload of the table, in its order (issue 9's table first, then the kernels)."""
    sizes = QUICK if quick else FULL
    head = [
        Workload("compute.musl", "guests/bin/compute.musl: sieve, hashing, matrix product",
                 (str(GUESTS / "compute.musl"),)),
        Workload("hello.glibc", "guests/bin/hello.glibc: start-up and one write", (str(GUESTS / "hello.glibc"),)),
        Workload("sieve", "examples/sieve.py as a Linux program: a hot loop, no libc (exit status)",
                 (str(BENCH_BIN / "sieve"),), not_run=(("qemu", QEMU_SIEVE),)),
    ]
    return head + _busybox_workloads(sizes, inputs) + _c_workloads(sizes)


def missing_programs(workloads: list[Workload]) -> list[str]:
    return [str(w.program) for w in workloads if not w.program.exists()]
