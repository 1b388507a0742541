"""Random but valid encodings of the instructions the lifter has (the instruction-stream fuzzer's alphabet).

Every iced-x86 ``Code`` of a mnemonic in ``tcg2wasm.frontend.x86_64.registry.SEMANTICS`` that exists
in 64-bit mode as a legacy encoding is an :class:`Template` read from its opcode string
(``"o64 01 /r"``, ``"66 0F 58 /r"``, ``"o64 B8+ro io"``...). :func:`encode` fills one in with random
prefixes (66, 67, REX, F2, F3, lock, segments), ModRM/SIB/displacement and immediates; the bytes are
decoded again with iced-x86 and kept only if they are a valid instruction whose mnemonic is lifted,
whose CPU features the host has, and whose form the lifter actually lifts (checked once per form by
lifting it). Whatever the bytes decode to counts -- a prefix that turns one instruction into another
lifted one is as good -- so the encoder need not be exact, only valid often enough.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import iced_x86 as ix

M = ix.Mnemonic
OK = ix.OpKind
#: Mnemonics left out of streams: their results depend on the host (cpuid, rdtsc) by design.
EXCLUDED = frozenset({M.CPUID, M.RDTSC})
#: Mnemonics that end a run at once: kept, but rare, so that most streams run to their end.
RARE = frozenset({M.SYSCALL, M.HLT, M.INT, M.INT3, M.UD2})
_IMM_BYTES = {"ib": 1, "iw": 2, "id": 4, "io": 8, "cb": 1, "cw": 2, "cd": 4}
_SEGMENT_PREFIXES = (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65)
#: iced CpuidFeature -> /proc/cpuinfo flag ("" = part of every x86-64 CPU).
_FEATURE_FLAGS = {
    "INTEL8086": "", "INTEL186": "", "INTEL286": "", "INTEL386": "", "INTEL486": "", "X64": "", "CPUID": "",
    "TSC": "tsc", "FPU": "fpu", "CMOV": "cmov", "CX8": "cx8", "CMPXCHG16B": "cx16", "SSE": "sse", "SSE2": "sse2",
    "MMX": "mmx", "FXSR": "fxsr", "POPCNT": "popcnt", "LZCNT": "abm", "SYSCALL": "syscall", "PAUSE": "sse2",
    "MULTIBYTENOP": "", "CET_IBT": "", "PREFETCHW": "3dnowprefetch", "CLFSH": "clflush", "BMI1": "bmi1",
    "BMI2": "bmi2", "SSE3": "pni", "SSSE3": "ssse3", "SSE4_1": "sse4_1", "SSE4_2": "sse4_2", "MOVBE": "movbe",
}


class Draw(Protocol):
    """Where random choices come from: ``random.Random`` adapted, or hypothesis' ``data.draw`` (shrinks)."""

    def int(self, lo: builtins.int, hi: builtins.int) -> builtins.int: ...  # inclusive

    def chance(self, p: float) -> bool: ...

    def choice(self, items: Sequence[Any]) -> Any: ...

    def bytes(self, n: builtins.int) -> builtins.bytes: ...


@dataclass(frozen=True)
class Template:
    code: int
    mnemonic: int
    mandatory: int | None  # 0x66 / 0xF2 / 0xF3 placed last among the legacy prefixes
    no_prefix: bool  # "NP": no 66/F2/F3 allowed
    o16: bool
    rex_w: bool
    a32: bool
    opcode: bytes  # table escapes and opcode bytes, the last with +r bits clear
    plus_reg: bool  # low 3 bits of the last opcode byte select a register
    modrm: str | None  # None, "r", or the fixed reg field "0".."7"
    imm: tuple[int, ...]  # immediate sizes in bytes, in order
    moffs: bool


