"""The fixed cpuid model: what it advertises, that it is backed by lifted instructions, and that Machine answers it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import iced_x86 as ix
import pytest
from asm import assemble

from tcg2wasm import Machine
from tcg2wasm.frontend.x86_64 import sem_loader  # noqa: F401  (fills the semantics table)
from tcg2wasm.frontend.x86_64.registry import SEMANTICS
from tcg2wasm.runtime import cpuid as model
from tcg2wasm.runtime.cpuid import CPUID_TABLE, cpuid

M = ix.Mnemonic
CODE = 0x10000
ROOT = Path(__file__).resolve().parent.parent

#: Instructions each advertised optional feature promises (baseline features are always advertised).
OPTIONAL_FEATURES = {
    ("leaf1.ecx", model.POPCNT): [M.POPCNT],
    ("leaf1.ecx", model.CX16): [M.CMPXCHG16B],
    ("ext1.ecx", model.LAHF_LM): [M.LAHF, M.SAHF],
    ("ext1.ecx", model.ABM): [M.LZCNT],
    ("leaf1.ecx", model.SSE3): [M.ADDSUBPD, M.ADDSUBPS, M.HADDPD, M.HADDPS, M.HSUBPD, M.HSUBPS, M.LDDQU, M.MOVDDUP,
                                M.MOVSHDUP, M.MOVSLDUP, M.FISTTP],
    ("leaf1.ecx", model.SSSE3): [M.PSHUFB, M.PALIGNR, M.PABSB, M.PABSW, M.PABSD, M.PSIGNB, M.PSIGNW, M.PSIGND,
                                 M.PHADDW, M.PHADDD, M.PHADDSW, M.PHSUBW, M.PHSUBD, M.PHSUBSW, M.PMADDUBSW,
                                 M.PMULHRSW],
    ("leaf1.ecx", model.SSE41): [
        M.BLENDPD, M.BLENDPS, M.BLENDVPD, M.BLENDVPS, M.DPPD, M.DPPS, M.EXTRACTPS, M.INSERTPS, M.MOVNTDQA,
        M.MPSADBW, M.PACKUSDW, M.PBLENDVB, M.PBLENDW, M.PCMPEQQ, M.PEXTRB, M.PEXTRD, M.PEXTRQ, M.PEXTRW,
        M.PHMINPOSUW, M.PINSRB, M.PINSRD, M.PINSRQ, M.PMAXSB, M.PMAXSD, M.PMAXUD, M.PMAXUW, M.PMINSB, M.PMINSD,
        M.PMINUD, M.PMINUW, M.PMOVSXBW, M.PMOVSXBD, M.PMOVSXBQ, M.PMOVSXWD, M.PMOVSXWQ, M.PMOVSXDQ, M.PMOVZXBW,
        M.PMOVZXBD, M.PMOVZXBQ, M.PMOVZXWD, M.PMOVZXWQ, M.PMOVZXDQ, M.PMULDQ, M.PMULLD, M.PTEST, M.ROUNDPD,
        M.ROUNDPS, M.ROUNDSD, M.ROUNDSS],
    ("leaf1.ecx", model.SSE42): [M.CRC32, M.PCMPESTRI, M.PCMPESTRM, M.PCMPISTRI, M.PCMPISTRM, M.PCMPGTQ],
    ("leaf1.ecx", model.MOVBE): [M.MOVBE],
    ("leaf7.ebx", model.BMI1): [M.ANDN, M.BEXTR, M.BLSI, M.BLSMSK, M.BLSR, M.TZCNT],
    ("leaf7.ebx", model.BMI2): [M.BZHI, M.MULX, M.PDEP, M.PEXT, M.RORX, M.SARX, M.SHLX, M.SHRX],
}
#: SSE2 integer instructions glibc's string routines are made of.
GLIBC_SSE2_CORE = [M.MOVDQA, M.MOVDQU, M.PCMPEQB, M.PMOVMSKB, M.PMINUB, M.PXOR, M.POR, M.PAND, M.MOVD, M.MOVQ,
                   M.PUNPCKLBW, M.PSHUFD, M.PSLLDQ, M.PSRLDQ, M.PSUBB]


def _ascii(*regs: int) -> str:
    return b"".join(r.to_bytes(4, "little") for r in regs).rstrip(b"\0").decode("ascii")


def _feature_regs() -> dict[str, int]:
    _, _, ecx1, edx1 = cpuid(1)
    _, _, ecx_ext, edx_ext = cpuid(0x8000_0001)
    return {"leaf1.ecx": ecx1, "leaf1.edx": edx1, "ext1.ecx": ecx_ext, "ext1.edx": edx_ext,
            "leaf7.ebx": cpuid(7, 0)[1]}


def test_vendor_brand_and_max_leaves() -> None:
    max_leaf, ebx, ecx, edx = cpuid(0)
    assert _ascii(ebx, edx, ecx) == "GenuineIntel"
    assert max_leaf == model.MAX_BASIC_LEAF
    assert cpuid(0x8000_0000)[0] == model.MAX_EXTENDED_LEAF
    brand = _ascii(*(r for leaf in (0x8000_0002, 0x8000_0003, 0x8000_0004) for r in cpuid(leaf)))
    assert brand == model.BRAND
    assert all(leaf <= model.MAX_BASIC_LEAF or model.MAX_EXTENDED_LEAF >= leaf >= 0x8000_0000
               for leaf, _ in CPUID_TABLE)


def test_baseline_x86_64_is_advertised() -> None:
    regs = _feature_regs()
    for bit in (model.FPU, model.TSC, model.CX8, model.CMOV, model.MMX, model.FXSR, model.SSE, model.SSE2):
        assert regs["leaf1.edx"] >> bit & 1, bit
    for bit in (model.SYSCALL, model.NX, model.LM):
        assert regs["ext1.edx"] >> bit & 1, bit


def test_nothing_beyond_x86_64_v2_is_advertised() -> None:
    ecx = _feature_regs()["leaf1.ecx"]
    pclmulqdq, fma, aes, xsave, osxsave, avx, f16c, rdrand = 1, 12, 25, 26, 27, 28, 29, 30
    for bit in (pclmulqdq, fma, aes, xsave, osxsave, avx, f16c, rdrand):
        assert not ecx >> bit & 1, bit
    assert cpuid(7, 0) == (0, 1 << model.BMI1 | 1 << model.BMI2, 0, 0)  # no AVX2, no ERMS...
    assert cpuid(7, 1) == (0, 0, 0, 0)
    assert cpuid(0xD, 0) == (0, 0, 0, 0)


def test_advertised_optional_features_are_lifted() -> None:
    regs = _feature_regs()
    known = {bit for (_, bit) in OPTIONAL_FEATURES}
    baseline = {model.FPU, model.TSC, model.CX8, model.CMOV, model.MMX, model.FXSR, model.SSE, model.SSE2}
    for (reg, bit), mnemonics in OPTIONAL_FEATURES.items():
        assert regs[reg] >> bit & 1, (reg, bit)
        assert all(m in SEMANTICS for m in mnemonics), (reg, bit)
    # no other bit is set in the feature registers that carry optional features
    assert {b for b in range(32) if regs["leaf1.ecx"] >> b & 1} <= known
    assert {b for b in range(32) if regs["ext1.ecx"] >> b & 1} <= known
    assert {b for b in range(32) if regs["leaf7.ebx"] >> b & 1} <= known
    assert {b for b in range(32) if regs["leaf1.edx"] >> b & 1} == baseline
    assert all(m in SEMANTICS for m in GLIBC_SSE2_CORE)


def test_cache_leaves_are_consistent() -> None:
    sizes = []
    for subleaf in range(8):
        eax, ebx, ecx, _ = cpuid(4, subleaf)
        if eax & 0x1F == 0:
            break
        ways, line = (ebx >> 22) + 1, (ebx & 0xFFF) + 1
        sizes.append(((eax >> 5) & 7, eax & 0x1F, ways * line * (ecx + 1)))
    assert sizes == [(1, 1, 32 << 10), (1, 2, 32 << 10), (2, 3, 2 << 20)]
    assert cpuid(0x8000_0006)[2] >> 16 == 2048  # L2 in KiB, as in leaf 4
    assert cpuid(1, 5) == cpuid(1, 0)  # only leaves 4 and 7 depend on the subleaf
    assert cpuid(0x4000_0000) == (0, 0, 0, 0)  # outside the table


@pytest.mark.parametrize("engine", ["wasm", "interp"])
@pytest.mark.parametrize(("leaf", "subleaf"), [(0, 0), (1, 0), (4, 2), (7, 0), (0x8000_0001, 0), (0x8000_0003, 9)])
def test_machine_answers_the_model(engine: str, leaf: int, subleaf: int) -> None:
    code = assemble(f"mov eax, {leaf}\nmov ecx, {subleaf}\nmov rbx, -1\nmov rdx, -1\ncpuid\nhlt", CODE)
    m = Machine(engine=engine)
    m.mem_map(CODE, 0x1000, "rx")
    m.mem_write(CODE, code)
    stop = m.run(CODE)
    assert stop.kind == "hlt"
    assert tuple(m.reg_read(r) for r in ("rax", "rbx", "rcx", "rdx")) == cpuid(leaf, subleaf)


def test_glibc_string_routines_run_lifted(tmp_path: Path) -> None:
    """With the model, glibc picks its SSE2/SSSE3/SSE4 routines; every instruction of the run is lifted."""
    stats = tmp_path / "stats.json"
    program = ROOT / "guests" / "bin" / "strings.glibc"
    cmd = [sys.executable, "-m", "tcg2wasm", "run", "--stats-json", str(stats), str(program), "one", "two"]
    env = os.environ | {"TCG2WASM_COLD_TIER": "interp"}  # count every instruction (Unicorn's are not)
    result = subprocess.run(cmd, capture_output=True, timeout=600, env=env)
    assert result.stdout == (ROOT / "guests" / "expected" / "strings.glibc.out").read_bytes()
    figures = json.loads(stats.read_text())
    assert figures["fallback_insns"] == 0 and figures["guest_insns"] > 100_000
