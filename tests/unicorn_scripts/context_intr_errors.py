"""Contexts (save, restore, update, pickle), interrupts, in/out and cpuid hooks, and Unicorn's errors for bad use."""
import pickle

from unicorn import *
from unicorn.x86_const import *

BASE = 0x1000
# inc rax; int 0x80; inc rbx; int3; inc rcx; in al, 0x3f; out 0x46, al; in eax, dx; cpuid; nop
CODE = bytes.fromhex("48ffc0cd8048ffc3cc48ffc1e43fe646ed0fa290")


def interrupts() -> None:
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, CODE)
    mu.reg_write(UC_X86_REG_RDX, 0x1234)

    def on_intr(uc, intno, ud):
        print(f"interrupt {intno} rip 0x{uc.reg_read(UC_X86_REG_RIP):x}")

    def on_in(uc, port, size, ud):
        print(f"in port 0x{port:x} size {size} rip 0x{uc.reg_read(UC_X86_REG_RIP):x}")
        return 0xF1F2F3F4

    def on_out(uc, port, size, value, ud):
        print(f"out port 0x{port:x} size {size} value 0x{value:x}")

    def on_cpuid(uc, ud):
        print(f"cpuid eax=0x{uc.reg_read(UC_X86_REG_EAX):x} rip 0x{uc.reg_read(UC_X86_REG_RIP):x}")
        uc.reg_write_batch([(UC_X86_REG_RAX, 1), (UC_X86_REG_RBX, 2), (UC_X86_REG_RCX, 3), (UC_X86_REG_RDX, 4)])
        return 1  # skip the instruction

    mu.hook_add(UC_HOOK_INTR, on_intr)
    mu.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, UC_X86_INS_IN)
    mu.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, UC_X86_INS_OUT)
    mu.hook_add(UC_HOOK_INSN, on_cpuid, None, 1, 0, UC_X86_INS_CPUID)
    mu.hook_add(UC_HOOK_CODE, lambda uc, a, s, ud: print(f"  code 0x{a:x} {s}"))
    mu.emu_start(BASE, BASE + len(CODE))
    print(" ".join(f"0x{mu.reg_read(r):x}" for r in (UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX,
                                                     UC_X86_REG_RDX, UC_X86_REG_RIP)))
    # without an interrupt hook: Unicorn's error
    mu2 = Uc(UC_ARCH_X86, UC_MODE_64)
    mu2.mem_map(BASE, 0x1000)
    mu2.mem_write(BASE, CODE)
    try:
        mu2.emu_start(BASE, BASE + len(CODE))
    except UcError as e:
        print("no hook:", e, e.errno, hex(mu2.reg_read(UC_X86_REG_RIP)))


def contexts() -> None:
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(BASE, 0x1000)
    mu.mem_write(BASE, b"\x48\xff\xc0\x48\x01\xc3\x66\x0f\xef\xc0\x90")  # inc rax; add rbx, rax; pxor xmm0, xmm0
    mu.reg_write(UC_X86_REG_RAX, 41)
    mu.reg_write(UC_X86_REG_XMM0, 0x0123456789ABCDEF_FEDCBA9876543210)
    saved = mu.context_save()
    mu.emu_start(BASE, BASE + 11)
    print("ran:", mu.reg_read(UC_X86_REG_RAX), mu.reg_read(UC_X86_REG_RBX), hex(mu.reg_read(UC_X86_REG_XMM0)))
    print("saved:", saved.reg_read(UC_X86_REG_RAX), hex(saved.reg_read(UC_X86_REG_XMM0)), saved.reg_read(UC_X86_REG_AL))
    frozen = pickle.loads(pickle.dumps(saved))
    mu.context_restore(frozen)
    print("restored:", mu.reg_read(UC_X86_REG_RAX), mu.reg_read(UC_X86_REG_RBX), hex(mu.reg_read(UC_X86_REG_XMM0)))
    mu.emu_start(BASE, BASE + 11)
    mu.context_update(saved)
    print("updated:", saved.reg_read(UC_X86_REG_RAX), saved.reg_read(UC_X86_REG_RBX),
          hex(saved.reg_read(UC_X86_REG_RIP)))
    saved.reg_write(UC_X86_REG_EAX, 0xFFFFFFFF)
    mu.context_restore(saved)
    print("edited:", hex(mu.reg_read(UC_X86_REG_RAX)), hex(mu.reg_read(UC_X86_REG_RIP)))


