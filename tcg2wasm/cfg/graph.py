"""A region as a graph: DOT text of its blocks and edges, for ``tcg2wasm show --graph``.

Marked in the drawing: the entry (double border), exits (edges to pcs outside the
region, to dashed boxes), loops (back edges, bold: an edge to a block that is
its own ancestor in the discovery order), and blocks whose bytes overlap another
block's -- the same instructions translated twice, e.g. a block that starts in
the middle of a longer one (filled).
"""

from __future__ import annotations

from tcg2wasm.cfg.region import Region

__all__ = ["region_dot", "twice_translated"]


def twice_translated(region: Region) -> set[int]:
    """Pcs of blocks whose byte range overlaps another block's."""
    spans = sorted((tb.pc, tb.end) for tb in region.blocks.values())
    out: set[int] = set()
    for (start, end), (next_start, _next_end) in zip(spans, spans[1:], strict=False):
        if next_start < end:
            out.update({start, next_start})
    return out


def region_dot(region: Region, title: str = "region") -> str:
    """The DOT text of ``region``."""
    order = region.reachable()
    twice = twice_translated(region)
    back = region.back_edges()
    lines = [f'digraph "{title}" {{', '  node [shape=box, fontname="monospace"];',
             f'  label="{title}: region at 0x{region.entry:x}, {len(order)} blocks"; labelloc=t;']
    exits: set[int] = set()
    for pc in order:
        tb = region.blocks[pc]
        attrs = ["peripheries=2"] if pc == region.entry else []
        if pc in twice:
            attrs += ["style=filled", 'fillcolor="#ffd7a8"']
        label = f"0x{pc:x}\\n{tb.n_insns} insns, {tb.size} bytes" + ("\\ntranslated twice" if pc in twice else "")
        lines.append(f'  "0x{pc:x}" [label="{label}"{"".join(", " + a for a in attrs)}];')
        for succ in tb.successors():
            if succ in region.blocks:
                style = " [style=bold, color=red, label=loop]" if (pc, succ) in back else ""
                lines.append(f'  "0x{pc:x}" -> "0x{succ:x}"{style};')
            else:
                exits.add(succ)
                lines.append(f'  "0x{pc:x}" -> "exit 0x{succ:x}";')
    lines += [f'  "exit 0x{pc:x}" [style=dashed];' for pc in sorted(exits)]
    lines.append("}")
    return "\n".join(lines) + "\n"
