"""x86 flags the architecture leaves undefined after an instruction, per mnemonic.

Lockstep comparison masks these bits: after ``mul`` a real CPU, Unicorn and
tcg2wasm may all disagree on SF/ZF/AF/PF and all be right. The front end
teammates extend this table as they lift more instructions; keys are iced-x86
mnemonics in lower case (``Mnemonic`` names), values rflags bit masks.
"""

from __future__ import annotations

CF, PF, AF, ZF, SF, OF = 1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 7, 1 << 11
STATUS_FLAGS = CF | PF | AF | ZF | SF | OF

#: Undefined rflags bits after an instruction, whatever its operands.
UNDEFINED_FLAGS: dict[str, int] = {
    # multiply: CF and OF defined, the rest not
    "mul": SF | ZF | AF | PF,
    "imul": SF | ZF | AF | PF,
    # divide: all six status flags
    "div": STATUS_FLAGS,
    "idiv": STATUS_FLAGS,
    # logic: AF (CF and OF are cleared)
    "and": AF,
    "or": AF,
    "xor": AF,
    "test": AF,
    "andn": AF | PF,
    # shifts and rotates: AF always; OF unless the count is 1 (masked always: the count is often a register)
    "shl": AF | OF,
    "sal": AF | OF,
    "shr": AF | OF,
    "sar": AF | OF,
    "shld": AF | OF | CF,  # CF too when count > operand size
    "shrd": AF | OF | CF,
    "rol": OF,
    "ror": OF,
    "rcl": OF,
    "rcr": OF,
    # bit scans: only ZF defined
    "bsf": CF | PF | AF | SF | OF,
    "bsr": CF | PF | AF | SF | OF,
    # bit tests: only CF defined
    "bt": OF | SF | AF | PF,
    "bts": OF | SF | AF | PF,
    "btr": OF | SF | AF | PF,
    "btc": OF | SF | AF | PF,
    # counts: lzcnt/tzcnt define CF and ZF, popcnt clears the rest
    "lzcnt": OF | SF | AF | PF,
    "tzcnt": OF | SF | AF | PF,
    # BMI
    "bextr": AF | SF | PF,
    "blsi": AF | PF,
    "blsmsk": AF | PF,
    "blsr": AF | PF,
    "bzhi": AF | PF,
    # BCD adjust
    "aaa": OF | SF | ZF | PF,
    "aas": OF | SF | ZF | PF,
    "aam": OF | AF | CF,
    "aad": OF | AF | CF,
    "daa": OF,
    "das": OF,
}


def undefined_mask(mnemonics: list[str] | tuple[str, ...]) -> int:
    """Union of undefined bits over a run of instructions (conservative for a block)."""
    mask = 0
    for m in mnemonics:
        mask |= UNDEFINED_FLAGS.get(m.lower(), 0)
    return mask
