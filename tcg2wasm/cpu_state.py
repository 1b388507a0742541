"""The x86-64 guest state as the translator models it: register names, flags, reset values.

The IR's *globals* are this state (``GLOBAL_NAMES``, in index order); the runtime
keeps them in the state block (``tcg2wasm.abi``), the front end reads and
writes them, and the register API names them. Nothing here depends on how or
where the state is stored.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1  # guest registers and addresses are 64-bit

GPR_NAMES: tuple[str, ...] = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)
FLAG_NAMES: tuple[str, ...] = ("cf", "pf", "af", "zf", "sf", "of", "df")
FLAG_BITS: dict[str, int] = {"cf": 0, "pf": 2, "af": 4, "zf": 6, "sf": 7, "df": 10, "of": 11}
SEG_BASE_NAMES: tuple[str, ...] = ("fs_base", "gs_base")
#: The 16 xmm registers, each as two i64 halves (the IR has 64-bit values only).
XMM_NAMES: tuple[str, ...] = tuple(f"xmm{i}" for i in range(16))
XMM_HALF_NAMES: tuple[str, ...] = tuple(f"{x}_{half}" for x in XMM_NAMES for half in ("lo", "hi"))
MXCSR_DEFAULT = 0x1F80  # all exceptions masked, round to nearest: what Linux starts a process with
#: x87 FPU control word as Linux starts a process: exceptions masked, 64-bit precision, round to nearest.
FPCW_DEFAULT = 0x037F
#: Control-word bits fldcw keeps (IM..PM, PC, RC, X); of the reserved ones bit 6 reads as 1 and
#: bits 7, 13-15 as 0 on the CPU (Unicorn keeps all 16 bits as loaded: docs/sse.md, "x87").
FPCW_KEPT = 0x1F3F
FPCW_ONES = 0x0040


def fpcw_as_loaded(value: int) -> int:
    """The control word the CPU holds after loading ``value`` (what fnstcw then stores)."""
    return (value & FPCW_KEPT) | FPCW_ONES


#: The x87 register stack *by stack position* (st0 is the top, whatever TOP is): each register as
#: its 64-bit significand (``_lo``) and its sign and exponent (``_hi``, 16 bits). Push and pop move
#: the values; TOP itself is kept in the status word for what stores it (docs/x87.md).
X87_REG_NAMES: tuple[str, ...] = tuple(f"st{i}" for i in range(8))
X87_HALF_NAMES: tuple[str, ...] = tuple(f"{r}_{half}" for r in X87_REG_NAMES for half in ("lo", "hi"))
#: fpsw: the status word with TOP, C0-C3, SF and the exception flags; ES and B are not kept (they
#: are computed from the flags and the masks when the word is read). fptag: bit i set when st(i) is
#: in use (by stack position). fpip/fpdp/fpop: the last non-control instruction's address, its
#: memory operand's address and its 11-bit opcode (fnstenv, fnsave and fxsave store them).
X87_STATE_NAMES: tuple[str, ...] = ("fpsw", "fptag", "fpip", "fpdp", "fpop")

#: IR globals in index order: the guest state that translated code reads and writes.
GLOBAL_NAMES: tuple[str, ...] = (GPR_NAMES + FLAG_NAMES + SEG_BASE_NAMES + XMM_HALF_NAMES + ("mxcsr", "fpcw")
                                 + X87_HALF_NAMES + X87_STATE_NAMES)
GLOBAL_INDEX: dict[str, int] = {name: i for i, name in enumerate(GLOBAL_NAMES)}

RFLAGS_FIXED = 0x2  # bit 1 of rflags always reads as one
