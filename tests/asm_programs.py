"""Programs written twice: with tcg2wasm.asm and in GNU as Intel syntax (tests/test_asm.py runs both).

Each program is entered with rdi = a data page (filled with a byte pattern; fs and gs point into it)
and returns (``ret``) to a sentinel; it leaves its results in registers and in the data page.
``same_bytes`` says whether the two encodings must also be byte-identical (``align`` pads with NOPs
that differ from GNU as's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tcg2wasm.asm import (
    Assembler,
    Instr,
    ah,
    al,
    ax,
    bh,
    bl,
    bx,
    byte,
    cl,
    dh,
    dl,
    dword,
    dx,
    eax,
    ebx,
    ecx,
    edx,
    esi,
    fs,
    gs,
    insn,
    ptr,
    qword,
    r8,
    r8b,
    r8d,
    r9,
    r9d,
    r9w,
    r10,
    r11,
    r12,
    r13,
    r14,
    r15,
    rax,
    rbp,
    rbx,
    rcx,
    rdi,
    rdx,
    rip,
    rsi,
    rsp,
    si,
    sil,
    st0,
    st1,
    tword,
    word,
    xmm0,
    xmm1,
    xmm2,
    xmm3,
    xmm4,
    xmm8,
    xmm15,
    xmmword,
)


@dataclass(frozen=True)
class Program:
    name: str
    build: Callable[[Assembler], None]
    gas: str
    regs: dict[str, int] = field(default_factory=dict)
    same_bytes: bool = True


def sum_loop(a: Assembler) -> None:
    """The issue's example, with its array."""
    arr = a.label("arr")
    a.mov(ecx, 10)
    a.lea(rsi, ptr[rip + arr])
    top = a.label()
    a.xor(rax, rax)
    a.bind(top)
    a.add(rax, qword[rsi + rcx * 8 - 8])
    a.dec(rcx)
    a.jnz(top)
    a.mov(qword[rdi], rax)
    a.ret()
    a.bind(arr)
    a.dq(*[i * i for i in range(1, 11)])


SUM_LOOP = """
    mov ecx, 10
    lea rsi, [rip + arr]
    xor rax, rax
top:
    add rax, qword ptr [rsi + rcx*8 - 8]
    dec rcx
    jnz top
    mov qword ptr [rdi], rax
    ret
arr:
    .quad 1, 4, 9, 16, 25, 36, 49, 64, 81, 100
"""


def conditions(a: Assembler) -> None:
    """Flags, setcc into high and low byte registers, cmovcc, jcc forward and backward."""
    a.mov(rbx, -5)
    a.mov(rcx, 7)
    a.xor(eax, eax)
    a.xor(edx, edx)
    a.cmp(rbx, rcx)
    a.setl(al)
    a.setb(ah)
    a.setg(dl)
    a.seta(dh)
    a.mov(r8, 100)
    a.cmovl(r8, rbx)
    a.cmovae(r9, rcx)
    a.test(rbx, rbx)
    a.sets(bl)
    a.setnz(bh)
    a.mov(word[rdi], ax)
    a.mov(word[rdi + 2], dx)
    a.mov(word[rdi + 4], bx)
    a.mov(r10, 0)
    again = a.bind("again")
    a.add(r10, 3)
    a.cmp(r10, 20)
    skip = a.label("skip")
    a.jge(skip)
    a.jmp(again)
    a.bind(skip)
    a.mov(qword[rdi + 8], r10)
    a.ret()


CONDITIONS = """
    mov rbx, -5
    mov rcx, 7
    xor eax, eax
    xor edx, edx
    cmp rbx, rcx
    setl al
    setb ah
    setg dl
    seta dh
    mov r8, 100
    cmovl r8, rbx
    cmovae r9, rcx
    test rbx, rbx
    sets bl
    setnz bh
    mov word ptr [rdi], ax
    mov word ptr [rdi + 2], dx
    mov word ptr [rdi + 4], bx
    mov r10, 0
again:
    add r10, 3
    cmp r10, 20
    jge skip
    jmp again
skip:
    mov qword ptr [rdi + 8], r10
    ret
"""


