"""Operands: registers, labels, memory operands (``qword[rsi + rcx*8 - 8]``) and their arithmetic.

A memory operand is a size (``byte`` .. ``ymmword``, or ``ptr`` when the instruction implies it)
subscripted with an address: registers, ``reg * scale``, integers, and at most one label.
``qword[rip + table]`` is rip-relative; ``qword[table]`` and ``dword[table + rcx*4]`` use the
label's absolute address as a 32-bit displacement, as GNU as does. ``qword[fs: 0x28]`` adds a
segment override (Python's slice syntax standing in for the colon).
"""

from __future__ import annotations

from dataclasses import dataclass

import iced_x86 as ix

from tcg2wasm.asm.errors import AsmError, Where, caller


class Reg:
    """A register: its name, iced-x86 ``Register`` value, class and size in bytes."""

    __slots__ = ("name", "iced", "cls", "size")

    def __init__(self, name: str, iced: ix.Register_, cls: str, size: int) -> None:
        self.name, self.iced, self.cls, self.size = name, iced, cls, size

    def __repr__(self) -> str:
        return self.name

    def __add__(self, other: object) -> Address:
        return Address.of(self) + other

    def __radd__(self, other: object) -> Address:
        return Address.of(other) + self

    def __sub__(self, other: object) -> Address:
        return Address.of(self) - other

    def __mul__(self, scale: object) -> Address:
        return Address.scaled(self, scale)

    __rmul__ = __mul__


class Label:
    """A position in an Assembler's output, bound once with ``Assembler.bind``; usable before that."""

    __slots__ = ("name", "owner", "index", "address", "where")

    def __init__(self, name: str, owner: object, where: Where) -> None:
        self.name = name
        self.owner = owner  # the Assembler that creates it; only that one can bind it
        self.index: int | None = None  # item position once bound
        self.address: int | None = None  # set by the owner's assemble()
        self.where = where

    def __repr__(self) -> str:
        return self.name

    def __add__(self, offset: object) -> LabelRef | Address:
        return LabelRef(self, 0) + offset

    def __sub__(self, offset: object) -> LabelRef:
        return LabelRef(self, 0) - offset

    def __radd__(self, other: object) -> Address | LabelRef:
        return LabelRef(self, 0).__radd__(other)


@dataclass(frozen=True, slots=True)
class LabelRef:
    """``label + offset``: a branch target, an immediate, a data word or a displacement."""

    label: Label
    offset: int

    def __str__(self) -> str:
        off = self.offset
        return self.label.name + (f" + {off:#x}" if off > 0 else f" - {-off:#x}" if off < 0 else "")

    def __add__(self, other: object) -> LabelRef | Address:
        if isinstance(other, int) and not isinstance(other, bool):
            return LabelRef(self.label, self.offset + other)
        if isinstance(other, Reg | Address):
            return Address.of(self) + other
        raise AsmError(f"{self} + {other!r}: only an integer or a register can be added to a label", caller())

    def __sub__(self, other: object) -> LabelRef:
        if isinstance(other, int) and not isinstance(other, bool):
            return LabelRef(self.label, self.offset - other)
        raise AsmError(f"{self} - {other!r}: only an integer can be subtracted from a label", caller())

    def __radd__(self, other: object) -> Address | LabelRef:
        if isinstance(other, int) and not isinstance(other, bool):
            return LabelRef(self.label, self.offset + other)
        if isinstance(other, Reg):
            return Address.of(other) + self
        raise AsmError(f"{other!r} + {self}: not an address", caller())


def as_ref(value: Label | LabelRef) -> LabelRef:
    return LabelRef(value, 0) if isinstance(value, Label) else value


