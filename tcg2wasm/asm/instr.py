"""One instruction: the iced-x86 ``Code`` chosen for a mnemonic and its operands, and its encoding.

The choice uses iced's metadata (:mod:`tcg2wasm.asm.forms`): every form of the mnemonic whose
operand kinds accept the operands (register class and size, memory size, immediate range) is built
and encoded, a form whose bytes do not decode back to it is dropped (``xchg eax, eax`` as ``90`` is
``nop``), and the shortest wins, ties going to the lowest ``Code`` -- the opcode-table order, which
is also what GNU as picks among equal-length encodings (``01 /r`` for ``add r/m, r``; ``B8+r`` for
``mov r32, imm32``; ``83 /0 ib`` when the immediate fits a sign-extended byte). A branch keeps its
short and near forms; the assembler's layout picks one once the distance is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache

import iced_x86 as ix

from tcg2wasm.asm.errors import AsmError, Where
from tcg2wasm.asm.forms import (
    BRANCH_KINDS,
    FIXED_REGISTER_KINDS,
    IMMEDIATE_KINDS,
    LABEL_IMMEDIATE_KINDS,
    MEMORY_KINDS,
    REG_OR_MEM_KINDS,
    REGISTER_KINDS,
    STRING_KINDS,
    Form,
    K,
    Kind,
    forms_by_mnemonic,
    mnemonic_by_name,
    mnemonic_names,
)
from tcg2wasm.asm.operands import RIP, Address, Label, LabelRef, Mem, MemSize, Operand, Reg, as_ref, st0, st1

#: Where instructions are encoded while their form is chosen (branches and rip-relative operands aim here).
TRIAL_IP = 0x10_0000
U64 = (1 << 64) - 1
PREFIXES = {"rep": "rep", "repe": "repe", "repz": "repe", "repne": "repne", "repnz": "repne", "lock": "lock"}
#: (lowest, highest) value an immediate of each unsigned kind accepts, negative ones as two's complement.
_IMM_RANGES: dict[Kind, int] = {K.IMM8: 8, K.IMM16: 16, K.IMM32: 32, K.IMM64: 64}
#: Sign-extended immediates: (operand width, immediate width).
_SEX_WIDTHS: dict[Kind, tuple[int, int]] = {
    K.IMM8SEX16: (16, 8), K.IMM8SEX32: (32, 8), K.IMM8SEX64: (64, 8), K.IMM32SEX64: (64, 32),
}
Resolve = Callable[[LabelRef, Where], int]
#: An instruction's encodable forms (shortest first), their sizes, and the first one's bytes.
Encodings = tuple[tuple[ix.Instruction, ...], tuple[int, ...], bytes]


def immediate_fits(kind: Kind, value: int) -> bool:
    if kind == K.IMM8_CONST_1:
        return value == 1
    if kind in _IMM_RANGES:
        bits = _IMM_RANGES[kind]
        return -(1 << (bits - 1)) <= value < (1 << bits)
    width, bits = _SEX_WIDTHS[kind]
    if not -(1 << (width - 1)) <= value < (1 << width):
        return False
    signed = _signed(value & ((1 << width) - 1), width)
    return -(1 << (bits - 1)) <= signed < (1 << (bits - 1))


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


#: What form matching needs to know of an operand (hashable, so that matches are cached per shape):
#: ("reg", class, size, iced register), ("mem", size, usable as moffs), ("label",), or
#: ("imm", the immediate kinds the value fits, whether it is a possible branch target).
Shape = tuple[object, ...]


def operand_shape(op: Operand) -> Shape:
    if isinstance(op, Reg):
        return ("reg", op.cls, op.size, op.iced)
    if isinstance(op, Mem):
        return ("mem", op.size, op.base is None and op.index is None and op.label is None)
    if isinstance(op, LabelRef):
        return ("label",)
    return ("imm", frozenset(k for k in IMMEDIATE_KINDS if immediate_fits(k, op)), 0 <= op <= U64)


def _accepts(kind: Kind, shape: Shape, form: Form) -> bool:
    """Whether an operand of this form's ``kind`` can be an operand of this shape."""
    what = shape[0]
    if what == "reg":
        want = REGISTER_KINDS.get(kind) or REG_OR_MEM_KINDS.get(kind)
        if want is not None:
            return want == shape[1:3]
        return FIXED_REGISTER_KINDS.get(kind) == shape[3]
    if what == "mem":
        if kind not in REG_OR_MEM_KINDS and kind not in MEMORY_KINDS:
            return False
        size = shape[1]
        if form.mem_size and size and form.mem_size != size:
            return False
        return kind != K.MEM_OFFS or bool(shape[2])
    if what == "label":
        return kind in BRANCH_KINDS or kind in LABEL_IMMEDIATE_KINDS
    if kind in BRANCH_KINDS:
        return bool(shape[2])
    return kind in shape[1]  # type: ignore[operator]


