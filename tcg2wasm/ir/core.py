"""IR data structures: temps, labels, ops and translation blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from tcg2wasm.abi import GLOBAL_NAMES
from tcg2wasm.ir.ops import OPS, OpDef


@dataclass(frozen=True, slots=True)
class Temp:
    """A 64-bit IR value. Indices below len(GLOBAL_NAMES) are guest globals."""

    index: int

    def __hash__(self) -> int:  # the generated one hashes a tuple: too slow for the optimizer's sets
        return self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Temp) and other.index == self.index

    @property
    def is_global(self) -> bool:
        return self.index < len(GLOBAL_NAMES)

    @property
    def name(self) -> str:
        return GLOBAL_NAMES[self.index] if self.is_global else f"tmp{self.index - len(GLOBAL_NAMES)}"

    def __repr__(self) -> str:
        return self.name


GLOBALS: dict[str, Temp] = {name: Temp(i) for i, name in enumerate(GLOBAL_NAMES)}
N_GLOBALS = len(GLOBAL_NAMES)


@dataclass(slots=True)
class Op:
    """One IR op: ``args`` holds outputs, then inputs (Temps), then constants (ints)."""

    name: str
    args: list

    @property
    def opdef(self) -> OpDef:
        return OPS[self.name]

    @property
    def outputs(self) -> list[Temp]:
        return self.args[: self.opdef.n_out]

    @property
    def inputs(self) -> list[Temp]:
        d = self.opdef
        return self.args[d.n_out : d.n_out + d.n_in]

    @property
    def consts(self) -> list[int]:
        d = self.opdef
        return self.args[d.n_out + d.n_in :]


@dataclass(slots=True)
class GuestInsn:
    """A decoded guest instruction as the front end saw it (for printing and reports)."""

    pc: int
    raw: bytes
    asm: str
    lifted: bool = True


@dataclass(slots=True)
class TranslationBlock:
    """A straight-line run of guest instructions lifted into ops.

    ``ops`` may contain internal labels and conditional branches; every path
    ends in ``goto_tb``, ``goto_ptr`` or ``exit_tb``.
    """

    pc: int
    size: int
    insns: list[GuestInsn]
    ops: list[Op]
    n_temps: int  # temps used: indices N_GLOBALS .. N_GLOBALS + n_temps - 1
    n_labels: int
    fallback_insns: int = 0  # instructions this block hands to the fallback executor
    meta: dict = field(default_factory=dict)

    @property
    def n_insns(self) -> int:
        return sum(1 for i in self.insns if i.lifted)

    def unexecuted_from(self, pc: int) -> int:
        """Lifted instructions from the one at ``pc`` on: the budget an exit before ``pc`` gives back.

        A TB charges the instruction budget for all its lifted instructions on entry; an exit or
        fault in the middle refunds this many. The one rule of the interpreter, the wasm emitters
        and the runtime, so that every engine counts instructions exactly.
        """
        return sum(1 for insn in self.insns if insn.lifted and insn.pc >= pc)

    def successors(self) -> list[int]:
        """Constant guest pcs this block may continue at (goto_tb targets)."""
        seen: list[int] = []
        for op in self.ops:
            if op.name == "goto_tb" and op.args[0] not in seen:
                seen.append(op.args[0])
        return seen

    @property
    def end(self) -> int:
        return self.pc + self.size