class Address:
    """base + index*scale + disp (+ label): the inside of a memory operand's brackets."""

    __slots__ = ("base", "index", "scale", "disp", "label")

    def __init__(self, base: Reg | None = None, index: Reg | None = None, scale: int = 1, disp: int = 0,
                 label: LabelRef | None = None) -> None:
        self.base, self.index, self.scale, self.disp, self.label = base, index, scale, disp, label

    @staticmethod
    def of(term: object) -> Address:
        return Address()._plus(term)

    @staticmethod
    def scaled(reg: Reg, scale: object) -> Address:
        if not isinstance(scale, int) or scale not in (1, 2, 4, 8):
            raise AsmError(f"{reg} * {scale!r}: the scale of an index register is 1, 2, 4 or 8", caller())
        return Address(index=reg, scale=scale)

    def __add__(self, other: object) -> Address:
        return self._copy()._plus(other)

    __radd__ = __add__

    def __sub__(self, other: object) -> Address:
        if isinstance(other, int) and not isinstance(other, bool):
            return self._copy()._plus(-other)
        raise AsmError(f"[{self}] - {other!r}: only an integer can be subtracted in an address", caller())

    def _copy(self) -> Address:
        return Address(self.base, self.index, self.scale, self.disp, self.label)

    def _plus(self, term: object) -> Address:
        """Add one term in place (the receiver is always a fresh copy); errors name the caller's line."""
        if isinstance(term, bool):
            raise AsmError(f"[{self}] + {term!r}: not an address term", caller())
        if isinstance(term, int):
            self.disp += term
        elif isinstance(term, Reg):
            self._add_reg(term, 1, as_index=False)
        elif isinstance(term, Address):
            if term.base is not None:
                self._add_reg(term.base, 1, as_index=False)
            if term.index is not None:
                self._add_reg(term.index, term.scale, as_index=True)
            self.disp += term.disp
            if term.label is not None:
                self._add_label(term.label)
        elif isinstance(term, Label | LabelRef):
            self._add_label(as_ref(term))
        else:
            raise AsmError(f"[{self}] + {term!r}: an address is made of registers, integers and a label", caller())
        return self

    def _add_reg(self, reg: Reg, scale: int, as_index: bool) -> None:
        if not as_index and self.base is None:
            self.base = reg
        elif self.index is None:
            self.index, self.scale = reg, scale
        else:
            raise AsmError(f"[{self} + {reg}]: an address has at most a base and an index register", caller())

    def _add_label(self, ref: LabelRef) -> None:
        if self.label is not None:
            raise AsmError(f"[{self} + {ref}]: an address refers to at most one label", caller())
        self.label = ref

    def __str__(self) -> str:
        parts = [p for p in (self.base and self.base.name, self.index and self._index_text(),
                             self.label and str(self.label)) if p]
        text = " + ".join(parts)
        if self.disp or not parts:
            sign = "-" if self.disp < 0 and parts else "+" if parts else ""
            value = abs(self.disp) if parts else self.disp
            text += f" {sign} {value:#x}" if parts else f"{value:#x}"
        return text

    def _index_text(self) -> str:
        assert self.index is not None
        return self.index.name if self.scale == 1 else f"{self.index.name}*{self.scale}"


class Mem:
    """A memory operand: size in bytes (0: implied by the instruction), address, segment override."""

    __slots__ = ("size", "size_name", "base", "index", "scale", "disp", "label", "segment")

    def __init__(self, size: int, size_name: str, addr: Address, segment: Reg | None) -> None:
        self.size, self.size_name, self.segment = size, size_name, segment
        self.base, self.index, self.scale, self.disp, self.label = (addr.base, addr.index, addr.scale, addr.disp,
                                                                     addr.label)

    @property
    def rip_relative(self) -> bool:
        return self.base is RIP

    def __str__(self) -> str:
        inner = str(Address(self.base, self.index, self.scale, self.disp, self.label))
        seg = f"{self.segment.name}:" if self.segment else ""
        return f"{self.size_name} ptr {seg}[{inner}]" if self.size_name else f"{seg}[{inner}]"

    __repr__ = __str__


class MemSize:
    """``qword[...]``: makes a memory operand of this size from an address expression."""

    __slots__ = ("name", "size")

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size

    def __repr__(self) -> str:
        return self.name or "ptr"

    def __getitem__(self, item: object) -> Mem:
        segment = None
        if isinstance(item, slice):
            if not (isinstance(item.start, Reg) and item.start.cls == "seg") or item.step is not None:
                raise AsmError(f"{self!r}[{item.start!r}: ...]: a segment override is es/cs/ss/ds/fs/gs", caller())
            segment, item = item.start, item.stop
        addr = item if isinstance(item, Address) else Address.of(item)
        problem = _address_problem(addr)
        if problem:
            raise AsmError(f"[{addr}]: {problem}", caller())
        return Mem(self.size, self.name, addr, segment)


