"""Random instruction streams with random states, as state cases (the instruction-stream fuzzer).

A stream is 1-12 random lifted instructions (:mod:`tcg2wasm.fuzz.encodings`) laid out in a code
page at a random offset (sometimes across the page end), followed by ``int3`` at the stop address
(the native runner's stop marker; the other engines stop before it). Memory operands are pointed
near page boundaries of a fixed layout -- read-only, unmapped and 4 GiB-wrap neighbours included --
by setup instructions (``mov r64, imm64`` into the base/index registers) inserted before them, or by
patching rip-relative and absolute displacements; some are left with whatever address the random
registers give (faults, non-canonical addresses). Branches go forward only, to instruction
boundaries of the stream, so every stream ends; ``popf`` gets a pushed value without TF/AC (the
trap flag is not modelled: docs/testing.md, open findings).

Everything comes from one :class:`~tcg2wasm.fuzz.encodings.Draw`: a seed gives the same case
anywhere, and hypothesis can drive the same generator to shrink.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import iced_x86 as ix

from tcg2wasm.abi import FPCW_DEFAULT, GPR_NAMES, MXCSR_DEFAULT, XMM_NAMES, fpcw_as_loaded
from tcg2wasm.cases import Case, MemoryRegion, Stop
from tcg2wasm.fuzz import encodings
from tcg2wasm.fuzz.draw import RandomDraw, value64
from tcg2wasm.fuzz.encodings import Draw

M = ix.Mnemonic
OK = ix.OpKind
R = ix.Register
CODE_ADDR = 0x10000
CODE_SIZE = 0x2000
STACK_ADDR = 0x30000
STACK_SIZE = 0x2000
#: The fixed layout of every stream case: (address, size, perms). Holes at 0x24000 and above 0x26000.
LAYOUT: tuple[tuple[int, int, str], ...] = (
    (CODE_ADDR, CODE_SIZE, "rx"),
    (0x20000, 0x3000, "rw"),
    (0x23000, 0x1000, "r"),
    (0x25000, 0x1000, "rw"),
    (STACK_ADDR, STACK_SIZE, "rw"),
    (0xFFFFF000, 0x1000, "rw"),
)
#: Addresses where a mapping starts or ends (and so an access may straddle two kinds of page).
BOUNDARIES = (0x11000, 0x12000, 0x20000, 0x21000, 0x22000, 0x23000, 0x24000, 0x25000, 0x26000,
              0x30000, 0x31000, 0x32000, 0xFFFFF000, 0x100000000)
DATA_AREAS = ((0x20000, 0x3000), (0x23000, 0x1000), (0x25000, 0x1000), (STACK_ADDR, STACK_SIZE),
              (0xFFFFF000, 0x1000), (CODE_ADDR, CODE_SIZE))
SEGMENT_BASES = (0, 0, 0x20000, 0x21FF8, 0x30000, 0x25000)
MAX_STREAM = 12
_GPR64 = (R.RAX, R.RCX, R.RDX, R.RBX, R.RSP, R.RBP, R.RSI, R.RDI,
          R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15)
_NEAR = (OK.NEAR_BRANCH64, OK.NEAR_BRANCH32, OK.NEAR_BRANCH16)
_FLOATS = (0, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
           0x00000001, 0x00800000, 0x7F7FFFFF, 0x4F000000, 0xCF000000)
_DOUBLES = (0, 1 << 63, 0x3FF0000000000000, 0xBFF0000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
            0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 1, 0x0010000000000000,
            0x43E0000000000000, 0xC3E0000000000000, 0x41E0000000000000)
_USER_FLAGS = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800  # CF PF AF ZF SF DF OF


@dataclass
class Item:
    """One instruction of the stream: bytes, and what the layout pass must patch in."""

    raw: bytearray
    ins: ix.Instruction
    setup: bool = False
    branch_to: int | None = None  # index of the target item (len(items): the stop address)
    rip_target: int | None = None  # absolute address a rip-relative operand must reach
    addr: int = 0
    group_start: bool = True  # a branch may land here (not between an instruction and its setups)


@dataclass
class Stream:
    items: list[Item] = field(default_factory=list)
    regs: dict[str, int] = field(default_factory=dict)
    undefined_flags: int = 0  # flags some instruction so far may have left undefined

    def add(self, raw: bytes, setup: bool = True) -> Item:
        item = Item(bytearray(raw), encodings.decode_one(raw, CODE_ADDR), setup)
        self.items.append(item)
        return item


def mov_imm64(reg: int, value: int) -> bytes:
    """``mov r64, imm64`` (REX.W B8+r)."""
    n = _GPR64.index(reg)
    return bytes([0x48 | (n >> 3), 0xB8 | (n & 7)]) + (value % (1 << 64)).to_bytes(8, "little")


def full_register(reg: int) -> int:
    return ix.RegisterInfo(reg).full_register  # type: ignore[arg-type]


def _target(draw: Draw, size: int) -> int:
    """A data address, mostly within a few bytes of a page boundary."""
    if draw.chance(0.6):
        return draw.choice(BOUNDARIES) + draw.int(-size - 8, 8)
    base, length = draw.choice(DATA_AREAS)
    addr = base + draw.int(0, length - 1)
    return addr & ~15 if draw.chance(0.5) else addr


def _segment_base(stream: Stream, ins: ix.Instruction) -> int:
    if ins.memory_segment == R.FS:
        return stream.regs["fs_base"]
    if ins.memory_segment == R.GS:
        return stream.regs["gs_base"]
    return 0


def _point_memory(draw: Draw, stream: Stream, item: Item) -> list[bytes]:
    """Setup instructions (or patches of item) making the memory operand reach a chosen target."""
    ins = item.ins
    size = max(1, ix.MemorySizeInfo(ins.memory_size).size) if ins.memory_size else 8
    target = (_target(draw, size) - _segment_base(stream, ins)) % (1 << 64)
    if ins.is_ip_rel_memory_operand:
        item.rip_target = target
        return []
    base, index, scale = ins.memory_base, ins.memory_index, ins.memory_index_scale
    disp = ins.memory_displacement
    wide = not any(r != R.NONE and ix.RegisterInfo(r).size == 4 for r in (base, index))
    mask = (1 << 64) - 1 if wide else (1 << 32) - 1
    if base == R.NONE and index == R.NONE:
        return _patch_absolute(item, target, mask)
    setups: list[bytes] = []
    index_value = 0
    if index != R.NONE and index != base:
        index_value = draw.int(-4, 24) if draw.chance(0.8) else value64(draw)
        setups.append(mov_imm64(full_register(index), _garbage_high(draw, index_value, wide)))
    if base != R.NONE:
        if index == base:
            value = ((target - disp) % (mask + 1)) // (scale + 1)
        else:
            value = (target - disp - index_value * scale) % (mask + 1)
        setups.append(mov_imm64(full_register(base), _garbage_high(draw, value, wide)))
    elif index != R.NONE:
        setups[-1:] = [mov_imm64(full_register(index), _garbage_high(draw, ((target - disp) % (mask + 1)) // scale,
                                                                     wide))]
    return setups


def _garbage_high(draw: Draw, value: int, wide: bool) -> int:
    """With 32-bit addressing the upper half of a register must not matter: put random bits there."""
    if wide or not draw.chance(0.5):
        return value
    return value & 0xFFFFFFFF | int.from_bytes(draw.bytes(4), "little") << 32


def _patch_absolute(item: Item, target: int, mask: int) -> list[bytes]:
    """[disp32] addressing: the displacement (sign-extended, or zero-extended under 67) is the address."""
    offsets = ix.Decoder(64, bytes(item.raw), ip=CODE_ADDR)
    ins = offsets.decode()
    co = offsets.get_constant_offsets(ins)
    if not co.has_displacement or co.displacement_size != 4:
        return []
    if mask == (1 << 64) - 1 and not (target < 1 << 31 or target >= (1 << 64) - (1 << 31)):
        return []
    item.raw[co.displacement_offset:co.displacement_offset + 4] = (target & 0xFFFFFFFF).to_bytes(4, "little")
    item.ins = encodings.decode_one(bytes(item.raw), CODE_ADDR)
    return []


def _string_setups(draw: Draw, ins: ix.Instruction) -> list[bytes]:
    setups = []
    size = max(1, ix.MemorySizeInfo(ins.memory_size).size) if ins.memory_size else 1
    for reg in (R.RSI, R.RDI):
        if draw.chance(0.85):
            setups.append(mov_imm64(reg, _target(draw, size)))
    if (ins.has_rep_prefix or ins.has_repne_prefix) and draw.chance(0.9):
        setups.append(mov_imm64(R.RCX, draw.int(0, 9) if draw.chance(0.8) else draw.int(0, 300)))
    return setups


def _store_to_operand(item: Item, opcode: bytes, value: int) -> list[bytes]:
    """``mov [the item's memory operand], imm`` (C7 /0, imm16 under 66), built from the item's own
    prefixes, ModRM, SIB and displacement; none for rip-relative operands (their displacement depends
    on the length)."""
    raw = bytes(item.raw)
    at = raw.find(opcode)
    if item.rip_target is not None or at < 0 or raw[at + len(opcode)] >> 6 == 3:
        return []
    prefixes = bytes(b for b in raw[:at] if b not in (0xF0, 0xF2, 0xF3))  # no lock/rep on a mov
    modrm = raw[at + len(opcode)] & 0xC7
    imm = value.to_bytes(2 if 0x66 in prefixes else 4, "little")
    return [prefixes + b"\xc7" + bytes([modrm]) + raw[at + len(opcode) + 1:] + imm]


def _mxcsr_value(draw: Draw, item: Item) -> list[bytes]:
    """Before ldmxcsr: store a loadable MXCSR (exceptions masked: unmasked SIMD exceptions are not modelled,
    docs/sse.md) at its operand."""
    value = MXCSR_DEFAULT | draw.int(0, 0x3F) | draw.int(0, 7) << 13 | (0x40 if draw.chance(0.3) else 0)
    return _store_to_operand(item, b"\x0f\xae", value)


def _nonzero_bit_scan_source(draw: Draw, item: Item) -> list[bytes]:
    """bsf/bsr of zero leave the destination undefined (SDM; AMD: unchanged, upper half too): a
    nonzero source keeps the result defined."""
    ins = item.ins
    value = 1 << draw.int(0, 14) | draw.int(0, 0x7FFF)  # nonzero in any operand width
    if ins.op_kind(1) == OK.REGISTER:
        return [mov_imm64(full_register(ins.op_register(1)), value | value64(draw) << 16)]
    return _store_to_operand(item, bytes([0x0F, 0xBC if ins.mnemonic == M.BSF else 0xBD]), value)


def _divide_setup(ins: ix.Instruction) -> bytes:
    """Make the dividend small enough to divide often: xor edx,edx / xor ah,ah, or a sign extension."""
    size = ix.MemorySizeInfo(ins.memory_size).size if ins.op_kind(0) == OK.MEMORY \
        else ix.RegisterInfo(ins.op_register(0)).size
    if ins.mnemonic == M.DIV:
        return bytes.fromhex("b400" if size == 1 else "ba00000000")  # mov ah, 0 / mov edx, 0 (flags kept)
    return bytes.fromhex({1: "6698", 2: "6699", 4: "99"}.get(size, "4899"))


def _pre_setups(draw: Draw, stream: Stream, item: Item) -> list[bytes]:
    ins = item.ins
    setups: list[bytes] = []
    if ins.is_string_instruction:
        setups += _string_setups(draw, ins)
    elif any(ins.op_kind(i) == OK.MEMORY for i in range(ins.op_count)) and draw.chance(0.9):
        setups += _point_memory(draw, stream, item)
    if ins.mnemonic == M.LDMXCSR and draw.chance(0.9):
        setups += _mxcsr_value(draw, item)
    if ins.mnemonic in (M.BSF, M.BSR):
        setups += _nonzero_bit_scan_source(draw, item)
    if ins.mnemonic in (M.DIV, M.IDIV) and draw.chance(0.6):
        setups.append(_divide_setup(ins))
    if ins.mnemonic in (M.POPF, M.POPFQ):
        value = draw.int(0, 0xFFF) & _USER_FLAGS | 0x202
        setups.append(bytes([0x68]) + value.to_bytes(4, "little") if ins.mnemonic == M.POPFQ
                      else bytes.fromhex("6668") + value.to_bytes(2, "little"))
    if ins.mnemonic in (M.LEAVE, M.ENTER) and draw.chance(0.8):
        setups.append(mov_imm64(R.RBP, STACK_ADDR + draw.int(0, STACK_SIZE // 8) * 8))
    setups += _avoid_undefined(draw, item)
    if ins.is_stack_instruction and ins.mnemonic not in (M.POPF, M.POPFQ) and draw.chance(0.15):
        setups.append(mov_imm64(R.RSP, _stack_pointer(draw)))
    return setups


def _avoid_undefined(draw: Draw, item: Item) -> list[bytes]:
    """Keep to defined results where the SDM leaves them undefined and the CPU and the model may differ:
    a 16-bit shld/shrd by more than 16 (result and flags undefined)."""
    ins = item.ins
    if ins.mnemonic not in (M.SHLD, M.SHRD) or _operand_bytes(ins) != 2:
        return []
    if ins.op_kind(2) == OK.REGISTER:
        return [bytes([0xB1, draw.int(0, 16)])]  # mov cl, n
    dec = ix.Decoder(64, bytes(item.raw), ip=CODE_ADDR)
    co = dec.get_constant_offsets(dec.decode())
    item.raw[co.immediate_offset] = draw.int(0, 16) | (draw.int(0, 7) << 5 if draw.chance(0.3) else 0) & 0xEF
    item.ins = encodings.decode_one(bytes(item.raw), CODE_ADDR)
    return []


def _operand_bytes(ins: ix.Instruction) -> int:
    if ins.op_kind(0) == OK.MEMORY:
        return ix.MemorySizeInfo(ins.memory_size).size
    return ix.RegisterInfo(ins.op_register(0)).size


def _stack_pointer(draw: Draw) -> int:
    pick = draw.int(0, 9)
    if pick < 2:
        return STACK_ADDR + draw.int(0, 24)  # pushes run off the bottom of the stack
    if pick < 4:
        return STACK_ADDR + STACK_SIZE - draw.int(0, 24)  # pops run off the top
    return STACK_ADDR + 0x1000 + 8 * draw.int(-64, 64) + (draw.int(1, 7) if draw.chance(0.1) else 0)


def random_instruction(draw: Draw, tries: int = 64) -> tuple[bytes, ix.Instruction] | None:
    table = encodings.templates()
    mnemonics = sorted(table)
    for _ in range(tries):
        mnemonic = draw.choice(mnemonics)
        if mnemonic in encodings.RARE and not draw.chance(0.1):
            continue
        raw = encodings.encode(draw, draw.choice(table[mnemonic]))
        ins = encodings.valid_lifted(raw)
        if ins is not None:
            return raw[:ins.len], ins
    return None


def _random_state(draw: Draw) -> dict[str, int]:
    regs = {name: value64(draw) for name in GPR_NAMES}
    regs["rsp"] = _stack_pointer(draw)
    regs["rflags"] = int.from_bytes(draw.bytes(2), "little") & _USER_FLAGS | 0x202
    for name in XMM_NAMES:
        regs[name] = _vector(draw)
    regs["mxcsr"] = MXCSR_DEFAULT if draw.chance(0.85) else \
        MXCSR_DEFAULT & ~0x3F | draw.int(0, 0x3F) | (draw.int(0, 7) << 13 if draw.chance(0.5) else 0) \
        | (0x40 if draw.chance(0.3) else 0)
    regs["fpcw"] = FPCW_DEFAULT if draw.chance(0.9) else fpcw_as_loaded(draw.int(0, 0xFFFF) | 0x3F)
    regs["fs_base"] = draw.choice(SEGMENT_BASES)
    regs["gs_base"] = draw.choice(SEGMENT_BASES)
    return regs


def _vector(draw: Draw) -> int:
    pick = draw.int(0, 5)
    if pick == 0:
        return int.from_bytes(draw.bytes(16), "little")
    if pick == 1:
        return sum(draw.choice(_FLOATS) << (32 * i) for i in range(4))
    if pick == 2:
        return draw.choice(_DOUBLES) | draw.choice(_DOUBLES) << 64
    if pick == 3:
        return sum((value64(draw) & 0xFFFF) << (16 * i) for i in range(8))
    return value64(draw) | value64(draw) << 64


def _branch_target(draw: Draw, stream: Stream, item: Item) -> None:
    if item.ins.op_count and item.ins.op_kind(0) in _NEAR:
        item.branch_to = -1  # resolved in layout: a later boundary
    elif item.ins.mnemonic in (M.JMP, M.CALL) and item.ins.op_kind(0) == OK.REGISTER and draw.chance(0.7):
        raw = mov_imm64(full_register(item.ins.op_register(0)), 0)
        setup = Item(bytearray(raw), encodings.decode_one(raw, CODE_ADDR), True, branch_to=-1)
        stream.items.insert(len(stream.items) - 1, setup)


_DEFINE_FLAGS = bytes.fromhex("4839d8")  # cmp rax, rbx: defines all six status flags
_MNEMONIC_NAMES = {v: k.lower() for k, v in vars(M).items() if not k.startswith("_")}


def _reads_flags(ins: ix.Instruction) -> int:
    from tcg2wasm.fuzz.compare import iced_flags

    return iced_flags(ins.rflags_read)


def _track_undefined(stream: Stream, ins: ix.Instruction) -> None:
    from tcg2wasm.fuzz.compare import iced_flags
    from tcg2wasm.oracle.flags import UNDEFINED_FLAGS

    stream.undefined_flags |= iced_flags(ins.rflags_undefined) | UNDEFINED_FLAGS.get(_MNEMONIC_NAMES[ins.mnemonic], 0)


def generate(draw: Draw, *, name: str = "stream") -> Case:
    """A random stream case (see the module docstring)."""
    stream = Stream(regs=_random_state(draw))
    length = draw.int(1, 4) if draw.chance(0.6) else draw.int(1, MAX_STREAM)
    for _ in range(length):
        picked = random_instruction(draw)
        if picked is None:
            continue
        raw, ins = picked
        item = Item(bytearray(raw), ins)
        first = len(stream.items)
        setups = _pre_setups(draw, stream, item)
        if _reads_flags(ins) & stream.undefined_flags:
            # never let an undefined flag reach a register or memory; a branch may skip any
            # instruction but none skips this one (it starts the reader's group), so the set of flags
            # left undefined so far only grows
            setups.append(_DEFINE_FLAGS)
        for setup in setups:
            stream.add(setup).group_start = False
        stream.items.append(item)
        item.group_start = False
        stream.items[first].group_start = True
        _track_undefined(stream, ins)
        if ins.flow_control != ix.FlowControl.NEXT:
            _branch_target(draw, stream, item)
    start = _code_start(draw, stream)
    code = _layout(draw, stream, start)
    return _case(draw, name, stream, start, code)


def _code_start(draw: Draw, stream: Stream) -> int:
    size = sum(len(item.raw) for item in stream.items) + 1
    if draw.chance(0.3) and size < 0x800:
        return CODE_ADDR + 0x1000 - draw.int(1, min(48, size))  # the stream crosses into the next code page
    return CODE_ADDR + 16 * draw.int(0, (0x1000 - size) // 16)


def _layout(draw: Draw, stream: Stream, start: int) -> bytes:
    """Place the items, resolve branch targets and rip-relative operands; returns the code bytes."""
    addr = start
    for item in stream.items:
        item.addr = addr
        addr += len(item.raw)
    end = addr
    boundaries = [item.addr for item in stream.items if item.group_start] + [end]
    for _i, item in enumerate(stream.items):
        if item.branch_to is not None:
            _resolve_branch(draw, item, [b for b in boundaries if b > item.addr], end)
        if item.rip_target is not None:
            _resolve_rip(item)
    return b"".join(bytes(item.raw) for item in stream.items) + b"\xcc"


def _resolve_branch(draw: Draw, item: Item, later: list[int], end: int) -> None:
    target = draw.choice(later) if later and draw.chance(0.8) else end
    if item.setup:  # mov reg, target for an indirect jmp/call
        item.raw[2:10] = target.to_bytes(8, "little")
        return
    dec = ix.Decoder(64, bytes(item.raw), ip=item.addr)
    ins = dec.decode()
    co = dec.get_constant_offsets(ins)
    if not co.has_immediate:
        return
    width = co.immediate_size
    next_ip = item.addr + len(item.raw)
    disp = target - next_ip
    if width == 1 and disp > 127:
        disp = min(d for d in (b - next_ip for b in later + [end]) if d >= 0)
        if disp > 127:
            disp = 0
    item.raw[co.immediate_offset:co.immediate_offset + width] = disp.to_bytes(width, "little", signed=True)


def _resolve_rip(item: Item) -> None:
    dec = ix.Decoder(64, bytes(item.raw), ip=item.addr)
    ins = dec.decode()
    co = dec.get_constant_offsets(ins)
    assert item.rip_target is not None
    disp = item.rip_target - ins.next_ip
    if co.has_displacement and co.displacement_size == 4 and -(1 << 31) <= disp < 1 << 31:
        item.raw[co.displacement_offset:co.displacement_offset + 4] = disp.to_bytes(4, "little", signed=True)


def _case(draw: Draw, name: str, stream: Stream, start: int, code: bytes) -> Case:
    fill = random.Random(draw.int(0, 2**32 - 1))
    memory = []
    for addr, size, perms in LAYOUT:
        data = bytes(start - CODE_ADDR) + code if addr == CODE_ADDR else data_image(fill, size)
        memory.append(MemoryRegion(addr, size, perms, data))
    regs = dict(stream.regs)
    regs["rip"] = start
    until = start + len(code) - 1
    listing = "; ".join(_asm(bytes(item.raw), item.addr) for item in stream.items)
    return Case(name=name, regs=regs, memory=memory, stop=Stop(until=until), description=listing)


def _slot_pool() -> tuple[bytes, ...]:
    pick = random.Random(0)
    words = [pick.choice(_DOUBLES) if i % 3 == 0 else pick.choice(_FLOATS) | pick.choice(_FLOATS) << 32 if i % 3 == 1
             else pick.randint(0, 0x1FF) for i in range(1024)]
    return tuple(w.to_bytes(8, "little") for w in words)


_SLOT_POOL = _slot_pool()


def data_image(fill: random.Random, size: int) -> bytes:
    """Random bytes, with float/edge values in some 8-byte slots, always near the page ends (where accesses go)."""
    image = bytearray(fill.randbytes(size) if fill.random() < 0.7 else bytes(size))
    bits = fill.getrandbits
    slots = [bits(size.bit_length() - 4) for _ in range(8)]
    for page in range(0, size, 0x1000):
        slots += [page // 8 + k for k in (0, 1, 510, 511)]
    for slot in slots:
        if 8 * slot < size:
            image[8 * slot:8 * slot + 8] = _SLOT_POOL[bits(10)]
    return bytes(image)


_FORMATTER = ix.Formatter(ix.FormatterSyntax.INTEL)


def _asm(raw: bytes, addr: int) -> str:
    return _FORMATTER.format(ix.Decoder(64, raw, ip=addr).decode())


def stream_case(seed: int) -> Case:
    """The stream case of ``seed`` (the same on every machine and run)."""
    return generate(RandomDraw(seed), name=f"stream-{seed}")
