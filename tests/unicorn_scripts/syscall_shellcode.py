"""A shellcode that calls write(1, msg, len) and exit(7) through syscall, handled by a UC_HOOK_INSN hook."""
from unicorn import *
from unicorn.x86_const import *

from tcg2wasm.asm import Assembler, eax, edi, edx, qword, rax, rcx, rdi, rip, rsi

BASE = 0x10000


def shellcode() -> bytes:
    a = Assembler(base=BASE)
    msg, again = a.label("msg"), a.label("again")
    a.mov(rcx, 3)
    a.bind(again)
    a.push(rcx)
    a.mov(eax, 1)
    a.mov(edi, 1)
    a.lea(rsi, qword[rip + msg])
    a.mov(edx, 14)
    a.syscall()
    a.pop(rcx)
    a.dec(rcx)
    a.jnz(again)
    a.mov(eax, 39)  # getpid
    a.syscall()
    a.mov(rdi, rax)
    a.mov(eax, 60)
    a.syscall()
    a.hlt()
    a.bind(msg)
    a.db(b"Hello, world!\n")
    return a.assemble()


def on_syscall(uc, user_data):
    nr = uc.reg_read(UC_X86_REG_RAX)
    rip = uc.reg_read(UC_X86_REG_RIP)
    rcx, r11 = uc.reg_read(UC_X86_REG_RCX), uc.reg_read(UC_X86_REG_R11)
    print(f"syscall {nr} at 0x{rip:x} rcx=0x{rcx:x} r11=0x{r11:x}")
    user_data.append(nr)
    if nr == 1:
        buf = uc.mem_read(uc.reg_read(UC_X86_REG_RSI), uc.reg_read(UC_X86_REG_RDX))
        print("  write:", bytes(buf))
        uc.reg_write(UC_X86_REG_RAX, len(buf))
    elif nr == 39:
        uc.reg_write(UC_X86_REG_RAX, 4242)
    elif nr == 60:
        print("  exit", uc.reg_read(UC_X86_REG_RDI))
        uc.emu_stop()


def main() -> None:
    code = shellcode()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000, UC_PROT_READ | UC_PROT_EXEC)
    mu.mem_map(0x7FF000, 0x1000, UC_PROT_READ | UC_PROT_WRITE)
    mu.mem_write(BASE, code)
    mu.reg_write(UC_X86_REG_RSP, 0x800000)
    calls: list[int] = []
    mu.hook_add(UC_HOOK_INSN, on_syscall, calls, 1, 0, UC_X86_INS_SYSCALL)
    mu.emu_start(BASE, BASE + len(code))
    print("calls", calls, "rip", hex(mu.reg_read(UC_X86_REG_RIP)), "rax", mu.reg_read(UC_X86_REG_RAX))
    # a syscall hook that moves rip: Unicorn adds the instruction's length to what was written
    mu2 = Uc(UC_ARCH_X86, UC_MODE_64)
    mu2.mem_map(BASE, 0x1000)
    mu2.mem_write(BASE, b"\x0f\x05\x48\xff\xc0\x48\xff\xc0\x90")

    def skip(uc, ud):
        uc.reg_write(UC_X86_REG_RIP, uc.reg_read(UC_X86_REG_RIP) + 3)

    mu2.hook_add(UC_HOOK_INSN, skip, None, 1, 0, UC_X86_INS_SYSCALL)
    mu2.hook_add(UC_HOOK_CODE, lambda uc, a, s, ud: print(f"  code 0x{a:x} {s}"))
    mu2.emu_start(BASE, BASE + 9)
    print("rax", mu2.reg_read(UC_X86_REG_RAX), "rip", hex(mu2.reg_read(UC_X86_REG_RIP)))
    # without a syscall hook a syscall does nothing
    mu3 = Uc(UC_ARCH_X86, UC_MODE_64)
    mu3.mem_map(BASE, 0x1000)
    mu3.mem_write(BASE, b"\xb8\x3c\x00\x00\x00\x0f\x05\x48\xff\xc0")
    mu3.emu_start(BASE, BASE + 10)
    print("rax", mu3.reg_read(UC_X86_REG_RAX), "rcx", hex(mu3.reg_read(UC_X86_REG_RCX)))


main()