def _parse(code: int, text: str) -> Template | None:
    info = ix.OpCodeInfo(code)  # type: ignore[arg-type]  # (iced_x86.Code is a module of ints)
    tokens = text.split()
    mandatory, no_prefix, o16, rex_w, a32, moffs = None, False, False, False, False, False
    opcode: list[int] = []
    plus_reg, modrm, imm = False, None, []
    for tok in tokens:
        if tok in ("o16", "o32", "o64"):
            o16, rex_w = tok == "o16", tok == "o64"
        elif tok in ("a16", "a32", "a64"):
            a32 = tok == "a32"
        elif tok == "NP":
            no_prefix = True
        elif tok in ("66", "F2", "F3") and not opcode:
            mandatory = int(tok, 16)
        elif tok == "REX.W":
            rex_w = True
        elif tok.startswith("/"):
            modrm = tok[1:]
        elif tok in _IMM_BYTES:
            imm.append(_IMM_BYTES[tok])
        elif tok == "mo":
            moffs = True
        elif "+r" in tok:
            opcode.append(int(tok.split("+")[0], 16))
            plus_reg = True
        else:
            try:
                opcode.append(int(tok, 16))
            except ValueError:
                return None  # a token this encoder does not know: leave the form out
    if not opcode:
        return None
    return Template(code, info.mnemonic, mandatory, no_prefix, o16, rex_w, a32, bytes(opcode), plus_reg, modrm,
                    tuple(imm), moffs)


@functools.cache
def host_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def host_has(ins: ix.Instruction) -> bool:
    """Whether this CPU runs ``ins`` (every CPUID feature it needs is in /proc/cpuinfo)."""
    names = _feature_names()
    for feature in ins.cpuid_features():
        flag = _FEATURE_FLAGS.get(names.get(feature, ""))
        if flag is None or (flag and flag not in host_flags()):
            return False
    return True


@functools.cache
def _feature_names() -> dict[int, str]:
    return {v: k for k, v in vars(ix.CpuidFeature).items() if not k.startswith("_")}


@functools.cache
def templates() -> dict[int, tuple[Template, ...]]:
    """Lifted mnemonic -> its legacy 64-bit encodings."""
    from tcg2wasm.frontend.x86_64.translate import SEMANTICS

    out: dict[int, list[Template]] = {}
    for code in range(1, 5000):
        try:
            info = ix.OpCodeInfo(code)  # type: ignore[arg-type]  # (iced_x86.Code is a module of ints)
        except ValueError:
            break
        if (info.mnemonic not in SEMANTICS or info.mnemonic in EXCLUDED or not info.mode64
                or info.encoding != ix.EncodingKind.LEGACY or not info.cpl3):
            continue
        tmpl = _parse(code, info.op_code_string)
        if tmpl is not None:
            out.setdefault(info.mnemonic, []).append(tmpl)
    return {m: tuple(ts) for m, ts in out.items()}


def _legacy_prefixes(draw: Draw, t: Template) -> list[int]:
    out: list[int] = []
    if t.o16 or (not t.no_prefix and t.mandatory is None and draw.chance(0.08)):
        out.append(0x66)
    if t.a32 or draw.chance(0.06):
        out.append(0x67)
    if draw.chance(0.08):
        out.append(draw.choice(_SEGMENT_PREFIXES))
    if draw.chance(0.04):
        out.append(0xF0)
    if not t.no_prefix and t.mandatory is None and draw.chance(0.05):
        out.append(draw.choice((0xF2, 0xF3)))
    if draw.chance(0.15):
        draw_order = [draw.int(0, 1000) for _ in out]
        out = [p for _, p in sorted(zip(draw_order, out, strict=True))]
    if t.mandatory is not None:
        out.append(t.mandatory)
    return out


def _modrm_bytes(draw: Draw, t: Template) -> list[int]:
    mod = 3 if draw.chance(0.45) else draw.int(0, 2)
    reg = draw.int(0, 7) if t.modrm is None or t.modrm == "r" else int(t.modrm)
    rm = draw.int(0, 7)
    out = [mod << 6 | reg << 3 | rm]
    if mod != 3 and rm == 4:
        out.append(draw.int(0, 255))  # SIB
        base = out[-1] & 7
        if mod == 0 and base == 5:
            out += list(draw.bytes(4))
    if mod == 1:
        out.append(draw.int(0, 255))
    elif mod == 2 or (mod == 0 and rm == 5):
        out += list(draw.bytes(4))
    return out


def encode(draw: Draw, t: Template) -> bytes:
    """Random bytes filling in template ``t`` (not necessarily a valid instruction: decode to check)."""
    out = _legacy_prefixes(draw, t)
    rex = 0x40 | draw.int(0, 7) if draw.chance(0.4) else 0
    if t.rex_w or (rex and draw.chance(0.3)):
        rex |= 0x48
    if rex:
        out.append(rex)
    opcode = list(t.opcode)
    if t.plus_reg:
        opcode[-1] |= draw.int(0, 7)
    out += opcode
    if t.modrm is not None:
        out += _modrm_bytes(draw, t)
    if t.moffs:
        out += list(draw.bytes(4 if 0x67 in out else 8))
    for size in t.imm:
        out += list(draw.bytes(size))
    return bytes(out)


