"""mmio_map, mem_map_ptr, ctl exits, rep string instructions under code hooks, invalid-instruction hooks, hooks
added and deleted from inside a callback."""
import ctypes

from unicorn import *
from unicorn.x86_const import *

from tcg2wasm.asm import Assembler, byte, dword, qword, rax, rbx, rcx, rdi, rsi

BASE = 0x10000


def mmio() -> None:
    a = Assembler(base=BASE)
    a.mov(rsi, 0x20000)
    a.mov(dword[rsi + 4], 0x11223344)
    a.mov(rax, qword[rsi + 8])
    a.mov(byte[rsi + 1], 7)
    a.nop()
    code = a.assemble()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, code)

    def read_cb(uc, offset, size, data):
        print(f"mmio read offset 0x{offset:x} size {size} {data}")
        return 0x1000 + offset

    def write_cb(uc, offset, size, value, data):
        print(f"mmio write offset 0x{offset:x} size {size} value 0x{value:x} {data}")

    mu.mmio_map(0x20000, 0x1000, read_cb, "r", write_cb, "w")
    mu.emu_start(BASE, BASE + len(code) - 1)
    print("rax", hex(mu.reg_read(UC_X86_REG_RAX)), [(hex(b), hex(e), p) for b, e, p in mu.mem_regions()])


def map_ptr() -> None:
    buf = ctypes.create_string_buffer(0x1000)
    buf[0:4] = b"\x01\x02\x03\x04"
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, b"\x8b\x04\x25\x00\x00\x03\x00\xff\xc0\x89\x04\x25\x10\x00\x03\x00\x90")
    mu.mem_map_ptr(0x30000, 0x1000, UC_PROT_ALL, ctypes.addressof(buf))
    mu.emu_start(BASE, BASE + 16)
    print("eax", hex(mu.reg_read(UC_X86_REG_EAX)), "host", buf.raw[0x10:0x14].hex(),
          bytes(mu.mem_read(0x30010, 4)).hex())


def exits() -> None:
    a = Assembler(base=BASE)
    top = a.label()
    a.mov(rcx, 10)
    a.bind(top)
    a.inc(rax)
    a.inc(rbx)
    a.dec(rcx)
    a.jnz(top)
    a.nop()
    code = a.assemble()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, code)
    mu.hook_add(UC_HOOK_BLOCK, lambda uc, addr, size, ud: print(f"block 0x{addr:x} {size}"))
    mu.ctl_exits_enabled(True)
    mu.ctl_set_exits([BASE + 10, BASE + len(code) - 1])
    print("exits", [hex(e) for e in mu.ctl_get_exits()], mu.ctl_get_exits_cnt())
    mu.emu_start(BASE, 0)
    print("first exit", hex(mu.reg_read(UC_X86_REG_RIP)), mu.reg_read(UC_X86_REG_RAX), mu.reg_read(UC_X86_REG_RBX))
    mu.emu_start(BASE + 10, 0)
    print("second exit", hex(mu.reg_read(UC_X86_REG_RIP)), mu.reg_read(UC_X86_REG_RAX), mu.reg_read(UC_X86_REG_RBX))


def rep(count: int = 0) -> None:
    a = Assembler(base=BASE)
    a.mov(rsi, 0x40000)
    a.mov(rdi, 0x40100)
    a.mov(rcx, 5)
    a.rep.movsb()
    a.mov(rcx, 0)
    a.rep.stosq()
    a.mov(rcx, 3)
    a.mov(rax, 0x41)
    a.repne.scasb()
    a.nop()
    code = a.assemble()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_map(0x40000, 0x1000)
    mu.mem_write(BASE, code)
    mu.mem_write(0x40000, b"abcdefgh")
    mu.hook_add(UC_HOOK_CODE, lambda uc, addr, size, ud: print(
        f"code 0x{addr:x} {size} rcx={uc.reg_read(UC_X86_REG_RCX)}"))
    mu.hook_add(UC_HOOK_BLOCK, lambda uc, addr, size, ud: print(f"block 0x{addr:x} {size}"))
    mu.hook_add(UC_HOOK_MEM_WRITE, lambda uc, acc, addr, size, value, ud: print(
        f"write 0x{addr:x} {size} 0x{value:x}"), None, 0x40100, 0x401ff)
    # (a fresh Uc for each count: Unicorn 2.1.4 ignores a count in code it translated in an earlier run)
    mu.emu_start(BASE, BASE + len(code) - 1, 0, count)
    print(f"rep count {count}:", bytes(mu.mem_read(0x40100, 8)), hex(mu.reg_read(UC_X86_REG_RDI)),
          mu.reg_read(UC_X86_REG_RCX), hex(mu.reg_read(UC_X86_REG_RIP)))


def invalid_and_nested() -> None:
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, b"\x48\xff\xc0\x0f\x0b\x48\xff\xc3\xcc\x48\xff\xc1\x90")  # inc rax; ud2; inc rbx; int3; inc rcx

    def on_invalid(uc, ud):
        rip = uc.reg_read(UC_X86_REG_RIP)
        print(f"invalid instruction at 0x{rip:x}")
        uc.reg_write(UC_X86_REG_RIP, rip + 2)
        return True

    added = []

    def on_code(uc, addr, size, ud):
        print(f"code 0x{addr:x}")
        if addr == BASE + 5 and not added:
            added.append(uc.hook_add(UC_HOOK_CODE, lambda uc, a, s, ud: print(f"  late 0x{a:x}"), None,
                                     BASE + 9, BASE + 20))

    def on_intr(uc, intno, ud):
        print(f"interrupt {intno} at 0x{uc.reg_read(UC_X86_REG_RIP):x}")
        uc.hook_del(added[0])

    mu.hook_add(UC_HOOK_INSN_INVALID, on_invalid)
    mu.hook_add(UC_HOOK_CODE, on_code)
    mu.hook_add(UC_HOOK_INTR, on_intr)
    try:
        mu.emu_start(BASE, BASE + 12)
    except UcError as e:
        print("error", e)
    print([mu.reg_read(r) for r in (UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX)], hex(mu.reg_read(UC_X86_REG_RIP)))


mmio()
map_ptr()
exits()
rep()
rep(9)
rep(6)
invalid_and_nested()
