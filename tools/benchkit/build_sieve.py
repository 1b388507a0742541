"""Write examples/sieve.py (bench_sieve's N and REPEAT, NATIVE=1) as a static Linux program: the
sieve.S workload of `make bench`, which exits with the number of primes below 65536 (low byte).

    .venv/bin/python tools/benchkit/build_sieve.py build/bench/bin/sieve
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/, for mkcase

import mkcase  # noqa: E402

from tcg2wasm.asm.elf import static_elf  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build_sieve.py OUTPUT", file=sys.stderr)
        return 2
    program = mkcase.build_program(mkcase.EXAMPLES["bench_sieve"], NATIVE=1)
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(static_elf(mkcase.segments(program), program.base))
    out.chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
