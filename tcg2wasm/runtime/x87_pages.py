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

The result is cached on disk per content (``cached_x87_pages``: a BLAKE2 digest
of the bytes and of this scanner, in the translation cache's directory), so a
program's second run neither imports iced-x86 nor decodes its text.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from pathlib import Path

from tcg2wasm import abi
from tcg2wasm.runtime.region_cache import cache_directory

__all__ = ["cached_x87_pages", "x87_codes", "x87_pages"]

#: Changes whenever what the scan finds may change (part of the cache key).
SCANNER_VERSION = b"x87-pages 1"


@functools.cache
def x87_codes() -> frozenset[int]:
    """Every x87 instruction form (iced's Code names start with F, plus fwait), fxsave/fxrstor included;
    femms is 3DNow!'s and leaves the x87 registers to MMX."""
    import iced_x86 as ix  # imported only when a scan runs (start-up of programs that never need one)

    return frozenset(getattr(ix.Code, name) for name in dir(ix.Code)
                     if (name.startswith("F") and name != "FEMMS") or name == "WAIT")


def cached_x87_pages(code: bytes, addr: int) -> set[int]:
    """``x87_pages(code, addr)``, from the on-disk cache when these bytes were scanned before."""
    directory = cache_directory()
    if directory is None:
        return x87_pages(code, addr)
    digest = hashlib.blake2b(SCANNER_VERSION + addr.to_bytes(8, "little") + code, digest_size=20).hexdigest()
    path = Path(directory) / "x87-pages" / digest
    with contextlib.suppress(OSError, ValueError):
        return {int(word) for word in path.read_text().split()}
    pages = x87_pages(code, addr)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(" ".join(str(p) for p in sorted(pages)) + "\n")
        tmp.replace(path)
    return pages


def x87_pages(code: bytes, addr: int) -> set[int]:
    """Page numbers (addr >> PAGE_BITS) of the x87 instructions a linear sweep of ``code`` at ``addr`` finds.

    An instruction that crosses a page boundary marks both pages.
    """
    import iced_x86 as ix

    pages: set[int] = set()
    decoder = ix.Decoder(64, code, ip=addr)
    ins = ix.Instruction()
    codes = x87_codes()
    while decoder.can_decode:
        decoder.decode_out(ins)
        if ins.code in codes:
            pages.add(ins.ip >> abi.PAGE_BITS)
            pages.add((ins.next_ip - 1) >> abi.PAGE_BITS)
    return pages