class Instr:
    """An instruction value: mnemonic, operands, prefix, the line that wrote it, and its encodings.

    ``choices`` holds one iced ``Instruction`` (a branch: its short and near forms, shortest first);
    ``fixed`` its bytes when they do not depend on where it is placed.
    """

    __slots__ = ("mnemonic", "operands", "prefix", "where", "choices", "sizes", "fixed", "target", "mem",
                 "imm_label", "movabs")

    def __init__(self, name: str, operands: Sequence[object], prefix: str | None, where: Where) -> None:
        self.where = where
        self.prefix = prefix
        self.operands = tuple(_operand(op, name, where) for op in operands)
        self.mnemonic = _mnemonic(name, self, where)
        self.movabs = name.lower() == "movabs"  # GNU as: the 64-bit immediate / 64-bit address forms only
        self.target: LabelRef | int | None = None
        self.mem: Mem | None = None  # a memory operand whose displacement depends on placement
        self.imm_label: LabelRef | None = None  # an immediate that is a label's address
        self.choices, self.sizes, first = self._choose()
        placed = self.target is not None or self.mem is not None or self.imm_label is not None
        self.fixed: bytes | None = None if placed else first

    # -- choosing the form ------------------------------------------------------------------------

    def _choose(self) -> Encodings:
        """The encodings of the best operand order that has forms (``xchg rax, rdx`` is ``xchg rdx, rax``)."""
        options = [(ops, forms) for ops in _operand_orders(self.mnemonic, self.operands)
                   if (forms := _forms_taking(self.mnemonic, ops))]
        if not options:
            raise AsmError(f"{self}: no form of {self.name} takes these operands; it has: {self._forms_text()}",
                           self.where)
        results: list[tuple[tuple[Operand, ...], Encodings]] = []
        first_error: AsmError | None = None
        for ops, forms in options:
            self.operands = ops
            try:
                results.append((ops, self._encodings(self._usable(forms))))
            except AsmError as exc:
                first_error = first_error or exc
        if not results:
            assert first_error is not None
            raise first_error
        self.operands, encoded = min(results, key=lambda r: r[1][1][0])  # the shortest; ties: as written
        return encoded

    def _usable(self, forms: tuple[Form, ...]) -> tuple[Form, ...]:
        """The forms the prefix allows, of the default operand size, with an unambiguous memory size."""
        ops = self.operands
        if self.prefix is not None:
            forms = tuple(f for f in forms if self._prefix_allowed(f))
            if not forms:
                raise AsmError(f"{self}: {self.prefix} cannot prefix this instruction", self.where)
        if self.movabs:
            forms = tuple(f for f in forms if K.IMM64 in f.kinds or K.MEM_OFFS in f.kinds)
            if not forms:
                raise AsmError(f"{self}: movabs takes a 64-bit immediate or a 64-bit absolute address", self.where)
        forms = _default_operand_size(forms, ops)
        mem = next((op for op in ops if isinstance(op, Mem)), None)
        if mem is not None and not mem.size and len({f.mem_size for f in forms}) > 1:
            sizes = "/".join(sorted({_SIZE_NAMES.get(f.mem_size, f"{f.mem_size}-byte") for f in forms}))
            raise AsmError(f"{self}: the memory operand's size is ambiguous: write {sizes}[...]", self.where)
        return forms

    def _prefix_allowed(self, form: Form) -> bool:
        info = form.info
        if self.prefix == "lock":
            return bool(info.can_use_lock_prefix) and any(isinstance(op, Mem) for op in self.operands)
        return bool(info.can_use_repne_prefix if self.prefix == "repne" else info.can_use_rep_prefix)

    def _forms_text(self) -> str:
        texts = list(dict.fromkeys(f.text for f in forms_by_mnemonic()[self.mnemonic]))
        more = f"; ... ({len(texts) - 12} more)" if len(texts) > 12 else ""
        return "; ".join(texts[:12]) + more

    def _encodings(self, forms: tuple[Form, ...]) -> Encodings:
        """The encodable forms, shortest first (a non-branch keeps only the first), and the first's bytes."""
        encoder = ix.Encoder(64)
        found: list[tuple[int, int, ix.Instruction, bytes]] = []
        error = ""
        for order, form in enumerate(forms):
            ins = self._build(form)
            try:
                encoder.encode(ins, TRIAL_IP)
            except ValueError as exc:
                error = str(exc)
                encoder.take_buffer()  # a failed encode can leave bytes behind
                continue
            data = encoder.take_buffer()
            if _decodes_as(data, form):
                found.append((len(data), order, ins, data))
            else:
                error = "its only encoding here decodes as another instruction"
        if not found:
            raise AsmError(f"{self}: cannot be encoded: {error}", self.where)
        found.sort(key=lambda t: (t[0], t[1]))
        if not forms[found[0][1]].is_branch:
            found = found[:1]
        return tuple(f[2] for f in found), tuple(f[0] for f in found), found[0][3]

    # -- building iced instructions ---------------------------------------------------------------

    def _build(self, form: Form) -> ix.Instruction:
        ins = ix.Instruction.create(form.code)
        written = dict(zip(form.written, self.operands, strict=True))
        seen_immediate = False
        for pos, kind in enumerate(form.kinds):
            op = written.get(pos)
            if op is None:
                _set_implied(ins, pos, kind)
            elif isinstance(op, Reg):
                ins.set_op_kind(pos, ix.OpKind.REGISTER)
                ins.set_op_register(pos, op.iced)
            elif isinstance(op, Mem):
                self._set_memory(ins, pos, op, kind)
            elif kind in BRANCH_KINDS:
                ins.set_op_kind(pos, ix.OpKind.NEAR_BRANCH64)
                ins.near_branch64 = op if isinstance(op, int) else TRIAL_IP
                self.target = op
            else:
                self._set_immediate(ins, pos, kind, op, seen_immediate)
                seen_immediate = True
        if self.prefix is not None:
            _set_prefix(ins, self.prefix)
        return ins

    def _set_memory(self, ins: ix.Instruction, pos: int, mem: Mem, kind: Kind) -> None:
        ins.set_op_kind(pos, ix.OpKind.MEMORY)
        ins.memory_base = mem.base.iced if mem.base else ix.Register.NONE
        ins.memory_index = mem.index.iced if mem.index else ix.Register.NONE
        ins.memory_index_scale = mem.scale
        if mem.segment is not None:
            ins.segment_prefix = mem.segment.iced
        wide = 4 if any(r is not None and r.size == 4 for r in (mem.base, mem.index)) else 8
        if mem.rip_relative:
            ins.memory_displacement, ins.memory_displ_size = TRIAL_IP, 8
            self.mem = mem
        elif mem.label is not None:
            ins.memory_displacement, ins.memory_displ_size = 0, wide  # always disp32: the value comes later
            self.mem = mem
        else:
            ins.memory_displacement = mem.disp & U64
            absolute = mem.base is None or kind == K.MEM_OFFS
            ins.memory_displ_size = wide if absolute else 1 if mem.disp else 0

    def _set_immediate(self, ins: ix.Instruction, pos: int, kind: Kind, op: int | LabelRef, second: bool) -> None:
        op_kind = IMMEDIATE_KINDS[kind]
        if op_kind == ix.OpKind.IMMEDIATE8 and second:
            op_kind = ix.OpKind.IMMEDIATE8_2ND
        ins.set_op_kind(pos, op_kind)
        if isinstance(op, LabelRef):
            self.imm_label = op
            op = 0
        ins.set_immediate_u64(pos, op & U64)

    # -- final encoding ---------------------------------------------------------------------------

    def encode_at(self, encoder: ix.Encoder, ip: int, choice: int, resolve: Resolve) -> bytes:
        """The bytes at ``ip``, labels resolved by ``resolve``, using ``choices[choice]``."""
        if self.fixed is not None:
            return self.fixed
        ins = self.choices[choice]
        if self.target is not None:
            ins.near_branch64 = self._branch_target(ins, ip + self.sizes[choice], resolve)
        if self.mem is not None:
            ins.memory_displacement = self._displacement(ip + self.sizes[choice], resolve)
        if self.imm_label is not None:
            ref = self.imm_label
            info = ix.OpCodeInfo(ins.code)
            pos, kind = next((i, k) for i, k in enumerate(info.op_kinds()) if k in LABEL_IMMEDIATE_KINDS)
            value = resolve(ref, self.where)
            if not immediate_fits(kind, value):
                raise AsmError(f"{self}: the address of {ref} ({value:#x}) does not fit this form's "
                               f"{_IMM_TEXT.get(kind, '')} immediate", self.where)
            ins.set_immediate_u64(pos, value)
        data = self._encode(encoder, ins, ip)
        if len(data) != self.sizes[choice]:  # a form's length depends on operands only, never on ip
            raise AsmError(f"{self}: internal error: {len(data)} bytes at {ip:#x}, {self.sizes[choice]} "
                           "when the form was chosen", self.where)
        return data

    def _branch_target(self, ins: ix.Instruction, next_ip: int, resolve: Resolve) -> int:
        assert self.target is not None
        target = self.target if isinstance(self.target, int) else resolve(self.target, self.where)
        distance = target - next_ip
        if ix.OpCodeInfo(ins.code).op0_kind == K.BR64_1 and not -128 <= distance <= 127:
            raise AsmError(f"{self}: the target is {distance:+d} bytes away; {self.name} reaches -128..+127 only",
                           self.where)
        return target

    def _displacement(self, next_ip: int, resolve: Resolve) -> int:
        mem = self.mem
        assert mem is not None
        if mem.rip_relative:
            base = resolve(mem.label, self.where) if mem.label is not None else next_ip
            return (base + mem.disp) & U64
        assert mem.label is not None
        value = (resolve(mem.label, self.where) + mem.disp) & U64
        if not (value < 1 << 31 or value >= (1 << 64) - (1 << 31)):
            raise AsmError(f"{self}: the absolute address {value:#x} does not fit a 32-bit displacement "
                           "(address it rip-relative: [rip + label])", self.where)
        return value

    def _encode(self, encoder: ix.Encoder, ins: ix.Instruction, ip: int) -> bytes:
        try:
            encoder.encode(ins, ip)
        except ValueError as exc:
            encoder.take_buffer()
            raise AsmError(f"{self}: cannot be encoded at {ip:#x}: {exc}", self.where) from None
        return encoder.take_buffer()

    # -- text ---------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """iced's name of the mnemonic, lower case (``je`` for ``jz``)."""
        return mnemonic_names()[self.mnemonic] if hasattr(self, "mnemonic") else "?"

    def __str__(self) -> str:
        """The instruction in GNU as Intel syntax (``.intel_syntax noprefix``)."""
        branch = hasattr(self, "mnemonic") and is_branch_mnemonic(self.mnemonic)
        name = _GAS_NAMES.get(self.name, self.name)
        operands = self.operands[1:] if name in _GAS_ONE_STACK_OPERAND and len(self.operands) == 2 else self.operands
        ops = ", ".join(_operand_text(op, branch) for op in operands)
        text = f"{name} {ops}".rstrip()
        return f"{self.prefix} {text}" if self.prefix else text

    __repr__ = __str__


