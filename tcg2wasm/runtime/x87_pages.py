"""Which code pages hold x87 instructions: the pages Unicorn, as the cold tier, must not run.

The lifter keeps the x87 state (register stack, tag and status words) in IR
globals, exactly as the CPU computes it; Unicorn has its own x87 state, which
it neither shares with translated code nor computes as the CPU does (status
flags, NaN rules, pseudo-denormals, transcendentals: docs/x87.md). A block run
by Unicorn would read a stale register stack and leave its results where
translated code never looks. So the Unicorn tier maps these pages without
execute permission: a fetch there stops Unicorn before the instruction, and
the machine runs that code itself (interpreter, then compiled regions).

Found by a linear sweep with iced-x86 (~0.1 us an instruction: 50 ms for a
static glibc program's 480 KiB of text). A sweep can lose sync in data
embedded in code; x86 resynchronises within a few instructions, and an x87
instruction missed that way runs in Unicorn (a known, documented limit).
False positives only cost speed (a page run by our tiers instead).
"""

from __future__ import annotations

import iced_x86 as ix

from tcg2wasm import abi

__all__ = ["X87_CODES", "x87_pages"]

#: Every x87 instruction form (iced's Code names start with F, plus fwait), fxsave/fxrstor included;
#: femms is 3DNow!'s and leaves the x87 registers to MMX.
X87_CODES: frozenset[int] = frozenset(
    getattr(ix.Code, name) for name in dir(ix.Code)
    if (name.startswith("F") and name != "FEMMS") or name == "WAIT")


def x87_pages(code: bytes, addr: int) -> set[int]:
    """Page numbers (addr >> PAGE_BITS) of the x87 instructions a linear sweep of ``code`` at ``addr`` finds.

    An instruction that crosses a page boundary marks both pages.
    """
    pages: set[int] = set()
    decoder = ix.Decoder(64, code, ip=addr)
    ins = ix.Instruction()
    codes = X87_CODES
    while decoder.can_decode:
        decoder.decode_out(ins)
        if ins.code in codes:
            pages.add(ins.ip >> abi.PAGE_BITS)
            pages.add((ins.next_ip - 1) >> abi.PAGE_BITS)
    return pages
