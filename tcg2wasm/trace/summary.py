"""A trace summarised: the run, checkpoints, hot blocks, syscalls, instruction mix (``tcg2wasm trace-summary``)."""

from __future__ import annotations

import functools
from collections import Counter

from tcg2wasm.trace import format as tf


def block_counts(trace: tf.Trace) -> Counter[int]:
    return Counter(trace.block_seq)


def insn_mix(trace: tf.Trace, counts: Counter[int]) -> Counter[str]:
    """Executed instructions per mnemonic (a block's instructions times its executions)."""
    mix: Counter[str] = Counter()
    for index, n in counts.items():
        block = trace.blocks[index]
        for mnemonic in mnemonics(block.raw, block.pc):
            mix[mnemonic] += n
    return mix


def mnemonics(raw: bytes, pc: int) -> list[str]:
    """The mnemonic of every whole instruction of ``raw`` (iced-x86; summarising needs no Unicorn)."""
    import iced_x86

    names = _mnemonic_names()
    return [names.get(ins.mnemonic, "?") for ins in iced_x86.Decoder(64, raw, ip=pc)
            if not ins.is_invalid and ins.next_ip <= pc + len(raw)]


@functools.cache
def _mnemonic_names() -> dict[int, str]:
    import iced_x86

    return {v: k.lower() for k, v in vars(iced_x86.Mnemonic).items() if isinstance(v, int) and k.isupper()}


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
