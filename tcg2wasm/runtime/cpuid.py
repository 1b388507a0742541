"""The CPU the guest sees through ``cpuid``: a fixed model advertising what the lifter covers.

x86-64's baseline (FPU, TSC, CX8, CMOV, MMX, FXSR, SSE, SSE2, and in the
extended leaves SYSCALL, NX, LM) is always advertised: every x86-64 program
may assume it, and what the lifter lacks of it still runs through the Unicorn
fallback. Beyond the baseline only features whose instructions are lifted are
advertised: the rest of x86-64-v2 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CX16,
LAHF/SAHF), LZCNT, BMI1, BMI2 and MOVBE; nothing of AVX, AES, XSAVE (leaf 7
has BMI1 and BMI2 only). So glibc's ifunc
resolvers pick their SSE2/SSSE3/SSE4 routines, which run as translated code.
(The MMX forms of the SSSE3 instructions are not lifted: they fall back.)

The cache leaves (2 and 4) describe 32 KiB L1 data and instruction caches
and a 2 MiB L2, so that libc's tuning thresholds come out sensible. Leaves
that are not in the table read as zeros.
"""

from __future__ import annotations

Regs = tuple[int, int, int, int]  # eax, ebx, ecx, edx

VENDOR = "GenuineIntel"
BRAND = "tcg2wasm x86-64-v2 translator"
MAX_BASIC_LEAF = 7
MAX_EXTENDED_LEAF = 0x8000_0008

# Leaf 1, edx.
FPU, TSC, CX8, CMOV, MMX, FXSR, SSE, SSE2 = 0, 4, 8, 15, 23, 24, 25, 26
# Leaf 1, ecx.
SSE3, SSSE3, CX16, SSE41, SSE42, MOVBE, POPCNT = 0, 9, 13, 19, 20, 22, 23
# Leaf 7 subleaf 0, ebx.
BMI1, BMI2 = 3, 8
# Leaf 0x80000001, ecx and edx.
LAHF_LM, ABM = 0, 5
SYSCALL, NX, LM = 11, 20, 29

#: Family 6, model 0x3c, stepping 4: the same signature as Unicorn's model.
SIGNATURE = 0x0003_06C4
CLFLUSH_LINE_QWORDS = 8  # leaf 1 ebx bits 8..15: 64-byte lines


def _bits(*positions: int) -> int:
    return sum(1 << p for p in positions)


def _ascii_regs(text: str, n_regs: int) -> list[int]:
    """``text`` as little-endian 32-bit words, NUL-padded to ``n_regs`` words."""
    raw = text.encode("ascii").ljust(4 * n_regs, b"\0")
    if len(raw) > 4 * n_regs:
        raise ValueError(f"cpuid string {text!r} is longer than {4 * n_regs} bytes")
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, 4 * n_regs, 4)]


def _cache_leaf4(cache_type: int, level: int, ways: int, sets: int, line: int = 64) -> Regs:
    """Deterministic cache parameters (leaf 4): eax type/level/self-init, ebx ways/line, ecx sets - 1."""
    eax = cache_type | (level << 5) | (1 << 8)
    ebx = ((ways - 1) << 22) | (line - 1)
    return eax, ebx, sets - 1, 0


def _vendor_leaf(max_leaf: int) -> Regs:
    ebx, edx, ecx = _ascii_regs(VENDOR, 3)  # the vendor string is spelled in ebx, edx, ecx
    return max_leaf, ebx, ecx, edx


def _brand_leaves() -> dict[int, Regs]:
    words = _ascii_regs(BRAND, 12)
    return {0x8000_0002 + i: tuple(words[4 * i:4 * i + 4]) for i in range(3)}  # type: ignore[misc]


def _table() -> dict[tuple[int, int], Regs]:
    table: dict[tuple[int, int], Regs] = {
        (0, 0): _vendor_leaf(MAX_BASIC_LEAF),
        (1, 0): (SIGNATURE, CLFLUSH_LINE_QWORDS << 8 | 1 << 16, _bits(SSE3, SSSE3, CX16, SSE41, SSE42, MOVBE, POPCNT),
                 _bits(FPU, TSC, CX8, CMOV, MMX, FXSR, SSE, SSE2)),
        (2, 0): (0x0000_0001, 0, 0, 0x002C_307D),  # descriptors: 32K L1d (2c), 32K L1i (30), 2M L2 (7d)
        (4, 0): _cache_leaf4(1, 1, ways=8, sets=64),  # 32 KiB L1 data
        (4, 1): _cache_leaf4(2, 1, ways=8, sets=64),  # 32 KiB L1 instruction
        (4, 2): _cache_leaf4(3, 2, ways=16, sets=2048),  # 2 MiB L2 unified
        (7, 0): (0, _bits(BMI1, BMI2), 0, 0),  # eax = 0: no further subleaves
        (MAX_EXTENDED_LEAF & 0x8000_0000, 0): (MAX_EXTENDED_LEAF, 0, 0, 0),
        (0x8000_0001, 0): (0, 0, _bits(LAHF_LM, ABM), _bits(SYSCALL, NX, LM)),
        (0x8000_0006, 0): (0, 0, 2048 << 16 | 0x8 << 12 | 64, 0),  # L2: 2048 KiB, 16-way, 64-byte lines
        (0x8000_0008, 0): (0x3028, 0, 0, 0),  # 40 physical, 48 virtual address bits
    }
    for leaf, regs in _brand_leaves().items():
        table[(leaf, 0)] = regs
    return table


#: (leaf, subleaf) -> (eax, ebx, ecx, edx); only leaves 4 and 7 depend on the subleaf.
CPUID_TABLE: dict[tuple[int, int], Regs] = _table()
_SUBLEAF_LEAVES = frozenset({4, 7})


def cpuid(leaf: int, subleaf: int = 0) -> Regs:
    """(eax, ebx, ecx, edx) of the fixed model for ``cpuid`` with eax = leaf, ecx = subleaf (32-bit values)."""
    leaf &= 0xFFFF_FFFF
    key = (leaf, subleaf & 0xFFFF_FFFF if leaf in _SUBLEAF_LEAVES else 0)
    return CPUID_TABLE.get(key, (0, 0, 0, 0))
