#!/usr/bin/env python3
"""Summarise a trace: run, checkpoints, hot blocks, syscalls, instruction mix.

Usage: tools/trace_summary.py TRACE [--top N]

Exit status 2 (one line) for an unusable trace file.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcg2wasm.trace import format as tf  # noqa: E402
from tcg2wasm.trace.ucrun import decode  # noqa: E402


def block_counts(trace: tf.Trace) -> Counter[int]:
    return Counter(trace.block_seq)


def insn_mix(trace: tf.Trace, counts: Counter[int]) -> Counter[str]:
    """Executed instructions per mnemonic (a block's instructions times its executions)."""
    mix: Counter[str] = Counter()
    for index, n in counts.items():
        block = trace.blocks[index]
        for insn in decode(block.raw, block.pc):
            mix[insn.mnemonic] += n
    return mix


def _table(rows: list[tuple[str, int]], total: int) -> list[str]:
    return [f"  {count:>12,}  {100 * count / max(1, total):5.1f}%  {label}" for label, count in rows]


def summary(trace: tf.Trace, top: int) -> str:
    meta, end = trace.meta, trace.end
    counts = block_counts(trace)
    how = f"exit status {end.status}" if end.kind == "exit" else f"{end.kind} at {end.pc:#x}"
    lines = [f"program {meta.get('program')} ({meta.get('mode')}) argv {meta.get('argv', [])}",
             f"{trace.icount:,} instructions, {len(trace.block_seq):,} blocks ({len(trace.blocks):,} distinct), "
             f"{len(trace.syscalls)} syscalls, {len(trace.checkpoints)} checkpoints every "
             f"{meta.get('checkpoint_every')} blocks; ended: {how}",
             f"initial image: {len(trace.regions)} mappings, "
             f"{sum(len(r.pages) for r in trace.regions)} non-zero pages"]
    hot = sorted(((trace.blocks[i].pc, trace.blocks[i].n_insns * n, n) for i, n in counts.items()),
                 key=lambda t: (-t[1], t[0]))[:top]
    lines.append(f"hot blocks (by instructions executed), top {top}:")
    lines += [f"  {insns:>12,}  {100 * insns / max(1, trace.icount):5.1f}%  {pc:#x} x{n:,}" for pc, insns, n in hot]
    calls = Counter(e.name for e in trace.syscalls)
    lines.append("syscalls:")
    lines += [f"  {n:>6}  {name}" for name, n in sorted(calls.items(), key=lambda t: (-t[1], t[0]))]
    mix = insn_mix(trace, counts)
    lines.append(f"instruction mix, top {top}:")
    lines += _table(sorted(mix.items(), key=lambda t: (-t[1], t[0]))[:top], sum(mix.values()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=10, help="rows in each top list (default 10)")
    args = parser.parse_args(argv)
    try:
        trace = tf.load(args.trace)
    except tf.TraceFormatError as e:
        print(f"trace_summary: error: {e}", file=sys.stderr)
        return 2
    print(summary(trace, max(1, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
