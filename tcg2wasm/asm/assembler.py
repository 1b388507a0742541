"""The Assembler: a list of instructions, data and alignment, labels, and the layout that places them.

Layout is GNU as's branch relaxation: every branch that has a short form starts short; the items are
placed (alignment padding computed from the addresses), and each short branch whose target is out of
reach of a signed byte grows to its near form; repeat until nothing grows. Branches only grow, so
this ends. Then each instruction is encoded by iced-x86's ``Encoder`` at its address, with its label
operands resolved. (iced's ``BlockEncoder`` does the relaxation too, but its Python binding returns
neither the instructions' new offsets, which ``labels`` needs, nor supports alignment.)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from functools import cache

import iced_x86 as ix

from tcg2wasm.asm.errors import AsmError, Where, caller, format_where
from tcg2wasm.asm.instr import PREFIXES, U64, Instr
from tcg2wasm.asm.operands import Label, LabelRef, Mem, as_ref

_FLOAT_FORMATS = {4: "<f", 8: "<d"}


class Data:
    """Bytes from ``db``/``dw``/``dd``/``dq``/``space``: literal parts and label-valued words."""

    __slots__ = ("parts", "size", "where", "text")

    def __init__(self, parts: list[bytes | tuple[LabelRef, int]], where: Where, text: str) -> None:
        self.parts, self.where, self.text = parts, where, text
        self.size = sum(len(p) if isinstance(p, bytes) else p[1] for p in parts)

    def __str__(self) -> str:
        return self.text

    def encode(self, resolve: Callable[[LabelRef, Where], int]) -> bytes:
        out = bytearray()
        for part in self.parts:
            if isinstance(part, bytes):
                out += part
                continue
            ref, width = part
            value = resolve(ref, self.where)
            if not 0 <= value < 1 << (8 * width):
                raise AsmError(f"the address of {ref} ({value:#x}) does not fit in {width} bytes", self.where)
            out += value.to_bytes(width, "little")
        return bytes(out)


class Align:
    """Padding to the next multiple of ``boundary``: NOPs (``fill=None``) or a repeated byte."""

    __slots__ = ("boundary", "fill", "where")

    def __init__(self, boundary: int, fill: int | None, where: Where) -> None:
        self.boundary, self.fill, self.where = boundary, fill, where

    def padding(self, address: int) -> int:
        return -address % self.boundary

    def encode(self, size: int) -> bytes:
        if self.fill is not None:
            return bytes([self.fill]) * size
        longest = nop_sequences()[-1]
        whole, rest = divmod(size, len(longest))
        return longest * whole + (nop_sequences()[rest - 1] if rest else b"")


Item = Instr | Data | Align


@cache
def nop_sequences() -> tuple[bytes, ...]:
    """The recommended 1..9-byte NOPs (Intel SDM, NOP), encoded by iced: ``nop``, ``nop dword [rax+rax+0]``..."""
    R = ix.Register
    shapes = [  # (code, base, index, displacement size: 0 none, 1 byte, 8 dword); no base: no operand
        (ix.Code.NOPD, R.NONE, R.NONE, 0), (ix.Code.NOPW, R.NONE, R.NONE, 0),
        (ix.Code.NOP_RM32, R.RAX, R.NONE, 0), (ix.Code.NOP_RM32, R.RAX, R.NONE, 1),
        (ix.Code.NOP_RM32, R.RAX, R.RAX, 1), (ix.Code.NOP_RM16, R.RAX, R.RAX, 1),
        (ix.Code.NOP_RM32, R.RAX, R.NONE, 8), (ix.Code.NOP_RM32, R.RAX, R.RAX, 8),
        (ix.Code.NOP_RM16, R.RAX, R.RAX, 8),
    ]
    encoder = ix.Encoder(64)
    out = []
    for code, base, index, displ_size in shapes:
        ins = ix.Instruction.create(code)
        if base != R.NONE:
            ins.set_op_kind(0, ix.OpKind.MEMORY)
            ins.memory_base, ins.memory_index, ins.memory_displ_size = base, index, displ_size
        encoder.encode(ins, 0)
        out.append(encoder.take_buffer())
    assert [len(b) for b in out] == list(range(1, 10)), out
    return tuple(out)


class _Prefixed:
    """``a.lock``, ``a.rep``...: the next instruction written through it gets the prefix."""

    def __init__(self, emit: Callable[[Instr], Instr], prefix: str) -> None:
        self._emit, self._prefix = emit, prefix

    def __getattr__(self, name: str) -> Callable[..., Instr]:
        if name.startswith("__"):
            raise AttributeError(name)
        prefix, emit = self._prefix, self._emit
        return lambda *operands: emit(Instr(name, operands, prefix, caller()))


class InstructionFactory:
    """``insn.add(rax, rbx)``: an instruction as a value, to pass around and ``Assembler.emit`` later."""

    def __getattr__(self, name: str) -> Callable[..., Instr]:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in PREFIXES:
            return _Prefixed(lambda i: i, PREFIXES[name])  # type: ignore[return-value]
        return lambda *operands: Instr(name, operands, None, caller())


insn = InstructionFactory()


class Assembler:
    """Guest code written in Python: ``a.add(rax, qword[rsi + 8])``, labels, data; ``assemble()`` -> bytes.

    Any iced-x86 mnemonic is a method (``a.and_``/``a.or_``/``a.not_``/``a.in_`` for Python keywords);
    ``a.lock``, ``a.rep``, ``a.repe``/``repz``, ``a.repne``/``repnz`` prefix the next instruction.
    """

    def __init__(self, base: int = 0) -> None:
        if not isinstance(base, int) or not 0 <= base <= U64:
            raise AsmError(f"Assembler(base={base!r}): the base address is an integer in 0..2**64-1", caller())
        self.base = base
        self._items: list[Item] = []
        self._labels: list[Label] = []
        self._names: dict[str, Label] = {}
        self._placed: tuple[list[int], list[bytes]] | None = None

    # -- writing ------------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., Instr]:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in PREFIXES:
            return _Prefixed(self.emit, PREFIXES[name])  # type: ignore[return-value]
        emit = self.emit
        return lambda *operands: emit(Instr(name, operands, None, caller()))

    def emit(self, *instrs: Instr) -> Instr:
        """Append instruction values (from ``insn``); returns the last."""
        for ins in instrs:
            if not isinstance(ins, Instr):
                raise AsmError(f"emit({ins!r}): not an instruction (make one with insn.<mnemonic>(...))", caller())
            self._items.append(ins)
        self._placed = None
        return instrs[-1] if instrs else None  # type: ignore[return-value]

    def extend(self, instrs: Iterable[Instr]) -> None:
        self.emit(*instrs)

    def label(self, name: str | None = None) -> Label:
        """A new label, bound later with :meth:`bind`; a name is unique in this assembler."""
        where = caller()
        if name is None:
            n = len(self._labels)
            while f".L{n}" in self._names:  # a program may have named a label .L<n> itself
                n += 1
            name = f".L{n}"
        elif not isinstance(name, str) or not name:
            raise AsmError(f"label({name!r}): a label's name is a non-empty string", where)
        elif name in self._names:
            raise AsmError(f"label({name!r}): this name was already used at {_at(self._names[name])}", where)
        label = Label(name, self, where)
        self._labels.append(label)
        self._names[name] = label
        return label

    def bind(self, label: Label | str) -> Label:
        """Bind ``label`` (or the label of that name, made if need be) to the current position."""
        where = caller()
        if isinstance(label, str):
            label = self._names.get(label) or self.label(label)
        if not isinstance(label, Label):
            raise AsmError(f"bind({label!r}): not a label", where)
        if label.owner is not self:
            raise AsmError(f"bind({label}): the label belongs to another Assembler", where)
        if label.index is not None:
            raise AsmError(f"bind({label}): already bound at {_at(label)}", where)
        label.index, label.where = len(self._items), where
        self._placed = None
        return label

    def db(self, *values: int | bytes | bytearray | str) -> None:
        """Bytes: integers -128..255, bytes objects, strings (UTF-8)."""
        self._data(1, values, caller())

    def dw(self, *values: int | Label | LabelRef) -> None:
        self._data(2, values, caller())

    def dd(self, *values: int | float | Label | LabelRef) -> None:
        """32-bit words: integers, floats (IEEE single), label addresses (checked to fit)."""
        self._data(4, values, caller())

    def dq(self, *values: int | float | Label | LabelRef) -> None:
        """64-bit words: integers, floats (IEEE double), label addresses."""
        self._data(8, values, caller())

    def space(self, size: int, fill: int = 0) -> None:
        """``size`` bytes of ``fill`` (GNU as ``.skip``): room for a buffer."""
        where = caller()
        if not isinstance(size, int) or size < 0 or not isinstance(fill, int) or not 0 <= fill <= 255:
            raise AsmError(f"space({size!r}, fill={fill!r}): a size >= 0 and a fill byte 0..255", where)
        self._append(Data([bytes([fill]) * size], where, f"space({size}, fill={fill:#x})"))

    def align(self, boundary: int, fill: int | None = None) -> None:
        """Pad to a multiple of ``boundary`` (a power of two) with NOPs, or with the byte ``fill``."""
        where = caller()
        if not isinstance(boundary, int) or boundary < 1 or boundary & (boundary - 1):
            raise AsmError(f"align({boundary!r}): the boundary is a power of two", where)
        if fill is not None and (not isinstance(fill, int) or not 0 <= fill <= 255):
            raise AsmError(f"align({boundary}, fill={fill!r}): the fill is a byte 0..255", where)
        self._append(Align(boundary, fill, where))

    def _append(self, item: Item) -> None:
        self._items.append(item)
        self._placed = None

    def _data(self, width: int, values: tuple[object, ...], where: Where) -> None:
        parts: list[bytes | tuple[LabelRef, int]] = []
        for value in values:
            parts.append(_data_part(width, value, where))
        shown = ", ".join(_value_text(v) for v in values[:8])
        directive = {1: "db", 2: "dw", 4: "dd", 8: "dq"}[width]
        self._append(Data(parts, where, f"{directive}({shown}{', ...' if len(values) > 8 else ''})"))

    # -- assembling ---------------------------------------------------------------------------------

    def assemble(self) -> bytes:
        """The machine code and data at ``base``; afterwards ``labels`` holds every label's address."""
        for label in self._labels:
            user = self._first_user(label) if label.index is None else None
            if user is not None:
                raise AsmError(f"{user}: label {label} (made at {_at(label)}) is used but never bound", user.where)
        addresses, choices = self._layout()
        for label in self._labels:
            label.address = addresses[label.index] if label.index is not None else None
        encoder = ix.Encoder(64)
        pieces = []
        for i, item in enumerate(self._items):
            if isinstance(item, Instr):
                pieces.append(item.encode_at(encoder, addresses[i], choices[i], self._resolve))
            elif isinstance(item, Data):
                pieces.append(item.encode(self._resolve))
            else:
                pieces.append(item.encode(addresses[i + 1] - addresses[i]))
        self._placed = (addresses, pieces)
        return b"".join(pieces)

    @property
    def labels(self) -> dict[str | Label, int]:
        """Label (and label name) -> address, from the last :meth:`assemble`."""
        if self._placed is None:
            raise AsmError("labels: assemble() first (or again, after adding to the program)", caller())
        found: dict[str | Label, int] = {}
        for label in self._labels:
            if label.address is not None:
                found[label] = found[label.name] = label.address
        return found

    def listing(self) -> str:
        """Address, bytes and source of every item, one per line (after :meth:`assemble`)."""
        if self._placed is None:
            self.assemble()
        assert self._placed is not None
        addresses, pieces = self._placed
        names: dict[int, list[str]] = {}
        for label in self._labels:
            if label.index is not None:
                names.setdefault(label.index, []).append(label.name)
        lines = []
        for i, (item, data) in enumerate(zip(self._items, pieces, strict=True)):
            lines += [f"{name}:" for name in names.get(i, [])]
            text = str(item) if not isinstance(item, Align) else f"align({item.boundary})"
            lines.append(f"  {addresses[i]:#010x}  {data[:12].hex():<24} {text}")
        lines += [f"{name}:" for name in names.get(len(self._items), [])]
        return "\n".join(lines)

    def _layout(self) -> tuple[list[int], list[int]]:
        """Addresses of every item (and the end), and each instruction's choice (0: its shortest form)."""
        items = self._items
        choices = [0] * len(items)
        branches = [i for i, it in enumerate(items) if isinstance(it, Instr) and len(it.sizes) > 1]
        while True:
            addresses = self._place(choices)
            grown = False
            for i in branches:
                ins = items[i]
                assert isinstance(ins, Instr) and ins.target is not None
                if choices[i] + 1 >= len(ins.sizes):
                    continue
                target = ins.target if isinstance(ins.target, int) else self._address(ins.target, addresses, ins)
                distance = target - (addresses[i] + ins.sizes[choices[i]])
                if not -128 <= distance <= 127:
                    choices[i] += 1
                    grown = True
            if not grown:
                return addresses, choices

    def _place(self, choices: list[int]) -> list[int]:
        addresses = [0] * (len(self._items) + 1)
        address = self.base
        for i, item in enumerate(self._items):
            addresses[i] = address
            if isinstance(item, Instr):
                address += item.sizes[choices[i]]
            elif isinstance(item, Data):
                address += item.size
            else:
                address += item.padding(address)
        addresses[-1] = address
        return addresses

    def _address(self, ref: LabelRef, addresses: list[int], ins: Instr) -> int:
        label = ref.label
        if label.owner is self:
            assert label.index is not None
            return addresses[label.index] + ref.offset
        return self._resolve(ref, ins.where)

    def _resolve(self, ref: LabelRef, where: Where) -> int:
        """A label's address (+ offset): ours once placed, another assembler's once it has assembled."""
        address = ref.label.address
        if address is None:
            raise AsmError(f"label {ref.label} belongs to another Assembler that has not been assembled yet",
                           where)
        return (address + ref.offset) & U64

    def _first_user(self, label: Label) -> Instr | Data | None:
        for item in self._items:
            if isinstance(item, Instr) and any(_refers(op, label) for op in (*item.operands, item.mem)):
                return item
            if isinstance(item, Data) and any(isinstance(p, tuple) and p[0].label is label for p in item.parts):
                return item
        return None