def relaxation(a: Assembler) -> None:
    """Short and near branches both ways, chosen by distance (GNU as relaxes the same way)."""
    far_ahead, near_ahead, func = a.label("far_ahead"), a.label("near_ahead"), a.label("func")
    a.xor(eax, eax)
    a.jmp(near_ahead)
    a.db(b"\x90" * 100)
    a.bind(near_ahead)
    a.add(eax, 1)
    a.jmp(far_ahead)
    a.db(b"\x90" * 200)
    a.bind(far_ahead)
    a.add(eax, 2)
    a.mov(ecx, 3)
    body = a.bind("body")
    a.add(eax, ecx)
    a.db(b"\x90" * 130)
    a.dec(ecx)
    a.jnz(body)
    a.call(func)
    a.mov(dword[rdi], eax)
    a.ret()
    a.bind(func)
    a.imul(eax, eax, 3)
    a.ret()


RELAXATION = """
    xor eax, eax
    jmp near_ahead
    .fill 100, 1, 0x90
near_ahead:
    add eax, 1
    jmp far_ahead
    .fill 200, 1, 0x90
far_ahead:
    add eax, 2
    mov ecx, 3
body:
    add eax, ecx
    .fill 130, 1, 0x90
    dec ecx
    jnz body
    call func
    mov dword ptr [rdi], eax
    ret
func:
    imul eax, eax, 3
    ret
"""


def strings(a: Assembler) -> None:
    """rep movsb / rep stosq / repne scasb / repe cmpsb, lodsb, std/cld."""
    text = a.label("text")
    a.mov(r12, rdi)
    a.lea(rsi, ptr[rip + text])
    a.mov(ecx, 37)
    a.rep.movsb()
    a.lea(rdi, ptr[r12 + 64])
    a.mov(rax, 0x1122334455667788)
    a.mov(ecx, 4)
    a.rep.stosq()
    a.lea(rdi, ptr[rip + text])      # strlen by repne scasb
    a.xor(eax, eax)
    a.mov(rcx, -1)
    a.repne.scasb()
    a.not_(rcx)
    a.dec(rcx)
    a.mov(r13, rcx)
    a.lea(rsi, ptr[rip + text])      # compare with the copy: equal for 37 bytes
    a.mov(rdi, r12)
    a.mov(ecx, 40)
    a.repe.cmpsb()
    a.mov(r14, rcx)
    a.lea(rsi, ptr[rip + text + 4])  # backwards lodsb
    a.std()
    a.lodsb()
    a.lodsb()
    a.cld()
    a.movzx(r15, al)
    a.ret()
    a.bind(text)
    a.db(b"The quick brown fox jumps over the lazy dog.\0")


STRINGS = """
    mov r12, rdi
    lea rsi, [rip + text]
    mov ecx, 37
    rep movsb
    lea rdi, [r12 + 64]
    mov rax, 0x1122334455667788
    mov ecx, 4
    rep stosq
    lea rdi, [rip + text]
    xor eax, eax
    mov rcx, -1
    repne scasb
    not rcx
    dec rcx
    mov r13, rcx
    lea rsi, [rip + text]
    mov rdi, r12
    mov ecx, 40
    repe cmpsb
    mov r14, rcx
    lea rsi, [rip + text + 4]
    std
    lodsb
    lodsb
    cld
    movzx r15, al
    ret
text:
    .ascii "The quick brown fox jumps over the lazy dog.\\0"
"""


def atomics(a: Assembler) -> None:
    a.mov(qword[rdi], 40)
    a.mov(eax, 2)
    a.lock.xadd(qword[rdi], rax)
    a.mov(qword[rdi + 8], 7)
    a.mov(eax, 7)
    a.mov(ecx, 99)
    a.lock.cmpxchg(qword[rdi + 8], rcx)
    a.mov(edx, 5)
    a.xchg(qword[rdi + 16], rdx)
    a.lock.inc(dword[rdi + 24])
    a.lock.bts(qword[rdi + 32], 5)
    a.lock.or_(byte[rdi + 40], 0x81)
    a.ret()


ATOMICS = """
    mov qword ptr [rdi], 40
    mov eax, 2
    lock xadd qword ptr [rdi], rax
    mov qword ptr [rdi + 8], 7
    mov eax, 7
    mov ecx, 99
    lock cmpxchg qword ptr [rdi + 8], rcx
    mov edx, 5
    xchg qword ptr [rdi + 16], rdx
    lock inc dword ptr [rdi + 24]
    lock bts qword ptr [rdi + 32], 5
    lock or byte ptr [rdi + 40], 0x81
    ret
"""


