"""Instruction forms from iced-x86's own opcode metadata: mnemonic -> the Codes that encode it in 64-bit mode.

Every iced ``Code`` valid in 64-bit mode with a legacy or VEX encoding and only operand kinds this
assembler can express becomes a :class:`Form`: its operand kinds (``OpCodeOperandKind``), which of
them the programmer writes, the memory operand's size and the prefixes it allows. The table is
built once, on first use (about 10 ms), from ``OpCodeInfo`` -- there is no hand-written opcode table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import cast

import iced_x86 as ix

K = ix.OpCodeOperandKind
Kind = ix.OpCodeOperandKind_  # the type (ix.OpCodeOperandKind is the module of constants)

#: A register written in the ModRM/opcode/VEX fields: the class and size (bytes) it takes.
REGISTER_KINDS: dict[Kind, tuple[str, int]] = {
    K.R8_REG: ("gpr", 1), K.R8_OPCODE: ("gpr", 1),
    K.R16_REG: ("gpr", 2), K.R16_RM: ("gpr", 2), K.R16_OPCODE: ("gpr", 2),
    K.R32_REG: ("gpr", 4), K.R32_RM: ("gpr", 4), K.R32_OPCODE: ("gpr", 4), K.R32_VVVV: ("gpr", 4),
    K.R64_REG: ("gpr", 8), K.R64_RM: ("gpr", 8), K.R64_OPCODE: ("gpr", 8), K.R64_VVVV: ("gpr", 8),
    K.XMM_REG: ("xmm", 16), K.XMM_RM: ("xmm", 16), K.XMM_VVVV: ("xmm", 16), K.XMM_IS4: ("xmm", 16),
    K.YMM_REG: ("ymm", 32), K.YMM_RM: ("ymm", 32), K.YMM_VVVV: ("ymm", 32), K.YMM_IS4: ("ymm", 32),
    K.MM_REG: ("mm", 8), K.MM_RM: ("mm", 8),
    K.SEG_REG: ("seg", 2), K.STI_OPCODE: ("st", 10),
}
#: ModRM r/m operands: a register of this class and size, or memory.
REG_OR_MEM_KINDS: dict[Kind, tuple[str, int]] = {
    K.R8_OR_MEM: ("gpr", 1), K.R16_OR_MEM: ("gpr", 2), K.R32_OR_MEM: ("gpr", 4), K.R64_OR_MEM: ("gpr", 8),
    K.R32_OR_MEM_MPX: ("gpr", 4), K.R64_OR_MEM_MPX: ("gpr", 8),
    K.XMM_OR_MEM: ("xmm", 16), K.YMM_OR_MEM: ("ymm", 32), K.MM_OR_MEM: ("mm", 8),
}
#: Operands that must be one particular register (``add al, imm8``, ``shl rax, cl``, ``fadd st0, st3``).
FIXED_REGISTER_KINDS: dict[Kind, ix.Register_] = {
    K.AL: ix.Register.AL, K.AX: ix.Register.AX, K.EAX: ix.Register.EAX, K.RAX: ix.Register.RAX,
    K.CL: ix.Register.CL, K.DX: ix.Register.DX, K.ST0: ix.Register.ST0,
    K.ES: ix.Register.ES, K.CS: ix.Register.CS, K.SS: ix.Register.SS, K.DS: ix.Register.DS,
    K.FS: ix.Register.FS, K.GS: ix.Register.GS,
}
MEMORY_KINDS = frozenset({K.MEM, K.MEM_OFFS})
#: Immediate kinds: the instruction's OpKind for it and, for a sign-extended one, the operand width.
IMMEDIATE_KINDS: dict[Kind, ix.OpKind_] = {
    K.IMM8: ix.OpKind.IMMEDIATE8, K.IMM8_CONST_1: ix.OpKind.IMMEDIATE8, K.IMM16: ix.OpKind.IMMEDIATE16,
    K.IMM32: ix.OpKind.IMMEDIATE32, K.IMM64: ix.OpKind.IMMEDIATE64,
    K.IMM8SEX16: ix.OpKind.IMMEDIATE8TO16, K.IMM8SEX32: ix.OpKind.IMMEDIATE8TO32,
    K.IMM8SEX64: ix.OpKind.IMMEDIATE8TO64, K.IMM32SEX64: ix.OpKind.IMMEDIATE32TO64,
}
#: Immediates wide enough to hold a label's address (checked when the address is known).
LABEL_IMMEDIATE_KINDS = frozenset({K.IMM32, K.IMM32SEX64, K.IMM64})
BRANCH_KINDS = frozenset({K.BR64_1, K.BR64_4})
#: The memory operands of string instructions (``movsb``): implied, never written.
STRING_KINDS: dict[Kind, ix.OpKind_] = {
    K.SEG_RSI: ix.OpKind.MEMORY_SEG_RSI, K.ES_RDI: ix.OpKind.MEMORY_ESRDI, K.SEG_RDI: ix.OpKind.MEMORY_SEG_RDI,
    K.SEG_RBX_AL: ix.OpKind.MEMORY,
}
SUPPORTED_KINDS = frozenset(
    REGISTER_KINDS.keys() | REG_OR_MEM_KINDS.keys() | FIXED_REGISTER_KINDS.keys() | MEMORY_KINDS
    | IMMEDIATE_KINDS.keys() | BRANCH_KINDS | STRING_KINDS.keys()
)
_ENCODINGS = frozenset({ix.EncodingKind.LEGACY, ix.EncodingKind.VEX})


@dataclass(frozen=True, slots=True)
class Form:
    """One iced ``Code``: an encoding of a mnemonic with a fixed list of operand kinds."""

    code: ix.Code_
    kinds: tuple[Kind, ...]      # every operand's OpCodeOperandKind, in iced's order
    written: tuple[int, ...]     # positions (in ``kinds``) of the operands the programmer writes
    mem_size: int                # bytes of the memory operand; 0 when there is none or it has no size (lea)
    is_branch: bool
    info: ix.OpCodeInfo

    @property
    def text(self) -> str:
        """iced's description of the form, e.g. ``ADD r/m64, imm8``."""
        return str(self.info.instruction_string)