def _refers(op: object, label: Label) -> bool:
    if isinstance(op, LabelRef):
        return op.label is label
    return isinstance(op, Mem) and op.label is not None and op.label.label is label


def _at(label: Label) -> str:
    return format_where(label.where)


def _value_text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return hex(value) if isinstance(value, int) else repr(value) if isinstance(value, str) else str(value)


def _data_part(width: int, value: object, where: Where) -> bytes | tuple[LabelRef, int]:
    directive = {1: "db", 2: "dw", 4: "dd", 8: "dq"}[width]
    if isinstance(value, Label | LabelRef):
        if width < 4:
            raise AsmError(f"{directive}({value}): a label's address needs dd or dq", where)
        return (as_ref(value), width)
    if isinstance(value, bytes | bytearray) and width == 1:
        return bytes(value)
    if isinstance(value, str) and width == 1:
        return value.encode()  # UTF-8, as GNU as's .ascii takes the source's bytes
    if isinstance(value, float) and width in _FLOAT_FORMATS:
        return struct.pack(_FLOAT_FORMATS[width], value)
    if isinstance(value, int) and not isinstance(value, bool):
        bits = 8 * width
        if not -(1 << (bits - 1)) <= value < 1 << bits:
            raise AsmError(f"{directive}({value:#x}): does not fit in {width} byte(s)", where)
        return (value & ((1 << bits) - 1)).to_bytes(width, "little")
    raise AsmError(f"{directive}({value!r}): not a value for {directive} "
                   "(integers, labels for dd/dq, floats for dd/dq, bytes and str for db)", where)
