/* Integer conformance: nested enter at every level in both operand sizes, loop/jecxz and string
 * instructions with a 32-bit address size. Compared line for line with the native run. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t stack_area[512];
static uint16_t stack16[1024];

#define ENTER(L) do { \
    for (int i = 0; i < 512; i++) stack_area[i] = 0x1111000000000000ULL + i; \
    uint64_t rsp_in = (uint64_t)&stack_area[300], rbp_in = (uint64_t)&stack_area[400], rsp_out, rbp_out; \
    __asm__ volatile("mov %%rsp,%%r12\n mov %%rbp,%%r13\n mov %2,%%rsp\n mov %3,%%rbp\n enter $0x18, $" #L "\n" \
                     "mov %%rsp,%0\n mov %%rbp,%1\n mov %%r12,%%rsp\n mov %%r13,%%rbp" \
                     : "=r"(rsp_out), "=r"(rbp_out) : "r"(rsp_in), "r"(rbp_in) : "r12", "r13", "memory"); \
    printf("enter %2d: rsp %lld rbp %lld", L, (long long)(rsp_in - rsp_out), (long long)(rsp_in - rbp_out)); \
    for (int i = 260; i < 300; i++) printf(" %llx", (unsigned long long)(stack_area[i] & 0xffff)); \
    printf("\n"); \
    for (int i = 0; i < 1024; i++) stack16[i] = (uint16_t)(0x2000 + i); \
    rsp_in = (uint64_t)&stack16[600]; rbp_in = 0x5555000000000000ULL | ((uint64_t)&stack16[800] & 0xffffffffffffULL); \
    rbp_in = (uint64_t)&stack16[800]; \
    __asm__ volatile("mov %%rsp,%%r12\n mov %%rbp,%%r13\n mov %2,%%rsp\n mov %3,%%rbp\n .byte 0x66, 0xc8, 0x08, 0x00, " #L "\n" \
                     "mov %%rsp,%0\n mov %%rbp,%1\n mov %%r12,%%rsp\n mov %%r13,%%rbp" \
                     : "=r"(rsp_out), "=r"(rbp_out) : "r"(rsp_in), "r"(rbp_in) : "r12", "r13", "memory"); \
    printf("enterw %2d: rsp %lld bp %llx upper-same %d", L, (long long)(rsp_in - rsp_out), \
           (unsigned long long)((rsp_in - 2) - (rbp_out & 0xffff)) & 0xffff, (int)((rbp_out >> 16) == (rbp_in >> 16))); \
    for (int i = 560; i < 600; i++) printf(" %x", stack16[i] & 0xff); \
    printf("\n"); \
} while (0)

int main(void) {
    ENTER(0); ENTER(1); ENTER(2); ENTER(3); ENTER(4); ENTER(5); ENTER(6); ENTER(7); ENTER(8); ENTER(9); ENTER(10);
    ENTER(11); ENTER(12); ENTER(13); ENTER(14); ENTER(15); ENTER(16); ENTER(17); ENTER(18); ENTER(19); ENTER(20);
    ENTER(21); ENTER(22); ENTER(23); ENTER(24); ENTER(25); ENTER(26); ENTER(27); ENTER(28); ENTER(29); ENTER(30);
    ENTER(31);
    static const uint64_t COUNTS[] = {0, 1, 2, 0x100000000ULL, 0x100000001ULL, 0x100000002ULL, 0xffffffffULL,
                                      0xabcd000000000003ULL};
    for (unsigned k = 0; k < sizeof COUNTS / sizeof COUNTS[0]; k++) {
        uint64_t c, t;
        c = COUNTS[k]; __asm__ volatile("xor %%eax,%%eax\n .byte 0x67; loop 1f\n jmp 2f\n1: mov $1,%%eax\n2: mov %%rax,%1" : "+c"(c), "=r"(t) :: "rax");
        printf("loopl %llx -> %llx %llu\n", (unsigned long long)COUNTS[k], (unsigned long long)c, (unsigned long long)t);
        c = COUNTS[k]; __asm__ volatile("xor %%eax,%%eax\n cmp %%rax,%%rax\n .byte 0x67; loopz 1f\n jmp 2f\n1: mov $1,%%eax\n2: mov %%rax,%1" : "+c"(c), "=r"(t) :: "rax", "cc");
        printf("loopzl %llx -> %llx %llu\n", (unsigned long long)COUNTS[k], (unsigned long long)c, (unsigned long long)t);
        c = COUNTS[k]; __asm__ volatile("xor %%eax,%%eax\n cmp $1,%%rax\n .byte 0x67; loopnz 1f\n jmp 2f\n1: mov $1,%%eax\n2: mov %%rax,%1" : "+c"(c), "=r"(t) :: "rax", "cc");
        printf("loopnzl %llx -> %llx %llu\n", (unsigned long long)COUNTS[k], (unsigned long long)c, (unsigned long long)t);
        c = COUNTS[k]; __asm__ volatile("xor %%eax,%%eax\n jecxz 1f\n jmp 2f\n1: mov $1,%%eax\n2: mov %%rax,%1" : "+c"(c), "=r"(t) :: "rax");
        printf("jecxz %llx -> %llu\n", (unsigned long long)COUNTS[k], (unsigned long long)t);
        static char src[64] = "abcdefghijklmnopqrstuvwxyz0123456789", dst[64];
        memset(dst, '.', 63); dst[63] = 0;
        uint64_t s = (uint64_t)src | 0xff00000000000000ULL, d = (uint64_t)dst | 0x1200000000000000ULL;
        c = (COUNTS[k] & 0xffffffff00000000ULL) | ((COUNTS[k] & 0xffffffffULL) % 40);
        __asm__ volatile(".byte 0x67; rep movsb" : "+S"(s), "+D"(d), "+c"(c) :: "memory");
        printf("movsbl -> rsi+%lld rdi+%lld rcx %llx %s\n", (long long)(s - (uint64_t)src), (long long)(d - (uint64_t)dst),
               (unsigned long long)c, dst);
    }
    return 0;
}