def registers() -> None:
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.reg_write(UC_X86_REG_RAX, 0x1122334455667788)
    mu.reg_write(UC_X86_REG_AH, 0xAB)
    mu.reg_write(UC_X86_REG_EBX, 0x1_FFFF_FFFF)
    mu.reg_write(UC_X86_REG_RCX, -1)
    mu.reg_write(UC_X86_REG_FS_BASE, 0x7000)
    mu.reg_write(UC_X86_REG_EFLAGS, 0x246)
    for r in (UC_X86_REG_RAX, UC_X86_REG_EAX, UC_X86_REG_AX, UC_X86_REG_AH, UC_X86_REG_AL, UC_X86_REG_EBX,
              UC_X86_REG_RCX, UC_X86_REG_CX, UC_X86_REG_FS_BASE, UC_X86_REG_EFLAGS, UC_X86_REG_RFLAGS,
              UC_X86_REG_RIP, UC_X86_REG_MXCSR, UC_X86_REG_FPCW):
        print("reg", r, hex(mu.reg_read(r)))
    print("msr fs", hex(mu.reg_read(UC_X86_REG_MSR, 0xC0000100)))


def errors() -> None:
    mu = Uc(UC_ARCH_X86, UC_MODE_64)
    mu.mem_map(0x10000, 0x4000)
    attempts = [
        ("overlap", lambda: mu.mem_map(0x11000, 0x1000)),
        ("unaligned", lambda: mu.mem_map(0x20001, 0x1000)),
        ("size 0", lambda: mu.mem_map(0x30000, 0)),
        ("bad perms", lambda: mu.mem_map(0x30000, 0x1000, 0x10)),
        ("read unmapped", lambda: mu.mem_read(0x50000, 4)),
        ("read across the end", lambda: mu.mem_read(0x13ff0, 0x20)),
        ("write unmapped", lambda: mu.mem_write(0x50000, b"x")),
        ("unmap unmapped", lambda: mu.mem_unmap(0x50000, 0x1000)),
        ("protect unmapped", lambda: mu.mem_protect(0x50000, 0x1000)),
        ("protect unaligned", lambda: mu.mem_protect(0x10000, 0x800)),
        ("bad hook type", lambda: mu.hook_add(0, lambda *a: None)),
        ("insn hook on nop", lambda: mu.hook_add(UC_HOOK_INSN, lambda *a: None, None, 1, 0, UC_X86_INS_NOP)),
        ("hook_del twice", lambda: (mu.hook_del(h := mu.hook_add(UC_HOOK_CODE, lambda *a: None)), mu.hook_del(h))),
        ("fetch unmapped", lambda: mu.emu_start(0x90000, 0x90010)),
        ("mode 32", lambda: Uc(UC_ARCH_X86, UC_MODE_32 + 0x1000)),
        ("arm", lambda: Uc(UC_ARCH_ARM + 100, UC_MODE_ARM)),
    ]
    for name, attempt in attempts:
        try:
            attempt()
            print(name, "ok")
        except UcError as e:
            print(name, "->", e, e.errno)
        except (KeyError, AssertionError) as e:
            print(name, "->", type(e).__name__, e if isinstance(e, AssertionError) else "")
    mu.mem_protect(0x11000, 0x1000, UC_PROT_READ)
    mu.mem_unmap(0x12000, 0x1000)
    mu.mem_map(0x20000, 0x1000, UC_PROT_READ | UC_PROT_EXEC)
    print("regions", [(hex(b), hex(e), p) for b, e, p in mu.mem_regions()])
    print("read across pages", bytes(mu.mem_read(0x10ffe, 4)).hex())


interrupts()
contexts()
registers()
errors()