#: iced names GNU as spells differently: iced's ``pushf`` is the 16-bit one.
_GAS_NAMES = {"pushf": "pushfw", "popf": "popfw", "iret": "iretw"}
#: x87 compares and exchange that GNU as writes with the st(i) operand only.
_GAS_ONE_STACK_OPERAND = frozenset({"fcom", "fcomp", "fucom", "fucomp", "fxch"})
_SIZE_NAMES = {1: "byte", 2: "word", 4: "dword", 8: "qword", 10: "tword", 16: "xmmword", 32: "ymmword"}
_IMM_TEXT = {K.IMM32: "32-bit", K.IMM32SEX64: "sign-extended 32-bit", K.IMM64: "64-bit"}


def _forms_taking(mnemonic: int, ops: tuple[Operand, ...]) -> tuple[Form, ...]:
    return _forms_for_shapes(mnemonic, tuple(operand_shape(op) for op in ops))


#: x87 instructions GNU as also takes without operands: the operands it means then.
_X87_DEFAULTS: dict[int, tuple[Operand, ...]] = {
    **{m: (st1, st0) for m in (ix.Mnemonic.FADDP, ix.Mnemonic.FMULP, ix.Mnemonic.FSUBP, ix.Mnemonic.FSUBRP,
                              ix.Mnemonic.FDIVP, ix.Mnemonic.FDIVRP)},
    **{m: (st0, st1) for m in (ix.Mnemonic.FXCH, ix.Mnemonic.FCOM, ix.Mnemonic.FCOMP, ix.Mnemonic.FUCOM,
                              ix.Mnemonic.FUCOMP)},
}
#: Mnemonics whose two operands may be written either way round (GNU as swaps them too).
_COMMUTATIVE = frozenset({ix.Mnemonic.XCHG, ix.Mnemonic.TEST})