def _address_problem(addr: Address) -> str:
    """What is wrong with the registers of an address (64-bit or 32-bit GPRs, rip as a lone base), or ''."""
    for reg, role in ((addr.base, "base"), (addr.index, "index")):
        if reg is None:
            continue
        if reg is RIP:
            if role == "index" or addr.index is not None:
                return "rip can only be the base of an address, with no index"
        elif reg.cls != "gpr" or reg.size not in (4, 8):
            return f"{reg} cannot address memory (use a 64-bit or 32-bit general register)"
    if addr.index is not None and addr.index.name in ("rsp", "esp"):
        return f"{addr.index} cannot be an index register"
    if addr.base is not None and addr.index is not None and addr.base.size != addr.index.size:
        return "base and index registers of different sizes"
    if addr.label is not None and addr.base is not None and addr.base is not RIP and addr.base.size != 8:
        return "a label needs 64-bit address registers"
    if not -(1 << 63) <= addr.disp < (1 << 64):
        return "the displacement does not fit in 64 bits"
    return ""


#: An operand as the instruction keeps it (a Label becomes ``LabelRef(label, 0)``).
Operand = Reg | Mem | int | LabelRef


def _regs(names: str, cls: str, size: int, iced_names: str | None = None) -> tuple[Reg, ...]:
    """Registers named ``names``; their iced-x86 names are ``iced_names`` (default: the same, upper case)."""
    ours = names.split()
    theirs = (iced_names or names).upper().split()
    return tuple(Reg(n, getattr(ix.Register, i), cls, size) for n, i in zip(ours, theirs, strict=True))


_R8_15 = " ".join(f"r{i}" for i in range(8, 16))
rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 = _regs(
    "rax rcx rdx rbx rsp rbp rsi rdi " + _R8_15, "gpr", 8)
eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d = _regs(
    "eax ecx edx ebx esp ebp esi edi " + " ".join(f"r{i}d" for i in range(8, 16)), "gpr", 4)
ax, cx, dx, bx, sp, bp, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w = _regs(
    "ax cx dx bx sp bp si di " + " ".join(f"r{i}w" for i in range(8, 16)), "gpr", 2)
al, cl, dl, bl, spl, bpl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b = _regs(
    "al cl dl bl spl bpl sil dil " + " ".join(f"r{i}b" for i in range(8, 16)), "gpr", 1,
    "al cl dl bl spl bpl sil dil " + " ".join(f"r{i}l" for i in range(8, 16)))
ah, ch, dh, bh = _regs("ah ch dh bh", "gpr", 1)
(xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
 xmm15) = _regs(" ".join(f"xmm{i}" for i in range(16)), "xmm", 16)
(ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14,
 ymm15) = _regs(" ".join(f"ymm{i}" for i in range(16)), "ymm", 32)
mm0, mm1, mm2, mm3, mm4, mm5, mm6, mm7 = _regs(" ".join(f"mm{i}" for i in range(8)), "mm", 8)
st0, st1, st2, st3, st4, st5, st6, st7 = _regs(" ".join(f"st{i}" for i in range(8)), "st", 10)
es, cs, ss, ds, fs, gs = _regs("es cs ss ds fs gs", "seg", 2)
(RIP,) = _regs("rip", "rip", 8)
rip = RIP

GPR8 = (al, cl, dl, bl, spl, bpl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b, ah, ch, dh, bh)
GPR16 = (ax, cx, dx, bx, sp, bp, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w)
GPR32 = (eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d)
GPR64 = (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15)
XMM = (xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15)
YMM = (ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15)
MMX = (mm0, mm1, mm2, mm3, mm4, mm5, mm6, mm7)
ST = (st0, st1, st2, st3, st4, st5, st6, st7)
SEGMENT = (es, cs, ss, ds, fs, gs)
#: Every register by name.
REGISTERS: dict[str, Reg] = {r.name: r for group in (GPR8, GPR16, GPR32, GPR64, XMM, YMM, MMX, ST, SEGMENT)
                             for r in group} | {"rip": RIP}

ptr = MemSize("", 0)
byte = MemSize("byte", 1)
word = MemSize("word", 2)
dword = MemSize("dword", 4)
qword = MemSize("qword", 8)
tword = MemSize("tbyte", 10)
xmmword = MemSize("xmmword", 16)
oword = xmmword
ymmword = MemSize("ymmword", 32)
