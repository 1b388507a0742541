"""tcg2wasm show --graph: a region's block graph, as DOT and drawn by Graphviz."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tcg2wasm.cfg.graph import region_dot, twice_translated
from tcg2wasm.cfg.region import Region
from tcg2wasm.ir import GuestInsn, IRBuilder

SIEVE = Path(__file__).resolve().parent.parent / "tcg2wasm" / "examples" / "sieve.json"


def _tb(pc: int, size: int, *targets: int):  # noqa: ANN202 - a TranslationBlock
    b = IRBuilder()
    b.insn_start(pc)
    if len(targets) == 2:
        label = b.new_label()
        b.brcondi(0, b.const(0), 0, label)
        b.goto_tb(targets[0])
        b.set_label(label)
        b.goto_tb(targets[1])
    else:
        b.goto_tb(targets[0])
    return b.finish(pc, size, [GuestInsn(pc, bytes(size), "x")])


def test_loops_exits_and_overlapping_blocks_are_marked() -> None:
    blocks = {0x100: _tb(0x100, 8, 0x108), 0x108: _tb(0x108, 8, 0x108, 0x200), 0x104: _tb(0x104, 4, 0x108)}
    region = Region(0x100, blocks)
    dot = region_dot(region, "t")
    assert '"0x100" [label="0x100\\n1 insns, 8 bytes\\ntranslated twice", peripheries=2' in dot
    assert '"0x108" -> "0x108" [style=bold, color=red, label=loop];' in dot
    assert '"0x108" -> "exit 0x200";' in dot and '"exit 0x200" [style=dashed];' in dot
    assert twice_translated(region) == {0x100, 0x104}


def test_the_sieve_region_draws_as_an_image(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is missing: `make test` installs it (apt-get install graphviz)")
    out = tmp_path / "sieve.png"
    cmd = [sys.executable, "-m", "tcg2wasm", "show", "--graph", str(out), "--max-blocks", "16", str(SIEVE)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    dot = tmp_path / "sieve.dot"
    subprocess.run([*cmd[:5], str(dot), *cmd[6:]], check=True, timeout=120)
    assert "label=loop" in dot.read_text() and "peripheries=2" in dot.read_text()


def test_a_loop_through_a_call_counts_only_when_asked() -> None:
    """0x100 calls 0x200 (5 bytes: returns to 0x105), 0x105 jumps back to 0x100; 0x200 ends in ret."""
    call = IRBuilder()
    call.insn_start(0x100)
    call.goto_tb(0x200)
    blocks = {0x100: call.finish(0x100, 5, [GuestInsn(0x100, bytes(5), "call 0x200")]),
              0x105: _tb(0x105, 2, 0x100)}
    ret = IRBuilder()
    ret.insn_start(0x200)
    ret.goto_ptr(ret.const(0))
    blocks[0x200] = ret.finish(0x200, 1, [GuestInsn(0x200, bytes(1), "ret")])
    region = Region(0x100, blocks)
    assert region.back_edges() == set()
    assert region.back_edges(through_calls=True) == {(0x105, 0x100)}
