"""Memory mapped on demand by invalid-memory hooks; protection faults; the errors when no hook handles them."""
from unicorn import *
from unicorn.x86_const import *

from tcg2wasm.asm import Assembler, dword, qword, rax, rbx, rcx, rdi, rdx, rsi

BASE = 0x100000
LAZY = 0x200000  # nothing mapped there until a hook maps it


def program() -> bytes:
    a = Assembler(base=BASE)
    top = a.label("top")
    a.mov(rsi, LAZY)
    a.mov(rcx, 4)
    a.xor(rax, rax)
    a.bind(top)
    a.mov(rbx, qword[rsi])          # read from an unmapped page
    a.add(rax, rbx)
    a.mov(dword[rsi + 0x800], 0x11223344)  # write to it once mapped
    a.add(rsi, 0x1000)
    a.dec(rcx)
    a.jnz(top)
    a.mov(rdx, 0x300000)
    a.mov(qword[rdx + 8], rax)      # write to an unmapped page: the write hooks run first
    a.mov(rdi, 0x400000)
    a.call(rdi)                     # fetch from an unmapped page: a hook maps code there
    a.nop()
    return a.assemble()


def on_invalid(uc, access, address, size, value, user_data):
    names = {UC_MEM_READ_UNMAPPED: "READ_UNMAPPED", UC_MEM_WRITE_UNMAPPED: "WRITE_UNMAPPED",
             UC_MEM_FETCH_UNMAPPED: "FETCH_UNMAPPED", UC_MEM_WRITE_PROT: "WRITE_PROT",
             UC_MEM_READ_PROT: "READ_PROT", UC_MEM_FETCH_PROT: "FETCH_PROT"}
    print(f"invalid {names[access]} at 0x{address:x} size {size} value 0x{value & (2**64 - 1):x} "
          f"rip 0x{uc.reg_read(UC_X86_REG_RIP):x}")
    page = address & ~0xFFF
    if access == UC_MEM_FETCH_UNMAPPED:
        uc.mem_map(page, 0x1000)
        uc.mem_write(page, b"\x48\xc7\xc0\x2a\x00\x00\x00\xc3")  # mov rax, 42; ret
        return True
    if access in (UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED):
        uc.mem_map(page, 0x1000, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_write(page, (page >> 12).to_bytes(8, "little"))
        return True
    return False


def on_write(uc, access, address, size, value, user_data):
    print(f"write at 0x{address:x} size {size} value 0x{value:x}")


def run_lazy() -> None:
    code = program()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_map(0x7F0000, 0x10000, UC_PROT_READ | UC_PROT_WRITE)
    mu.reg_write(UC_X86_REG_RSP, 0x800000)
    mu.mem_write(BASE, code)
    mu.hook_add(UC_HOOK_MEM_UNMAPPED, on_invalid)
    mu.hook_add(UC_HOOK_MEM_WRITE, on_write, None, 0x200000, 0x3FFFFF)
    mu.emu_start(BASE, BASE + len(code))
    print("rax", hex(mu.reg_read(UC_X86_REG_RAX)), "rip", hex(mu.reg_read(UC_X86_REG_RIP)))
    for begin, end, perms in mu.mem_regions():
        print(f"region 0x{begin:x}-0x{end:x} perms {perms}")
    print("0x300008:", bytes(mu.mem_read(0x300008, 8)).hex())


def run_faults() -> None:
    cases = [
        ("read unmapped", b"\x48\x8b\x04\x25\x00\x00\x90\x00"),     # mov rax, [0x900000]
        ("write unmapped", b"\x48\x89\x04\x25\x00\x00\x90\x00"),    # mov [0x900000], rax
        ("write prot", b"\x48\x89\x04\x25\x00\x00\x50\x00"),        # mov [0x500000], rax (read-only)
        ("read prot", b"\x48\x8b\x04\x25\x00\x00\x60\x00"),         # mov rax, [0x600000] (write-only)
        ("fetch prot", b"\x48\xc7\xc0\x00\x00\x50\x00\xff\xe0"),    # jmp 0x500000 (not executable)
        ("jump unmapped", b"\x48\xc7\xc0\x00\x00\x20\x00\xff\xe0"),    # jmp 0x200000 (unmapped)
        ("invalid", b"\x48\xff\xc0\x0f\x0b"),                        # inc rax; ud2
        ("bad opcode", b"\x90\x06"),                                 # push es is invalid in 64-bit mode
    ]
    for name, code in cases:
        mu = Uc(UC_ARCH_X86, UC_MODE_64)
        mu.mem_map(BASE, 0x1000)
        mu.mem_map(0x500000, 0x1000, UC_PROT_READ)
        mu.mem_map(0x600000, 0x1000, UC_PROT_WRITE)
        mu.mem_write(BASE, code)
        mu.reg_write(UC_X86_REG_RAX, 0x1234)
        try:
            mu.emu_start(BASE, BASE + len(code))
            print(name, "ran to the end")
        except UcError as e:
            print(name, "->", e, e.errno, "rip", hex(mu.reg_read(UC_X86_REG_RIP)), "rax",
                  hex(mu.reg_read(UC_X86_REG_RAX)))
        mu.hook_add(UC_HOOK_MEM_INVALID, on_invalid)
        try:
            mu.emu_start(BASE, BASE + len(code))
            print(name, "with a hook: ran to the end")
        except UcError as e:
            print(name, "with a hook ->", e, e.errno, "rip", hex(mu.reg_read(UC_X86_REG_RIP)))


run_lazy()
run_faults()
