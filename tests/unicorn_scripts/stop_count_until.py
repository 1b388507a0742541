"""emu_stop from hooks, count and until together, resuming, rip written by a code hook, hook_del inside a run."""
from unicorn import *
from unicorn.x86_const import *

from tcg2wasm.asm import Assembler, qword, rax, rbx, rcx, rdi, rsi

BASE = 0x1000


def program() -> bytes:
    a = Assembler(base=BASE)
    outer, inner, skip = a.label("outer"), a.label("inner"), a.label("skip")
    a.mov(rdi, 0x8000)
    a.mov(rcx, 10)
    a.bind(outer)
    a.mov(rbx, 3)
    a.bind(inner)
    a.add(rax, rbx)
    a.mov(qword[rdi], rax)
    a.dec(rbx)
    a.jnz(inner)
    a.inc(rsi)          # a code hook jumps over this one when rsi == 4
    a.bind(skip)
    a.dec(rcx)
    a.jnz(outer)
    a.nop()
    return a.assemble()


def fresh():
    code = program()
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(0, 0x10000)
    mu.mem_write(BASE, code)
    return mu, code


def state(mu) -> str:
    return " ".join(f"{n}=0x{mu.reg_read(r):x}" for n, r in (("rip", UC_X86_REG_RIP), ("rax", UC_X86_REG_RAX),
                                                              ("rbx", UC_X86_REG_RBX), ("rcx", UC_X86_REG_RCX),
                                                              ("rsi", UC_X86_REG_RSI)))


def main() -> None:
    mu, code = fresh()
    end = BASE + len(code)
    for count in (1, 2, 5, 17, 40, 1000):
        mu.reg_write_batch([(UC_X86_REG_RAX, 0), (UC_X86_REG_RSI, 0)])
        mu.emu_start(BASE, end, 0, count)
        print(f"count {count}:", state(mu))
    # until before count (Unicorn 2.1.4 checks until only in code it translates after emu_start: a fresh Uc)
    mu, code = fresh()
    mu.emu_start(BASE, BASE + 0x15, 0, 100)
    print("until first:", state(mu))
    # resume from where count stopped, several times
    mu.reg_write(UC_X86_REG_RAX, 0)
    pc = BASE
    for _ in range(6):
        mu.emu_start(pc, end, 0, 7)
        pc = mu.reg_read(UC_X86_REG_RIP)
        print("resumed:", state(mu))

    # emu_stop from a code hook after 25 instructions; the memory write hook counts writes
    mu, code = fresh()
    seen = {"n": 0, "writes": 0}

    def code_hook(uc, address, size, ud):
        ud["n"] += 1
        if ud["n"] == 25:
            print(f"stop at 0x{address:x}")
            uc.emu_stop()

    def write_hook(uc, access, address, size, value, ud):
        ud["writes"] += 1
        if ud["writes"] == 3:
            print(f"third write 0x{value:x} at 0x{address:x}, rip 0x{uc.reg_read(UC_X86_REG_RIP):x}")

    mu.hook_add(UC_HOOK_CODE, code_hook, seen)
    mu.hook_add(UC_HOOK_MEM_WRITE, write_hook, seen, 0x8000, 0x8007)
    mu.emu_start(BASE, BASE + len(code))
    print("after emu_stop:", state(mu), seen)

    # a code hook that moves rip (skips inc rsi when rsi == 4) and deletes itself later
    mu, code = fresh()
    handles = {}

    def redirect(uc, address, size, ud):
        if address == ud["inc"] and uc.reg_read(UC_X86_REG_RSI) == 4:
            print(f"skip 0x{address:x} size {size}")
            uc.reg_write(UC_X86_REG_RIP, address + size)
        if uc.reg_read(UC_X86_REG_RCX) == 2 and "deleted" not in ud:
            ud["deleted"] = True
            uc.hook_del(handles["redirect"])

    def block(uc, address, size, ud):
        print(f"block 0x{address:x} {size} rcx={uc.reg_read(UC_X86_REG_RCX)}")

    handles["redirect"] = mu.hook_add(UC_HOOK_CODE, redirect, {"inc": BASE + 0x20}, BASE + 0x20, BASE + 0x26)
    handles["block"] = mu.hook_add(UC_HOOK_BLOCK, block, None, BASE + 0x20, BASE + 0x20)
    mu.emu_start(BASE, BASE + len(code))
    print("after redirect:", state(mu))
    # emu_stop from a block hook; then a block hook that moves rip to the end
    mu.hook_del(handles["block"])
    mu.hook_add(UC_HOOK_BLOCK, lambda uc, a, s, ud: uc.emu_stop() if a == BASE + 0x15 else None)
    mu.ctl_remove_cache(BASE, BASE + len(code))  # Unicorn applies new hooks to code translated later only
    mu.emu_start(BASE, BASE + len(code))
    print("stopped in block hook:", state(mu))


main()
