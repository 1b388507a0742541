# CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of a LEN-byte buffer,
# table-driven; the table is built at run time bit by bit. REPEAT times over.
# The buffer holds bytes of a linear congruential sequence (see tools/mkcase.py).
# Result: rax = crc32(buffer). Ends at `done: hlt`.
.intel_syntax noprefix

.ifndef LEN
.equ LEN, 4096
.endif
.ifndef REPEAT
.equ REPEAT, 1
.endif

.text
.globl _start
_start:
    lea rdi, [rip + table]
    call make_table
    mov r12d, REPEAT
again:
    lea rdi, [rip + table]
    lea rsi, [rip + buffer]
    mov edx, LEN
    call crc32
    dec r12d
    jnz again
done:
    hlt

# make_table(rdi = 256 dwords)
make_table:
    xor ecx, ecx
table_entry:
    mov eax, ecx
    mov r8d, 8
table_bit:
    shr eax, 1                    # CF = the bit shifted out
    jnc table_no_xor
    xor eax, 0xEDB88320
table_no_xor:
    dec r8d
    jnz table_bit
    mov dword ptr [rdi + rcx * 4], eax
    inc ecx
    cmp ecx, 256
    jb table_entry
    ret

# crc32(rdi = table, rsi = buffer, rdx = length) -> rax
crc32:
    mov eax, 0xFFFFFFFF
    test rdx, rdx
    jz crc_done
crc_byte:
    movzx ecx, byte ptr [rsi]
    xor cl, al
    shr eax, 8
    xor eax, dword ptr [rdi + rcx * 4]
    inc rsi
    dec rdx
    jnz crc_byte
crc_done:
    not eax                       # also zero-extends into rax
    ret

.data
.balign 64
buffer:
    .set seed, 12345
    .rept LEN
    .set seed, (seed * 1103515245 + 12345) & 0x7fffffff
    .byte (seed >> 16) & 0xff
    .endr

.bss
.balign 64
table:
    .skip 1024