def _written_positions(kinds: tuple[Kind, ...]) -> tuple[int, ...]:
    """String instructions imply their memory operands and accumulator (``stosb``, ``lodsq``, ``outsb``)."""
    if not any(k in STRING_KINDS for k in kinds):
        return tuple(range(len(kinds)))
    implied = STRING_KINDS.keys() | {K.AL, K.AX, K.EAX, K.RAX, K.DX}
    return tuple(i for i, k in enumerate(kinds) if k not in implied)


def _form(code: ix.Code_) -> Form | None:
    info = ix.OpCodeInfo(code)
    if not (info.mode64 and info.is_instruction and info.encoding in _ENCODINGS
            and info.decoder_option == ix.DecoderOptions.NONE):
        return None
    kinds = tuple(info.op_kinds())
    if not all(k in SUPPORTED_KINDS for k in kinds):
        return None
    mem_size = ix.MemorySizeInfo(info.memory_size).size if info.memory_size != ix.MemorySize.UNKNOWN else 0
    return Form(code, kinds, _written_positions(kinds), mem_size, any(k in BRANCH_KINDS for k in kinds), info)


@cache
def forms_by_mnemonic() -> dict[int, tuple[Form, ...]]:
    """iced ``Mnemonic`` -> its forms, in ``Code`` order (iced orders codes by opcode, as the manuals do)."""
    table: dict[int, list[Form]] = {}
    for code in sorted(v for k, v in vars(ix.Code).items() if not k.startswith("_") and isinstance(v, int)):
        form = _form(cast(ix.Code_, code))
        if form is not None:
            table.setdefault(form.info.mnemonic, []).append(form)
    return {m: tuple(fs) for m, fs in table.items()}


@cache
def mnemonic_names() -> dict[int, str]:
    """iced ``Mnemonic`` value -> its lower-case name."""
    return {v: k.lower() for k, v in vars(ix.Mnemonic).items() if not k.startswith("_") and isinstance(v, int)}


_CONDITION_ALIASES = {
    "z": "e", "nz": "ne", "c": "b", "nae": "b", "nc": "ae", "nb": "ae", "na": "be", "nbe": "a",
    "pe": "p", "po": "np", "nge": "l", "nl": "ge", "ng": "le", "nle": "g",
}
#: GNU as / Intel spellings iced-x86 names differently.
ALIASES: dict[str, str] = {
    **{f"{op}{alias}": f"{op}{cc}" for op in ("j", "set", "cmov") for alias, cc in _CONDITION_ALIASES.items()},
    "loopz": "loope", "loopnz": "loopne", "xlat": "xlatb", "movabs": "mov", "fwait": "wait",
    # GNU as: pushf/popf are the 64-bit ones; iced's PUSHF/POPF (66 9C/9D) are pushfw/popfw
    "pushf": "pushfq", "popf": "popfq", "pushfw": "pushf", "popfw": "popf", "iret": "iretd", "iretw": "iret",
}


@cache
def mnemonic_by_name() -> dict[str, int]:
    """Lower-case name (iced's or an alias) -> iced ``Mnemonic``, for the mnemonics that have forms."""
    forms = forms_by_mnemonic()
    names = {name: m for m, name in mnemonic_names().items() if m in forms}
    names.update({alias: names[target] for alias, target in ALIASES.items() if target in names})
    return names
