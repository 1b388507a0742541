# Sieve of Eratosthenes: count the primes below N, REPEAT times over.
# Result: rax = number of primes below N. Ends at `done: hlt`.
# tools/mkcase.py assembles this file (with --defsym N=... REPEAT=...) into a case;
# tools/bench.py also builds it with --defsym NATIVE=1 into a Linux program that exits with the count.
.intel_syntax noprefix

.ifndef N
.equ N, 10000
.endif
.ifndef REPEAT
.equ REPEAT, 1
.endif

.text
.globl _start
_start:
    mov r12d, REPEAT
again:
    lea rdi, [rip + composite]
    mov esi, N
    call sieve
    dec r12d
    jnz again
done:
.ifdef NATIVE
    mov edi, eax                  # native build (tools/bench.py): exit(primes & 0xff)
    mov eax, 60
    syscall
.else
    hlt
.endif

# sieve(rdi = byte array of n flags, rsi = n) -> rax = primes below n
sieve:
    push rbx
    xor ecx, ecx                  # clear the flags (they are reused across repeats)
clear:
    mov qword ptr [rdi + rcx], 0
    add rcx, 8
    cmp rcx, rsi
    jb clear
    mov ecx, 2                    # i
outer:
    mov rax, rcx
    imul rax, rcx                 # j = i * i
    cmp rax, rsi
    jae count
    cmp byte ptr [rdi + rcx], 0
    jne next
mark:
    mov byte ptr [rdi + rax], 1
    add rax, rcx
    cmp rax, rsi
    jb mark
next:
    inc rcx
    jmp outer
count:
    xor eax, eax
    mov ecx, 2
count_loop:
    cmp rcx, rsi
    jae count_done
    movzx ebx, byte ptr [rdi + rcx]
    xor ebx, 1
    add rax, rbx                  # one more prime when the flag is clear
    inc rcx
    jmp count_loop
count_done:
    pop rbx
    ret

.bss
.balign 64
composite:
    .skip N + 8