def _operand_orders(mnemonic: int, ops: tuple[Operand, ...]) -> list[tuple[Operand, ...]]:
    """The operand lists to try: as written, swapped when commutative, with st0 (and st1) when left out."""
    if not ops and mnemonic in _X87_DEFAULTS:
        return [(), _X87_DEFAULTS[mnemonic]]  # faddp = faddp st1, st0; fxch = fxch st0, st1 (GNU as)
    orders = [ops]
    if mnemonic in _COMMUTATIVE and len(ops) == 2:
        orders.append((ops[1], ops[0]))
    if ops and all(isinstance(op, Reg) and op.cls == "st" for op in ops):
        orders.append((st0, *ops))  # fcom st3 = fcom st0, st3
    return orders


@lru_cache(maxsize=8192)
def _forms_for_shapes(mnemonic: int, shapes: tuple[Shape, ...]) -> tuple[Form, ...]:
    return tuple(f for f in forms_by_mnemonic()[mnemonic] if len(f.written) == len(shapes)
                 and all(_accepts(f.kinds[p], shape, f) for p, shape in zip(f.written, shapes, strict=True)))


def _default_operand_size(forms: tuple[Form, ...], ops: tuple[Operand, ...]) -> tuple[Form, ...]:
    """Without a 16-bit operand, no 16-bit form: ``push 5`` is ``pushq``, ``fnstenv [m]`` the 28-byte one.

    (GNU as's rule: the operand-size prefix is used only when an operand asks for it.)
    """
    if any(isinstance(op, Reg | Mem) and op.size == 2 for op in ops):
        return forms
    wide = tuple(f for f in forms if f.info.operand_size != 16)
    return wide if wide and len(wide) < len(forms) else forms


