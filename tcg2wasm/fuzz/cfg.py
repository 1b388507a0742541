"""Random control-flow graphs of guest code, compiled into regions, against the CPU (``tcg2wasm fuzz cfg``).

A case is a graph of 2-24 guest blocks laid out in a random order in the code page: each block does
a few flag-defining ALU and memory operations on rax, rbx, rdx, rsi, rbp and the data page
(``[rdi+disp8]``), counts down r15 (``dec r15; jz exit``: every run ends), and ends with a
conditional branch to any block (backward edges make loops, nested and irreducible ones included)
plus a fall-through or a ``jmp``, or with an indirect ``jmp rax`` through a table of block
addresses. The exit is an ``int3`` at the stop address (the native oracle's marker).

On the wasm engine with ``hot_threshold=1`` every block is compiled at its first miss, so regions
grow over the graph: ``cfg/`` discovers them and the Relooper structures their loops; the IR
interpreter runs the same graph block by block (the plain ``loop { switch }`` of the same graph),
and the CPU is the reference for both. No instruction leaves a flag undefined, so rflags is
compared in full.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tcg2wasm.cases import Case, MemoryRegion, Stop
from tcg2wasm.fuzz.draw import RandomDraw, value64
from tcg2wasm.fuzz.encodings import Draw
from tcg2wasm.fuzz.streams import CODE_ADDR, LAYOUT, data_image

DATA_ADDR = 0x20000
TABLE_ADDR = 0x22000  # the indirect-jump table (in the rw data area)
_REGS = (0, 3, 2, 6, 5)  # rax rbx rdx rsi rbp (ModRM numbers)
_JCC = tuple(range(0x70, 0x80))


@dataclass
class Block:
    body: bytes
    cond: int | None  # jcc opcode (0x70..0x7f), or None
    target: int  # block index the jcc (or the jmp) goes to
    follow: int | None  # block index reached by jmp when not the next in layout; None: falls through
    indirect: bool = False  # ends with jmp rax through the table (index in rax's low bits)


def _alu(draw: Draw) -> bytes:
    r, s = draw.choice(_REGS), draw.choice(_REGS)
    pick = draw.int(0, 7)
    if pick == 0:
        return bytes([0x48, 0x81, 0xC0 | draw.choice((0, 5, 6)) << 3 | r]) + draw.bytes(4)  # add/sub/xor r, imm32
    if pick == 1:
        return bytes([0x48, draw.choice((0x01, 0x29, 0x31, 0x21, 0x09, 0x11, 0x19)), 0xC0 | s << 3 | r])
    if pick == 2:
        return bytes([0x48, 0x8D, 0x44 | r << 3, s << 3 | draw.choice(_REGS) | draw.int(0, 3) << 6,
                      draw.int(0, 255)])  # lea r, [base+index*scale+disp8]
    if pick == 3:
        return bytes([0x48, 0x89, 0x47 | s << 3, draw.int(0, 15) * 8])  # mov [rdi+disp8], r
    if pick == 4:
        return bytes([0x48, draw.choice((0x03, 0x2B, 0x33)), 0x47 | r << 3, draw.int(0, 15) * 8])  # op r, [rdi+d]
    if pick == 5:
        return bytes([0x48, 0x0F, 0x40 | draw.int(0, 15), 0xC0 | r << 3 | s])  # cmovcc r, s
    if pick == 6:
        return bytes([0x48, 0x83, 0xF8 | r, draw.int(0, 255)])  # cmp r, imm8
    return bytes([0x48, 0xF7, 0xD8 | r])  # neg r


def _graph(draw: Draw) -> list[Block]:
    n = draw.int(2, 24)
    blocks = []
    for i in range(n):
        body = b"".join(_alu(draw) for _ in range(draw.int(0, 4)))
        indirect = draw.chance(0.08)
        cond = None if indirect or draw.chance(0.15) else draw.choice(_JCC)
        follow = None if draw.chance(0.6) and i + 1 < n else draw.int(0, n - 1)
        blocks.append(Block(body, cond, draw.int(0, n - 1), follow, indirect))
    return blocks


_EXIT_CHECK = bytes.fromhex("49ffcf")  # dec r15


def _terminator(b: Block, here: int, addr: dict[int, int], nxt: int | None) -> bytes:
    """The branch(es) ending a block at ``here`` (after its body and exit check); ``nxt``: next in layout."""
    if b.indirect:  # jmp [table + (rax & 7) * 8]
        return bytes.fromhex("4883e007ff24c5") + TABLE_ADDR.to_bytes(4, "little")
    out = b""
    if b.cond is not None:
        out += bytes([0x0F, b.cond + 0x10]) + (addr[b.target] - (here + 6)).to_bytes(4, "little", signed=True)
        follow = b.follow if b.follow is not None else nxt if nxt is not None else 0
    else:
        follow = b.target
    if follow != nxt:
        out += b"\xe9" + (addr[follow] - (here + len(out) + 5)).to_bytes(4, "little", signed=True)
    return out


def _encode(blocks: list[Block], order: list[int], start: int) -> tuple[bytes, list[int], int]:
    """Lay out the blocks in ``order`` with rel32 branches; returns (code, block addresses, stop address)."""
    sizes = [len(b.body) + len(_EXIT_CHECK) + 6 + 11 for b in blocks]  # room for the longest terminator
    addr = {}
    pos = start
    for i in order:
        addr[i] = pos
        pos += sizes[i]
    stop = pos
    code = bytearray()
    for k, i in enumerate(order):
        b, here = blocks[i], addr[i]
        out = bytearray(b.body + _EXIT_CHECK)
        out += b"\x0f\x84" + (stop - (here + len(out) + 6)).to_bytes(4, "little", signed=True)  # jz exit
        nxt = order[k + 1] if k + 1 < len(order) else None
        out += _terminator(b, here + len(out), addr, nxt)
        out += b"\x90" * (sizes[i] - len(out))  # padding (nops: a fall-through runs them into nxt)
        code += out
    return bytes(code), [addr[i] for i in range(len(blocks))], stop


def cfg_case(seed: int) -> Case:
    """The random-graph case of ``seed`` (the same on every machine)."""
    draw = RandomDraw(seed)
    blocks = _graph(draw)
    rest = list(range(1, len(blocks)))  # the entry block stays first
    random.Random(seed).shuffle(rest)
    order = [0, *rest]
    start = CODE_ADDR + 16 * draw.int(0, 32)
    code, addrs, stop = _encode(blocks, order, start)
    fill = random.Random(seed ^ 0x5EED)
    memory = []
    for addr, size, perms in LAYOUT:
        data = bytes(start - CODE_ADDR) + code + b"\xcc" if addr == CODE_ADDR else data_image(fill, size)
        if addr == DATA_ADDR:
            table = b"".join(addrs[draw.int(0, len(addrs) - 1)].to_bytes(8, "little") for _ in range(8))
            data = data[:TABLE_ADDR - DATA_ADDR] + table + data[TABLE_ADDR - DATA_ADDR + len(table):]
        memory.append(MemoryRegion(addr, size, perms, data))
    regs = {name: value64(draw) for name in ("rax", "rbx", "rdx", "rsi", "rbp")}
    regs |= {"rdi": DATA_ADDR + 8 * draw.int(0, 64), "r15": draw.int(1, 400), "rsp": 0x31000, "rip": start,
             "rflags": 0x202 | draw.int(0, 0xFFF) & 0x8D5}
    return Case(f"cfg-{seed}", regs, memory, Stop(until=stop), description=f"{len(blocks)} blocks")


class CfgWorker:
    """Random graphs on wasm (regions) and the interpreter, against the CPU."""

    def __init__(self, options: dict[str, Any]) -> None:
        from tcg2wasm.fuzz.engines import MachineEngine, NativeEngine

        self.native = NativeEngine()
        self.engines = [MachineEngine("wasm"), MachineEngine("interp")]

    def close(self) -> None:
        self.native.close()

    def run(self, seed: int) -> dict[str, Any]:
        from tcg2wasm.fuzz.compare import compare
        from tcg2wasm.fuzz.regressions import regression_case

        case = cfg_case(seed)
        native = self.native.run(case)
        labels = [f"cpu:{native.stop['kind']}"]
        for engine in self.engines:
            result = engine.run(case)
            diffs = compare(case, native, result, flag_mask=0)
            if diffs:
                detail = [f"engine {engine.engine}: " + "; ".join(str(d) for d in diffs[:6]),
                          f"CPU: {native.stop['message']}", f"stats: {result.stats}"]
                return {"seed": seed, "labels": [*labels, f"{engine.engine}:diverged"],
                        "failure": {"status": "divergence", "engine": engine.engine, "detail": detail,
                                    "case": regression_case(case, native, detail)}}
            labels.append(f"{engine.engine}:match")
        return {"seed": seed, "labels": labels}
