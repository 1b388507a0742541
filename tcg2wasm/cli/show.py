"""``tcg2wasm show CASE.json | PROG [--pc ADDR]``: a region block by block.

For each block of the region discovered from the entry (a case's rip, a program's ELF entry, or
``--pc``): the guest instructions, the ops before and after optimization, the op-count changes,
then the wasm text of the region compiled from the optimized blocks. A program is loaded as
``run`` loads it, but nothing runs: the region is what static discovery reaches from the entry,
not what a run with its profile would compile.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tcg2wasm.cases import Case, case_fetch
from tcg2wasm.cli.casecmd import load_all
from tcg2wasm.cli.common import EXIT_CODES_EPILOG, EXIT_OK, UsageError

SHOW_MAX_BLOCKS = 8
ELF_MAGIC = b"\x7fELF"

Fetch = Callable[[int, int], bytes]


def _translator(fetch: Fetch) -> Callable[[int], Any]:
    from tcg2wasm.errors import GuestFault
    from tcg2wasm.frontend.x86_64.translate import translate_block

    def translate(pc: int) -> Any:
        try:
            return translate_block(fetch, pc)
        except GuestFault:
            return None

    return translate


def _show_block(tb: Any, optimized: Any) -> list[str]:
    from tcg2wasm.ir import format_ops
    from tcg2wasm.opt import op_histogram

    lines = [f"== block 0x{tb.pc:x} ({tb.size} bytes, {len(tb.insns)} instructions, {tb.fallback_insns} fallback)"]
    lines += ["-- guest"] + [f"  0x{i.pc:x}: {i.raw.hex():<24} {i.asm}{'' if i.lifted else '   (fallback)'}"
                             for i in tb.insns]
    lines += [f"-- ops before optimization ({len(tb.ops)})", format_ops(tb.ops)]
    lines += [f"-- ops after optimization ({len(optimized.ops)})", format_ops(optimized.ops)]
    before, after = op_histogram(tb.ops), op_histogram(optimized.ops)
    changed = [f"{k} {before.get(k, 0)}->{after.get(k, 0)}" for k in sorted(set(before) | set(after))
               if before.get(k, 0) != after.get(k, 0)]
    lines.append(f"-- op counts {len(tb.ops)} -> {len(optimized.ops)}: {', '.join(changed) or 'unchanged'}")
    return lines


def discover(fetch: Fetch, entry: int, title: str, max_blocks: int = SHOW_MAX_BLOCKS) -> Any:
    """The region static discovery finds at ``entry`` (a UsageError naming ``title`` if there is none)."""
    from tcg2wasm.cfg.region import RegionError, discover_region

    try:
        return discover_region(_translator(fetch), entry, max_blocks=max_blocks)
    except RegionError as e:
        raise UsageError(f"{title}: {e}") from None


def show_region(fetch: Fetch, entry: int, title: str, *, max_blocks: int = SHOW_MAX_BLOCKS,
                wat: bool = True) -> Iterator[str]:
    """The lines for the region at ``entry`` of the code ``fetch`` reads; ``title`` names the source."""
    from tcg2wasm.backend.wasm import region_wat
    from tcg2wasm.cfg.region import Region
    from tcg2wasm.opt import optimize_tb

    region = discover(fetch, entry, title, max_blocks)
    optimized = {block_pc: optimize_tb(tb) for block_pc, tb in region.blocks.items()}
    yield f"# {title}: region at 0x{entry:x}, {len(region.blocks)} blocks"
    for block_pc, tb in region.blocks.items():
        yield from _show_block(tb, optimized[block_pc])
    if wat:
        yield "-- wat (region of the optimized blocks)"
        yield region_wat(Region(region.entry, optimized))


def show_case(case: Case, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
              wat: bool = True) -> Iterator[str]:
    """The lines ``tcg2wasm show`` prints for one case (the golden tests compare exactly these)."""
    try:
        yield from show_region(case_fetch(case), case.entry if pc is None else pc, f"case {case.name}",
                               max_blocks=max_blocks, wat=wat)
    except UsageError as e:
        raise UsageError(f"{case.source}: {e}") from None


def show_program(path: str | Path, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
                 wat: bool = True) -> Iterator[str]:
    """The lines for the region at ``pc`` (default: the ELF entry) of a static x86-64 program."""
    from tcg2wasm import Machine
    from tcg2wasm.linux.elf import load_elf

    memory = Machine(engine="interp")
    image = load_elf(memory, path)
    yield from show_region(memory.memory.fetch, image.entry if pc is None else pc, f"program {path}",
                           max_blocks=max_blocks, wat=wat)


def is_program(path: str | Path) -> bool:
    """An ELF file (shown as a program) rather than a case file."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False  # load_cases reports the unreadable file