def _decodes_as(data: bytes, form: Form) -> bool:
    """Whether ``data`` decodes back to ``form`` (for an fwait form, ``fstsw``: wait, then the rest)."""
    decoder = ix.Decoder(64, data, ip=TRIAL_IP)
    first = decoder.decode()
    if form.info.fwait:
        return first.mnemonic == ix.Mnemonic.WAIT and decoder.can_decode
    return first.code == form.code


@cache
def is_branch_mnemonic(mnemonic: int) -> bool:
    return any(f.is_branch for f in forms_by_mnemonic()[mnemonic])


def _operand_text(op: Operand, branch: bool) -> str:
    if isinstance(op, Reg):
        return f"st({op.name[2:]})" if op.cls == "st" else op.name
    if isinstance(op, LabelRef):
        return str(op) if branch else f"offset {op}"
    return str(op) if isinstance(op, Mem) else hex(op)


def _operand(op: object, name: str, where: Where) -> Operand:
    if isinstance(op, Reg | Mem | LabelRef) or (isinstance(op, int) and not isinstance(op, bool)):
        if isinstance(op, Reg) and op is RIP:
            raise AsmError(f"{name}: rip is not an operand (use it in an address: qword[rip + label])", where)
        return op
    if isinstance(op, Label):
        return as_ref(op)
    if isinstance(op, Address):
        raise AsmError(f"{name} ... [{op}]: a memory operand needs a size: qword[...] (or ptr[...])", where)
    if isinstance(op, MemSize):
        raise AsmError(f"{name} ... {op!r}: subscript it with an address: {op!r}[rax + 8]", where)
    raise AsmError(f"{name}: {op!r} is not an operand (registers, memory operands, integers and labels are)", where)


def _mnemonic(name: str, instr: Instr, where: Where) -> int:
    key = name.rstrip("_").lower()  # and_, or_, not_, in_: Python keywords
    mnemonic = mnemonic_by_name().get(key)
    if mnemonic is None:
        ops = ", ".join(_operand_text(op, False) for op in instr.operands)
        raise AsmError(f"{key} {ops}: unknown mnemonic (or no 64-bit legacy/VEX form): {key}", where)
    return mnemonic


def _set_implied(ins: ix.Instruction, pos: int, kind: Kind) -> None:
    """The operands a string instruction implies: [rsi]/[rdi] memory, the accumulator, dx."""
    if kind in STRING_KINDS:
        ins.set_op_kind(pos, STRING_KINDS[kind])
        if kind == K.SEG_RBX_AL:  # xlatb: [rbx + al]
            ins.memory_base, ins.memory_index = ix.Register.RBX, ix.Register.AL
    else:
        ins.set_op_kind(pos, ix.OpKind.REGISTER)
        ins.set_op_register(pos, FIXED_REGISTER_KINDS[kind])


def _set_prefix(ins: ix.Instruction, prefix: str) -> None:
    if prefix == "lock":
        ins.has_lock_prefix = True
    elif prefix == "repne":
        ins.has_repne_prefix = True
    elif prefix == "repe":
        ins.has_repe_prefix = True
    else:
        ins.has_rep_prefix = True