def sse(a: Assembler) -> None:
    vec, half, floats = a.label("vec"), a.label("half"), a.label("floats")
    a.movdqu(xmm0, xmmword[rip + vec])
    a.paddd(xmm0, xmm0)
    a.pshufd(xmm1, xmm0, 0x1B)
    a.pxor(xmm15, xmm15)
    a.punpckldq(xmm15, xmm1)
    a.mov(eax, 9)
    a.cvtsi2sd(xmm2, rax)
    a.mulsd(xmm2, qword[rip + half])
    a.sqrtsd(xmm3, xmm2)
    a.movq(rbx, xmm3)
    a.cvttsd2si(ecx, xmm2)
    a.comisd(xmm3, xmm2)
    a.setb(dl)
    a.movups(xmm4, xmmword[rip + floats])
    a.shufps(xmm4, xmm4, 0x4E)
    a.addps(xmm4, xmmword[rip + floats])
    a.movss(xmm8, dword[rip + floats + 4])
    a.movdqu(xmmword[rdi], xmm1)
    a.movdqu(xmmword[rdi + 16], xmm15)
    a.movups(xmmword[rdi + 32], xmm4)
    a.movsd(qword[rdi + 48], xmm3)
    a.ret()
    a.align(16, fill=0)
    a.bind(vec)
    a.dd(1, 2, 3, 0x7FFFFFFF)
    a.bind(half)
    a.dq(0.5)
    a.bind(floats)
    a.dd(1.5, -2.25, 3.0, 1e10)


SSE = """
    movdqu xmm0, xmmword ptr [rip + vec]
    paddd xmm0, xmm0
    pshufd xmm1, xmm0, 0x1b
    pxor xmm15, xmm15
    punpckldq xmm15, xmm1
    mov eax, 9
    cvtsi2sd xmm2, rax
    mulsd xmm2, qword ptr [rip + half]
    sqrtsd xmm3, xmm2
    movq rbx, xmm3
    cvttsd2si ecx, xmm2
    comisd xmm3, xmm2
    setb dl
    movups xmm4, xmmword ptr [rip + floats]
    shufps xmm4, xmm4, 0x4e
    addps xmm4, xmmword ptr [rip + floats]
    movss xmm8, dword ptr [rip + floats + 4]
    movdqu xmmword ptr [rdi], xmm1
    movdqu xmmword ptr [rdi + 16], xmm15
    movups xmmword ptr [rdi + 32], xmm4
    movsd qword ptr [rdi + 48], xmm3
    ret
    .balign 16, 0
vec:
    .long 1, 2, 3, 0x7fffffff
half:
    .double 0.5
floats:
    .float 1.5, -2.25, 3.0, 1e10
"""


def x87(a: Assembler) -> None:
    two, three, big = a.label("two"), a.label("three"), a.label("big")
    a.fninit()
    a.fld(qword[rip + two])
    a.fld(qword[rip + three])
    a.fmul(st0, st1)
    a.fadd(qword[rip + two])
    a.fstp(qword[rdi])
    a.fild(dword[rip + big])
    a.fistp(qword[rdi + 8])
    a.fld(tword[rip + big + 8])
    a.fstp(tword[rdi + 16])
    a.fnstcw(word[rdi + 32])
    a.fcom(st1)
    a.fnstsw(ax)
    a.fstp(st0)
    a.ret()
    a.bind(two)
    a.dq(2.0)
    a.bind(three)
    a.dq(3.0)
    a.bind(big)
    a.dd(123456789, 0)
    a.dq(0x8000000000000000)   # 80-bit 1.0: mantissa with the integer bit,
    a.dw(0x3FFF)               # and the biased exponent


X87 = """
    fninit
    fld qword ptr [rip + two]
    fld qword ptr [rip + three]
    fmul st(0), st(1)
    fadd qword ptr [rip + two]
    fstp qword ptr [rdi]
    fild dword ptr [rip + big]
    fistp qword ptr [rdi + 8]
    fld tbyte ptr [rip + big + 8]
    fstp tbyte ptr [rdi + 16]
    fnstcw word ptr [rdi + 32]
    fcom st(1)
    fnstsw ax
    fstp st(0)
    ret
two:
    .double 2.0
three:
    .double 3.0
big:
    .long 123456789, 0
    .quad 0x8000000000000000
    .short 0x3fff
"""