def decode_one(raw: bytes, ip: int) -> ix.Instruction:
    return ix.Decoder(64, raw, ip=ip).decode()


def form_key(ins: ix.Instruction) -> tuple:
    """What decides whether the lifter lifts an instruction (its form), not its operand values."""
    regs = tuple(ix.RegisterInfo(ins.op_register(i)).size if ins.op_kind(i) == OK.REGISTER else 0
                 for i in range(ins.op_count))
    reg_kinds = tuple(_register_class(ins.op_register(i)) if ins.op_kind(i) == OK.REGISTER else 0
                      for i in range(ins.op_count))
    mem = (ins.memory_size, ix.RegisterInfo(ins.memory_base).size if ins.memory_base else 0,
           ix.RegisterInfo(ins.memory_index).size if ins.memory_index else 0, ins.segment_prefix)
    ops = tuple(ins.op_kind(i) for i in range(ins.op_count))
    return (ins.code, ops, regs, reg_kinds, mem, ins.has_lock_prefix, ins.has_rep_prefix, ins.has_repne_prefix)


def _register_class(reg: int) -> int:
    R = ix.Register
    if R.XMM0 <= reg <= R.XMM31:
        return 1
    if R.MM0 <= reg <= R.MM7:
        return 2
    if reg in (R.ES, R.CS, R.SS, R.DS, R.FS, R.GS):
        return 3
    if reg in (R.AH, R.CH, R.DH, R.BH):
        return 4
    return 5


@functools.lru_cache(maxsize=1 << 16)
def _lifted_form(key: tuple, raw: bytes) -> bool:
    from tcg2wasm.frontend.x86_64.translate import translate_block

    code = raw + b"\xcc" * 16
    base = 0x10000

    def fetch(addr: int, n: int) -> bytes:
        return code[addr - base:addr - base + n]

    tb = translate_block(fetch, base, max_insns=1)
    return bool(tb.insns) and tb.insns[0].lifted


def is_lifted(ins: ix.Instruction, raw: bytes) -> bool:
    """Whether the lifter lifts this form (instead of handing it to the Unicorn fallback); cached per form."""
    return _lifted_form(form_key(ins), raw)


def valid_lifted(raw: bytes, *, allow_66_branch: bool = False) -> ix.Instruction | None:
    """The decoded instruction if ``raw`` (plus padding) starts with a valid, lifted, host-supported one."""
    from tcg2wasm.frontend.x86_64.translate import SEMANTICS

    ins = decode_one(raw + bytes(15), 0x10000)
    if ins.is_invalid or ins.len > len(raw) or ins.mnemonic not in SEMANTICS or ins.mnemonic in EXCLUDED:
        return None
    if ins.flow_control != ix.FlowControl.NEXT and 0x66 in raw[:ins.len - 1] and not allow_66_branch:
        return None  # operand-size prefix on a branch: AMD and Intel differ (docs/testing.md, vendor differences)
    if reserved_form(ins, raw[:ins.len]):
        return None
    if not host_has(ins) or not is_lifted(ins, raw[:ins.len]):
        return None
    return ins


_LOOPS = frozenset({M.LOOP, M.LOOPE, M.LOOPNE, M.JRCXZ, M.JECXZ})


def reserved_form(ins: ix.Instruction, raw: bytes) -> bool:
    """Encodings the SDM calls reserved or whose meaning differs between vendors, left out of streams
    (docs/testing.md, vendor differences): a repeat prefix on loop/loopcc/jrcxz (on this AMD host
    ``f2 e1`` loope branches as loopne does), and movsxd with a 16-bit operand (Intel reads 2 bytes,
    this AMD host 4: it faults where Intel does not)."""
    prefixes = raw[:ins.len - 1]
    if ins.mnemonic in _LOOPS and (0xF2 in prefixes or 0xF3 in prefixes):
        return True
    return ins.mnemonic == M.MOVSXD and ins.op_count > 0 and ix.RegisterInfo(ins.op_register(0)).size == 2
