/* Runs x86-64 snippets natively, as tests/lift_harness.py runs them in Unicorn and in tcg2wasm.
 *
 * Input on stdin, repeated: a header line "CODE_HEX" then "REGS" (17 hex values: rax..r15 in
 * harness order, rflags), "MXCSR FCW" and the data area as 0x2000 bytes of hex on one line.
 * Code is placed at 0x10000, data at 0x20000, the stack at 0x30000-0x32000 (as in the harness);
 * the snippet runs until it falls off its end. Output per run: "end" or "signal N" and the final
 * registers, rflags, the fnstenv image (28 bytes), ST0-ST7 (fxsave), MXCSR and the data area.
 * Built by tests/native.py with gcc; part of tcg2wasm's tests (the native CPU as the oracle). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define CODE 0x10000UL
#define DATA 0x20000UL
#define DATA_SIZE 0x2000UL
#define STACK 0x30000UL
#define STACK_SIZE 0x2000UL

struct state { uint64_t gpr[16]; uint64_t rflags; uint32_t mxcsr; uint16_t fcw; } __attribute__((packed));
struct state in, out;
unsigned char fx_out[512] __attribute__((aligned(16)));
unsigned char env_out[28];
uint64_t host_rsp;
static sigjmp_buf recover;
static volatile int got_signal;

/* regs order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 (tcg2wasm.abi.GPR_NAMES) */
extern void enter_snippet(void);
__asm__(
    ".globl enter_snippet\n enter_snippet:\n"
    " push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, host_rsp(%rip)\n"
    " fninit\n ldmxcsr in+136(%rip)\n fldcw in+140(%rip)\n"
    " pxor %xmm0, %xmm0\n pxor %xmm1, %xmm1\n pxor %xmm2, %xmm2\n pxor %xmm3, %xmm3\n"
    " pxor %xmm4, %xmm4\n pxor %xmm5, %xmm5\n pxor %xmm6, %xmm6\n pxor %xmm7, %xmm7\n"
    " pxor %xmm8, %xmm8\n pxor %xmm9, %xmm9\n pxor %xmm10, %xmm10\n pxor %xmm11, %xmm11\n"
    " pxor %xmm12, %xmm12\n pxor %xmm13, %xmm13\n pxor %xmm14, %xmm14\n pxor %xmm15, %xmm15\n"
    " push in+128(%rip)\n popfq\n"
    " mov in+0(%rip), %rax\n mov in+8(%rip), %rcx\n mov in+16(%rip), %rdx\n mov in+24(%rip), %rbx\n"
    " mov in+40(%rip), %rbp\n mov in+48(%rip), %rsi\n mov in+56(%rip), %rdi\n"
    " mov in+64(%rip), %r8\n mov in+72(%rip), %r9\n mov in+80(%rip), %r10\n mov in+88(%rip), %r11\n"
    " mov in+96(%rip), %r12\n mov in+104(%rip), %r13\n mov in+112(%rip), %r14\n mov in+120(%rip), %r15\n"
    " mov in+32(%rip), %rsp\n"
    " jmp *code_entry(%rip)\n"
    ".globl snippet_exit\n snippet_exit:\n"
    " mov %rax, out+0(%rip)\n mov %rcx, out+8(%rip)\n mov %rdx, out+16(%rip)\n mov %rbx, out+24(%rip)\n"
    " mov %rsp, out+32(%rip)\n mov %rbp, out+40(%rip)\n mov %rsi, out+48(%rip)\n mov %rdi, out+56(%rip)\n"
    " mov %r8, out+64(%rip)\n mov %r9, out+72(%rip)\n mov %r10, out+80(%rip)\n mov %r11, out+88(%rip)\n"
    " mov %r12, out+96(%rip)\n mov %r13, out+104(%rip)\n mov %r14, out+112(%rip)\n mov %r15, out+120(%rip)\n"
    " mov host_rsp(%rip), %rsp\n"
    " pushfq\n pop out+128(%rip)\n"
    " fnstenv env_out(%rip)\n fldenv env_out(%rip)\n fxsave fx_out(%rip)\n stmxcsr out+136(%rip)\n"
    " fninit\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n ret\n");
extern void snippet_exit(void);
void *code_entry = (void *)CODE;

static void on_signal(int sig, siginfo_t *info, void *uc_) {
    (void)info; (void)uc_;
    got_signal = sig;
    siglongjmp(recover, 1);
}

static int read_hex(const char *s, unsigned char *buf, size_t max) {
    size_t n = 0;
    while (s[0] && s[1] && s[0] != '\n' && n < max) { unsigned v; sscanf(s, "%2x", &v); buf[n++] = (unsigned char)v; s += 2; }
    return (int)n;
}

int main(void) {
    static char line[3 * DATA_SIZE + 64];
    unsigned char *code = mmap((void *)CODE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    unsigned char *data = mmap((void *)DATA, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    void *stack = mmap((void *)STACK, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (code == MAP_FAILED || data == MAP_FAILED || stack == MAP_FAILED) { perror("mmap"); return 2; }
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_signal; sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0); sigaction(SIGFPE, &sa, 0); sigaction(SIGILL, &sa, 0); sigaction(SIGBUS, &sa, 0);
    while (fgets(line, sizeof line, stdin)) {
        memset(code, 0xcc, 0x1000);
        int n = read_hex(line, code, 0x1000 - 16);
        code[n] = 0xff; code[n + 1] = 0x24; code[n + 2] = 0x25;  /* jmp [abs32]: the exit pointer just after */
        uint32_t slot = (uint32_t)(CODE + n + 8); memcpy(code + n + 3, &slot, 4);
        uint64_t target = (uint64_t)snippet_exit; memcpy(code + n + 8, &target, 8);
        if (!fgets(line, sizeof line, stdin)) break;
        char *p = line;
        for (int i = 0; i < 16; i++) in.gpr[i] = strtoull(p, &p, 16);
        in.rflags = strtoull(p, &p, 16);
        if (!fgets(line, sizeof line, stdin)) break;
        unsigned mx, cw; sscanf(line, "%x %x", &mx, &cw); in.mxcsr = mx; in.fcw = (uint16_t)cw;
        if (!fgets(line, sizeof line, stdin)) break;
        memset(data, 0, DATA_SIZE); read_hex(line, data, DATA_SIZE);
        memset(stack, 0, STACK_SIZE);
        got_signal = 0;
        if (sigsetjmp(recover, 1) == 0) enter_snippet();
        else { __asm__ volatile("mov host_rsp(%%rip), %%rax\n" ::: "rax"); }
        if (got_signal) { printf("signal %d\n", got_signal); __asm__ volatile("fninit"); fflush(stdout); continue; }
        printf("end");
        for (int i = 0; i < 16; i++) printf(" %llx", (unsigned long long)out.gpr[i]);
        printf(" %llx %x\n", (unsigned long long)out.rflags, out.mxcsr);
        for (int i = 0; i < 28; i++) printf("%02x", env_out[i]);
        printf("\n");
        for (int i = 0; i < 8; i++) { for (int j = 9; j >= 0; j--) printf("%02x", fx_out[32 + 16 * i + j]); printf(i < 7 ? " " : "\n"); }
        for (size_t i = 0; i < DATA_SIZE; i++) printf("%02x", data[i]);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
