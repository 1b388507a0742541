"""Unicorn's sample_x86 style: code, block and memory hooks over loops, calls and a table walk."""
from unicorn import *
from unicorn.x86_const import *

from tcg2wasm.asm import Assembler, byte, dl, qword, r8, r9, rax, rbx, rcx, rdi, rdx, rsi, rsp

BASE, DATA, STACK = 0x400000, 0x600000, 0x800000


def program() -> bytes:
    a = Assembler(base=BASE)
    fn, top, inner, done = a.label("fn"), a.label("top"), a.label("inner"), a.label("done")
    a.mov(rsp, STACK + 0x1000)
    a.mov(rsi, DATA)
    a.mov(rcx, 6)
    a.xor(rax, rax)
    a.bind(top)
    a.push(rcx)
    a.call(fn)
    a.pop(rcx)
    a.add(rax, qword[rsi + rcx * 8])
    a.mov(qword[rsi + rcx * 8 + 0x100], rax)
    a.dec(rcx)
    a.jnz(top)
    a.mov(rdi, DATA + 0x200)
    a.mov(rcx, 3)
    a.bind(inner)
    a.movzx(rdx, byte[rsi + rcx])
    a.mov(byte[rdi + rcx], dl)
    a.loop(inner)
    a.jmp(done)
    a.bind(fn)
    a.lea(rbx, qword[rax + rcx * 2 + 1])
    a.imul(rbx, rbx, 3)
    a.xor(rax, rbx)
    a.mov(r8, rax)
    a.shr(r8, 3)
    a.add(r9, r8)
    a.ret()
    a.bind(done)
    a.nop()
    return a.assemble()


def hook_block(uc, address, size, user_data):
    print(f">>> Tracing basic block at 0x{address:x}, block size = 0x{size:x}")


def hook_code(uc, address, size, user_data):
    rax = uc.reg_read(UC_X86_REG_RAX)
    rsp = uc.reg_read(UC_X86_REG_RSP)
    flags = uc.reg_read(UC_X86_REG_EFLAGS)
    print(f">>> Tracing instruction at 0x{address:x}, size = 0x{size:x} rax=0x{rax:x} rsp=0x{rsp:x} "
          f"eflags=0x{flags:x}")


def hook_mem(uc, access, address, size, value, user_data):
    kind = {UC_MEM_WRITE: "WRITE", UC_MEM_READ: "READ", UC_MEM_READ_AFTER: "READ_AFTER"}[access]
    print(f">>> {user_data} {kind} at 0x{address:x}, data size = {size}, data value = 0x{value & (2**64 - 1):x}")


def main() -> None:
    code = program()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x2000)
    mu.mem_map(DATA, 0x1000, UC_PROT_READ | UC_PROT_WRITE)
    mu.mem_map(STACK, 0x1000, UC_PROT_READ | UC_PROT_WRITE)
    mu.mem_write(BASE, code)
    mu.mem_write(DATA, bytes((i * 37 + 11) & 0xFF for i in range(256)))
    mu.hook_add(UC_HOOK_BLOCK, hook_block)
    mu.hook_add(UC_HOOK_CODE, hook_code, None, BASE, BASE + 0x30)
    mu.hook_add(UC_HOOK_MEM_WRITE, hook_mem, "data", DATA, DATA + 0xFFF)
    mu.hook_add(UC_HOOK_MEM_READ, hook_mem, "stack", STACK, STACK + 0xFFF)
    mu.hook_add(UC_HOOK_MEM_READ, hook_mem, "table", DATA, DATA + 0x2F)
    mu.emu_start(BASE, BASE + len(code) - 1)
    for name in ("RAX", "RBX", "RCX", "RDX", "R8", "R9", "RSP", "RIP", "EFLAGS"):
        print(f">>> {name} = 0x{mu.reg_read(getattr(x86_const, 'UC_X86_REG_' + name)):x}")
    print(">>> data:", bytes(mu.mem_read(DATA + 0x100, 0x40)).hex())
    print(">>> copy:", bytes(mu.mem_read(DATA + 0x200, 8)).hex())


main()
