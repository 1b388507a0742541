"""Random programs with random hooks, run by ``unicorn`` and by ``tcg2wasm.unicorn``: their traces must be equal.

A program (written with ``tcg2wasm.asm``) is a loop of random straight-line code
(arithmetic, loads and stores of 1-8 bytes to a data page, push/pop, a call,
forward conditional jumps, short rep movs/stos) around an inner loop, so that its
code gets hot (compiled) under tcg2wasm. The hooks -- code and block hooks on
random ranges, memory read and write hooks on random ranges of the data page --
record every call (type, address, size, value, rip and a register), and some of
them act: one writes a register, one writes memory, one moves rip past the instruction
(a code hook), one stops the run at its k-th call. The trace ends with the registers and a digest of the data page.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tcg2wasm import asm as A

BASE, DATA, STACK = 0x400000, 0x600000, 0x800000
_REGS = (A.rax, A.rbx, A.rdx, A.rsi, A.r8, A.r9, A.r10)  # rcx: loop counters, rdi: data base, rsp: the stack
_SIZED = {1: (A.byte, {A.rax: A.al, A.rbx: A.bl, A.rdx: A.dl, A.rsi: A.sil, A.r8: A.r8b, A.r9: A.r9b,
                       A.r10: A.r10b}),
          2: (A.word, {A.rax: A.ax, A.rbx: A.bx, A.rdx: A.dx, A.rsi: A.si, A.r8: A.r8w, A.r9: A.r9w,
                       A.r10: A.r10w}),
          4: (A.dword, {A.rax: A.eax, A.rbx: A.ebx, A.rdx: A.edx, A.rsi: A.esi, A.r8: A.r8d, A.r9: A.r9d,
                        A.r10: A.r10d}),
          8: (A.qword, {r: r for r in _REGS})}
_ALU = ("add", "sub", "xor", "and_", "or_", "adc", "sbb")
_SHIFTS = ("shl", "shr", "sar", "rol", "ror")
_JCC = ("jz", "jnz", "jc", "jnc", "js", "jns", "jl", "jge", "jbe", "ja")
_REG_NAMES = ("RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RSP", "R8", "R9", "R10", "RIP", "RFLAGS")


def _alu(a: A.Assembler, name: str, *ops: Any) -> None:
    getattr(a, name)(*ops)


def _straight(a: A.Assembler, rng: random.Random, n: int, fn: A.Label) -> None:
    """``n`` random instructions (a forward jcc may skip a few of them)."""
    pending: list[tuple[A.Label, int]] = []
    for i in range(n):
        for label, at in [p for p in pending if p[1] == i]:
            a.bind(label)
            pending.remove((label, at))
        reg, other = rng.choice(_REGS), rng.choice(_REGS)
        kind = rng.randrange(12)
        size = rng.choice((1, 2, 4, 8))
        width, names = _SIZED[size]
        off = rng.randrange(0, 0x800 - 8)
        if kind < 2:
            _alu(a, rng.choice(_ALU), reg, rng.choice((other, rng.randrange(-128, 128))))
        elif kind == 2:
            _alu(a, rng.choice(_SHIFTS), reg, rng.randrange(0, 64))
        elif kind == 3:
            a.imul(reg, other, rng.randrange(-1000, 1000))
        elif kind in (4, 5):
            a.mov(names[reg], width[A.rdi + off])
        elif kind in (6, 7):
            a.mov(width[A.rdi + off], names[reg])
        elif kind == 8:
            _alu(a, rng.choice(("add", "xor", "sub")), width[A.rdi + off], names[reg])
        elif kind == 9:
            a.push(reg)
            a.pop(other)
        elif kind == 10:
            a.call(fn)
        else:
            skip = a.label()
            a.cmp(reg, other)
            getattr(a, rng.choice(_JCC))(skip)
            pending.append((skip, min(n, i + 1 + rng.randrange(1, 4))))
    for label, _ in pending:
        a.bind(label)


def program(rng: random.Random) -> tuple[bytes, int]:
    """(code, end address): an outer loop of ``outer`` iterations around random code and an inner loop."""
    a = A.Assembler(base=BASE)
    outer, inner, fn, done = a.label("outer"), a.label("inner"), a.label("fn"), a.label("done")
    a.mov(A.rsp, STACK + 0x1000)
    a.mov(A.rdi, DATA)
    a.mov(A.rcx, rng.randrange(18, 30))
    a.bind(outer)
    a.push(A.rcx)
    _straight(a, rng, rng.randrange(4, 14), fn)
    a.mov(A.rcx, rng.randrange(1, 4))
    a.bind(inner)
    _straight(a, rng, rng.randrange(2, 6), fn)
    a.dec(A.rcx)
    a.jnz(inner)
    if rng.random() < 0.5:  # a short rep string instruction (Unicorn runs it one iteration per block)
        a.push(A.rdi)
        a.lea(A.rsi, A.qword[A.rdi + rng.randrange(0, 0x100)])
        a.lea(A.rdi, A.qword[A.rdi + 0x400 + rng.randrange(0, 0x100)])
        a.mov(A.rcx, rng.randrange(0, 4))
        a.rep.movsb() if rng.random() < 0.5 else a.rep.stosb()
        a.pop(A.rdi)
    a.pop(A.rcx)
    a.dec(A.rcx)
    a.jnz(outer)
    a.jmp(done)
    a.bind(fn)
    _straight(a, rng, rng.randrange(1, 5), fn=done)  # a "call" inside fn goes to done's address: never taken
    a.ret()
    a.bind(done)
    a.nop()
    code = a.assemble()
    return code, BASE + len(code) - 1


@dataclass
class HookPlan:
    """Random hooks: (type name, begin, end, action) where action is None, "reg", "mem" or ("stop", k)."""

    hooks: list[tuple[str, int, int, Any]] = field(default_factory=list)
    count: int = 0


def plan(rng: random.Random, code_size: int) -> HookPlan:
    p = HookPlan(count=rng.choice((0, 0, rng.randrange(50, 2000))))
    for _ in range(rng.randrange(1, 5)):
        kind = rng.choice(("code", "code", "block", "read", "write"))
        if kind in ("code", "block"):
            lo = BASE + rng.randrange(code_size)
            hi = lo + rng.choice((0, rng.randrange(1, 64)))
            if rng.random() < 0.15:
                lo, hi = 1, 0  # everything
        else:
            where = rng.random()
            lo = (DATA + rng.randrange(0, 0x800)) if where < 0.7 else STACK + 0xF00 + rng.randrange(0, 0x100)
            hi = lo + rng.randrange(0, 0x100)
            if where > 0.9:
                lo, hi = 1, 0
        actions: list[Any] = [None, None, "reg", "mem", ("stop", rng.randrange(1, 400))]
        if kind == "code":
            actions.append("skip")  # the hook writes rip: the instruction is skipped
        action = rng.choice(actions)
        if action == "skip" and not p.count:
            p.count = rng.randrange(50, 3000)  # a skipped dec or pop may loop for ever
        p.hooks.append((kind, lo, hi, action))
    return p


def run(mod: ModuleType, x86: ModuleType, code: bytes, end: int, p: HookPlan, data: bytes) -> list[str]:
    """The trace of one run under ``mod`` (``unicorn`` or ``tcg2wasm.unicorn``)."""
    trace: list[str] = []
    mu = mod.Uc(mod.UC_ARCH_X86, mod.UC_MODE_64)
    mu.mem_map(BASE, 0x2000)
    mu.mem_map(DATA, 0x1000, mod.UC_PROT_READ | mod.UC_PROT_WRITE)
    mu.mem_map(STACK, 0x1000, mod.UC_PROT_READ | mod.UC_PROT_WRITE)
    mu.mem_write(BASE, code)
    mu.mem_write(DATA, data)
    rax = x86.UC_X86_REG_RAX
    types = {"code": mod.UC_HOOK_CODE, "block": mod.UC_HOOK_BLOCK, "read": mod.UC_HOOK_MEM_READ,
             "write": mod.UC_HOOK_MEM_WRITE}
    for i, (kind, lo, hi, action) in enumerate(p.hooks):
        mu.hook_add(types[kind], _callback(trace, i, kind, action, rax, x86), None, lo, hi)
    try:
        mu.emu_start(BASE, end, 0, p.count)
    except mod.UcError as e:
        trace.append(f"error {e.errno}")
    names = _REG_NAMES
    if trace and trace[-1].startswith("error") and any(h[3] == "skip" for h in p.hooks):
        names = names[:-1]  # Unicorn 2.1.4 leaves stale lazy flags when a fault follows a hook's rip write
    regs = [f"{n}={mu.reg_read(getattr(x86, 'UC_X86_REG_' + n)):#x}" for n in names]
    trace.append(" ".join(regs))
    trace.append(hashlib.sha256(bytes(mu.mem_read(DATA, 0x1000)) + bytes(mu.mem_read(STACK, 0x1000))).hexdigest())
    return trace


def _callback(trace: list[str], i: int, kind: str, action: Any, rax: int, x86: ModuleType) -> Callable[..., None]:
    calls = [0]

    def act(uc: Any, address: int = 0, size: int = 0) -> None:
        calls[0] += 1
        if action == "reg":
            uc.reg_write(rax, (uc.reg_read(rax) + 0x11) & (2**64 - 1))
        elif action == "mem":
            uc.mem_write(DATA + 0x7F0, calls[0].to_bytes(8, "little"))
        elif action == "skip" and calls[0] % 3 == 1:
            uc.reg_write(x86.UC_X86_REG_RIP, address + size)
        elif isinstance(action, tuple) and calls[0] == action[1]:
            trace.append("emu_stop")
            uc.emu_stop()

    def on_code(uc: Any, address: int, size: int, _ud: Any) -> None:
        trace.append(f"{i} {kind} {address:#x} {size} rax={uc.reg_read(rax):#x}")
        act(uc, address, size)

    def on_mem(uc: Any, access: int, address: int, size: int, value: int, _ud: Any) -> None:
        rip = uc.reg_read(x86.UC_X86_REG_RIP)
        trace.append(f"{i} {kind} {access} {address:#x} {size} {value & (2**64 - 1):#x} rip={rip:#x}")
        act(uc)

    return on_code if kind in ("code", "block") else on_mem


def case(seed: int) -> tuple[bytes, int, HookPlan, bytes]:
    rng = random.Random(seed)
    code, end = program(rng)
    return code, end, plan(rng, len(code)), rng.randbytes(0x1000)