def integer_forms(a: Assembler) -> None:
    """Operand sizes, immediates of every width, shifts, bit scans, widening and division."""
    a.mov(rax, 0x8877665544332211)
    a.mov(ebx, 0xFFFFFFFF)
    a.mov(ecx, 5)
    a.mov(r9w, 0x1234)
    a.movzx(edx, ah)
    a.movsx(rsi, al)
    a.movsxd(r8, ebx)
    a.bswap(rax)
    a.imul(r10, rcx, 1000)
    a.imul(r11, rcx, -3)
    a.shl(rcx, 1)
    a.shr(r8d, 3)
    a.sar(r10, cl)
    a.rol(r9w, 4)
    a.rcr(bl, 1)
    a.shld(rax, rcx, 12)
    a.shrd(rbx, rdx, cl)
    a.bt(rax, 3)
    a.setc(sil)
    a.btc(rdx, 17)
    a.bsf(r12, rax)
    a.bsr(r13, rax)
    a.add(r9w, -1)
    a.and_(eax, 0xFFFFFFF0)
    a.or_(si, 0x100)
    a.xor(r8b, 0x7F)
    a.sub(rbx, 0x12345)
    a.neg(r13)
    a.not_(r12)
    a.mov(r14, rax)
    a.cqo()
    a.mov(r15, 1000)
    a.idiv(r15)
    a.mov(qword[rdi], rax)
    a.mov(qword[rdi + 8], rdx)
    a.mov(eax, 0x89ABCDEF)
    a.cdqe()
    a.cwde()
    a.cbw()
    a.ret()


INTEGER_FORMS = """
    mov rax, 0x8877665544332211
    mov ebx, 0xffffffff
    mov ecx, 5
    mov r9w, 0x1234
    movzx edx, ah
    movsx rsi, al
    movsxd r8, ebx
    bswap rax
    imul r10, rcx, 1000
    imul r11, rcx, -3
    shl rcx, 1
    shr r8d, 3
    sar r10, cl
    rol r9w, 4
    rcr bl, 1
    shld rax, rcx, 12
    shrd rbx, rdx, cl
    bt rax, 3
    setc sil
    btc rdx, 17
    bsf r12, rax
    bsr r13, rax
    add r9w, -1
    and eax, 0xfffffff0
    or si, 0x100
    xor r8b, 0x7f
    sub rbx, 0x12345
    neg r13
    not r12
    mov r14, rax
    cqo
    mov r15, 1000
    idiv r15
    mov qword ptr [rdi], rax
    mov qword ptr [rdi + 8], rdx
    mov eax, 0x89abcdef
    cdqe
    cwde
    cbw
    ret
"""


def tables(a: Assembler) -> None:
    """Data directives, alignment executed as NOPs, a jump table of label addresses, absolute labels."""
    table, words, cases, done = a.label("table"), a.label("words"), a.label("cases"), a.label("done")
    case1, case2 = a.label("case1"), a.label("case2")
    a.mov(ecx, 2)
    a.mov(eax, dword[words + rcx * 4])        # absolute: the image lies below 2 GiB
    a.mov(rbx, table)                         # an address as an immediate
    a.lea(rdx, ptr[rip + cases])
    a.align(16)                               # executed: padding of NOPs
    a.jmp(qword[rdx + rcx * 8 - 8])
    a.bind(case1)
    a.mov(esi, 1)
    a.jmp(done)
    a.bind(case2)
    a.mov(esi, 2)
    a.align(32)
    a.bind(done)
    a.mov(r8, qword[rip + table + 8])
    a.movzx(r9d, word[rip + table + 2])
    a.mov(qword[rdi], rax)
    a.ret()
    a.align(8, fill=0)
    a.bind(table)
    a.db(1, 2, 0xFF, -1)
    a.dw(0x1234, -2)
    a.dd(0xDEADBEEF, table)
    a.dq(-1)
    a.bind(words)
    a.dd(10, 20, 30, 40)
    a.bind(cases)
    a.dq(case1, case2)