def show_lines(path: str | Path, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
               wat: bool = True) -> Iterator[str]:
    if is_program(path):
        yield from show_program(path, pc=pc, max_blocks=max_blocks, wat=wat)
        return
    for case in load_all([str(path)]):
        yield from show_case(case, pc=pc, max_blocks=max_blocks, wat=wat)


def show_text(path: str | Path, *, pc: int | None = None, max_blocks: int = SHOW_MAX_BLOCKS,
              wat: bool = True) -> str:
    """Everything ``tcg2wasm show PATH`` prints to stdout, as one string."""
    return "".join(f"{line}\n" for line in show_lines(path, pc=pc, max_blocks=max_blocks, wat=wat))


def _source_region(path: str, pc: int | None, max_blocks: int) -> tuple[Any, str]:
    """The region ``show`` shows for a case file (its first case) or a program, and a title."""
    if is_program(path):
        from tcg2wasm import Machine
        from tcg2wasm.linux.elf import load_elf

        memory = Machine(engine="interp")
        image = load_elf(memory, path)
        title = f"program {Path(path).name}"
        return discover(memory.memory.fetch, image.entry if pc is None else pc, title, max_blocks), title
    case = load_all([path])[0]
    title = f"case {case.name}"
    return discover(case_fetch(case), case.entry if pc is None else pc, title, max_blocks), title


def write_graph(path: str, pc: int | None, max_blocks: int, out: str) -> None:
    """The region as DOT into ``out``; a .svg or .png name is drawn with Graphviz's dot."""
    import shutil
    import subprocess

    from tcg2wasm.cfg.graph import region_dot

    region, title = _source_region(path, pc, max_blocks)
    text = region_dot(region, title)
    target = Path(out)
    fmt = target.suffix.lstrip(".").lower()
    try:
        if fmt not in ("svg", "png"):
            target.write_text(text)
            return
        dot = shutil.which("dot")
        if dot is None:
            raise UsageError(f"{out}: drawing a .{fmt} needs Graphviz's dot (apt-get install graphviz); "
                             "a .dot file needs nothing")
        subprocess.run([dot, f"-T{fmt}", "-o", str(target)], input=text.encode(), check=True, capture_output=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot write: {e.strerror}") from None
    except subprocess.CalledProcessError as e:
        raise UsageError(f"{out}: dot failed: {e.stderr.decode(errors='replace').strip()}") from None


def cmd_show(args: argparse.Namespace) -> int:
    if args.graph:
        write_graph(args.source, args.pc, args.max_blocks, args.graph)
        return EXIT_OK
    for line in show_lines(args.source, pc=args.pc, max_blocks=args.max_blocks, wat=not args.no_wat):
        print(line)
    return EXIT_OK


def register(sub: Any) -> None:
    from tcg2wasm.cli.common import address, int_at_least

    p = sub.add_parser("show", help="show a region of a case or program: asm, ops before/after optimization, wat",
                       description=__doc__.split("\n\n", 1)[1].replace("``", ""), epilog=EXIT_CODES_EPILOG)
    p.add_argument("source", metavar="CASE.json|PROG", help="a case file, or a static x86-64 ELF program")
    p.add_argument("--pc", type=address, metavar="ADDR",
                   help="region entry (default: the case's rip or the program's ELF entry)")
    p.add_argument("--max-blocks", type=int_at_least(1), default=SHOW_MAX_BLOCKS,
                   help=f"blocks to discover from the entry (default {SHOW_MAX_BLOCKS})")
    p.add_argument("--no-wat", action="store_true", help="leave out the wasm text")
    p.add_argument("--graph", metavar="FILE", help="write the region's block graph instead: DOT, or drawn as "
                   "SVG/PNG by the file's suffix (needs Graphviz); entry, exits, loops and blocks translated "
                   "twice are marked")
    p.set_defaults(func=cmd_show)