TABLES = """
    mov ecx, 2
    mov eax, dword ptr [words + rcx*4]
    mov rbx, offset table
    lea rdx, [rip + cases]
    .balign 16
    jmp qword ptr [rdx + rcx*8 - 8]
case1:
    mov esi, 1
    jmp done
case2:
    mov esi, 2
    .balign 32
done:
    mov r8, qword ptr [rip + table + 8]
    movzx r9d, word ptr [rip + table + 2]
    mov qword ptr [rdi], rax
    ret
    .balign 8, 0
table:
    .byte 1, 2, 0xff, -1
    .short 0x1234, -2
    .long 0xdeadbeef, table
    .quad -1
words:
    .long 10, 20, 30, 40
cases:
    .quad case1, case2
"""


def frames(a: Assembler) -> None:
    """enter/leave, push of immediates and memory, pushfq/popfq, call and ret imm16, xchg."""
    callee = a.label("callee")
    a.enter(32, 0)
    a.mov(qword[rbp - 8], rdi)
    a.push(5)
    a.push(0x12345)
    a.push(qword[rbp - 8])
    a.pop(rcx)
    a.pop(rdx)
    a.pop(rsi)
    a.stc()
    a.pushf()
    a.pop(r8)
    a.and_(r8, 0xFF)
    a.push(r8)
    a.popf()
    a.push(7)
    a.call(callee)
    a.mov(rbx, rsp)
    a.sub(rbx, rbp)
    a.leave()
    a.xchg(rax, rdx)
    a.ret()
    a.bind(callee)
    a.mov(rax, qword[rsp + 8])
    a.ret(8)


FRAMES = """
    enter 32, 0
    mov qword ptr [rbp - 8], rdi
    push 5
    push 0x12345
    push qword ptr [rbp - 8]
    pop rcx
    pop rdx
    pop rsi
    stc
    pushf
    pop r8
    and r8, 0xff
    push r8
    popf
    push 7
    call callee
    mov rbx, rsp
    sub rbx, rbp
    leave
    xchg rax, rdx
    ret
callee:
    mov rax, qword ptr [rsp + 8]
    ret 8
"""


def counted_loop(a: Assembler, n: int) -> list[Instr]:
    """Instructions as values: built here, emitted by the caller."""
    top, out = a.label("top"), a.label("out")
    body = [insn.mov(ecx, n), insn.xor(edx, edx), insn.jrcxz(out)]
    a.extend(body)
    a.bind(top)
    return [insn.add(edx, ecx), insn.loop(top), insn.mov(dword[rdi + 4], edx), insn.jrcxz(out), insn.ud2()]


SEGMENTS_AND_LOOPS = """
    mov rax, qword ptr fs:[0x10]
    mov qword ptr gs:[0x20], rax
    mov ebx, dword ptr fs:[rcx*4 + 0x30]
    mov ecx, 5
    xor edx, edx
    jrcxz out
top:
    add edx, ecx
    loop top
    mov dword ptr [rdi + 4], edx
    jrcxz out
    ud2
out:
    ret
"""


def segments_program(a: Assembler) -> None:
    """fs/gs overrides (the runner sets their bases) and loop/jrcxz from instruction values."""
    a.mov(rax, qword[fs: 0x10])
    a.mov(qword[gs: 0x20], rax)
    a.mov(ebx, dword[fs: rcx * 4 + 0x30])
    a.extend(counted_loop(a, 5))
    a.bind("out")
    a.ret()


PROGRAMS = [
    Program("sum_loop", sum_loop, SUM_LOOP),
    Program("conditions", conditions, CONDITIONS),
    Program("relaxation", relaxation, RELAXATION),
    Program("strings", strings, STRINGS),
    Program("atomics", atomics, ATOMICS),
    Program("sse", sse, SSE),
    Program("x87", x87, X87),
    Program("integer_forms", integer_forms, INTEGER_FORMS),
    Program("tables", tables, TABLES, same_bytes=False),  # align: our NOPs are not GNU as's
    Program("frames", frames, FRAMES),
    Program("segments_and_loops", segments_program, SEGMENTS_AND_LOOPS, regs={"rcx": 1}),
]
