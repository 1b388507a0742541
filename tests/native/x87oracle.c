/* x87 oracle: reads "OP CW A B" lines (A, B as 20 hex digits: sign/exponent then significand;
 * st0 = A, st1 = B), runs OP on the CPU and prints "R0 R1 SW [EFLAGS]" (R0 = st0, R1 = st1 after
 * the instruction, as 20 hex digits; the status word before the stores). Part of tcg2wasm's tests:
 * the Python reference of the x87 ops (tcg2wasm/ir/x87_float.py) is compared with it. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

typedef struct { uint64_t lo; uint16_t hi; } __attribute__((packed)) f80;

static int parse80(const char *s, f80 *v) {
    char hi[5]; if (strlen(s) != 20) return 0;
    memcpy(hi, s, 4); hi[4] = 0;
    v->hi = (uint16_t)strtoul(hi, 0, 16); v->lo = strtoull(s + 4, 0, 16); return 1;
}

#define PRE "fninit\n fldcw %[cw]\n fldt %[b]\n fldt %[a]\n"
#define POST "fnstsw %[sw]\n fnclex\n fstpt %[r0]\n fstpt %[r1]\n"
#define RUN(INSN) __asm__ volatile(PRE INSN "\n" POST : [sw] "=m"(sw), [r0] "=m"(r0), [r1] "=m"(r1) \
        : [cw] "m"(cw), [a] "m"(a), [b] "m"(b) : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)")
/* memory-operand forms: the result of a store, as a 64-bit value */
#define STORE(INSN, T) { T out = 0; __asm__ volatile(PRE INSN " %[m]\n fnstsw %[sw]\n fnclex\n fstpt %[r0]\n fstpt %[r1]\n" \
        : [sw] "=m"(sw), [r0] "=m"(r0), [r1] "=m"(r1), [m] "+m"(out) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b) \
        : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"); mem = (uint64_t)out; has_mem = 1; }
#define LOAD(INSN, T) { T in = (T)a.lo; __asm__ volatile("fninit\n fldcw %[cw]\n fldt %[b]\n" INSN " %[m]\n fnstsw %[sw]\n fnclex\n fstpt %[r0]\n fstpt %[r1]\n" \
        : [sw] "=m"(sw), [r0] "=m"(r0), [r1] "=m"(r1) : [m] "m"(in), [cw] "m"(cw), [b] "m"(b) \
        : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"); }
#define FLAGS(INSN) __asm__ volatile(PRE INSN "\n fnstsw %[sw]\n pushfq\n popq %[fl]\n fnclex\n fstpt %[r0]\n fstpt %[r1]\n" \
        : [sw] "=m"(sw), [r0] "=m"(r0), [r1] "=m"(r1), [fl] "=r"(fl) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b) \
        : "memory", "cc", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)")

int main(void) {
    char line[256], op[32], as[64], bs[64];
    while (fgets(line, sizeof line, stdin)) {
        unsigned cwv; f80 a, b, r0 = {0, 0}, r1 = {0, 0}; uint16_t sw = 0, cw; uint64_t fl = 0, mem = 0; int has_mem = 0;
        if (sscanf(line, "%31s %x %63s %63s", op, &cwv, as, bs) != 4 || !parse80(as, &a) || !parse80(bs, &b)) {
            printf("bad input\n"); fflush(stdout); continue;
        }
        cw = (uint16_t)cwv;
        if (!strcmp(op, "add")) RUN("fadd %%st(1), %%st");
        else if (!strcmp(op, "sub")) RUN("fsub %%st(1), %%st");
        else if (!strcmp(op, "subr")) RUN("fsubr %%st(1), %%st");
        else if (!strcmp(op, "mul")) RUN("fmul %%st(1), %%st");
        else if (!strcmp(op, "div")) RUN("fdiv %%st(1), %%st");
        else if (!strcmp(op, "divr")) RUN("fdivr %%st(1), %%st");
        else if (!strcmp(op, "sqrt")) RUN("fsqrt");
        else if (!strcmp(op, "rndint")) RUN("frndint");
        else if (!strcmp(op, "scale")) RUN("fscale");
        else if (!strcmp(op, "prem")) RUN("fprem");
        else if (!strcmp(op, "prem1")) RUN("fprem1");
        else if (!strcmp(op, "f2xm1")) RUN("f2xm1");
        else if (!strcmp(op, "yl2x")) RUN("fyl2x\n fldz\n fxch");
        else if (!strcmp(op, "yl2xp1")) RUN("fyl2xp1\n fldz\n fxch");
        else if (!strcmp(op, "patan")) RUN("fpatan\n fldz\n fxch");
        else if (!strcmp(op, "sin")) RUN("fsin");
        else if (!strcmp(op, "cos")) RUN("fcos");
        else if (!strcmp(op, "ptan")) RUN("fstp %%st(1)\n fptan");
        else if (!strcmp(op, "sincos")) RUN("fstp %%st(1)\n fsincos");
        else if (!strcmp(op, "xtract")) RUN("fstp %%st(1)\n fxtract");
        else if (!strcmp(op, "xam")) RUN("fxam");
        else if (!strcmp(op, "tst")) RUN("ftst");
        else if (!strcmp(op, "com")) RUN("fcom %%st(1)");
        else if (!strcmp(op, "ucom")) RUN("fucom %%st(1)");
        else if (!strcmp(op, "comi")) FLAGS("fcomi %%st(1), %%st");
        else if (!strcmp(op, "ucomi")) FLAGS("fucomi %%st(1), %%st");
        else if (!strcmp(op, "st32")) STORE("fsts", uint32_t)
        else if (!strcmp(op, "st64")) STORE("fstl", uint64_t)
        else if (!strcmp(op, "ist16")) STORE("fists", uint16_t)
        else if (!strcmp(op, "ist32")) STORE("fistl", uint32_t)
        else if (!strcmp(op, "ist64")) STORE("fistpll", uint64_t)
        else if (!strcmp(op, "istt16")) STORE("fisttps", uint16_t)
        else if (!strcmp(op, "istt32")) STORE("fisttpl", uint32_t)
        else if (!strcmp(op, "istt64")) STORE("fisttpll", uint64_t)
        else if (!strcmp(op, "ld32")) LOAD("flds", uint32_t)
        else if (!strcmp(op, "ld64")) LOAD("fldl", uint64_t)
        else if (!strcmp(op, "ild16")) LOAD("filds", uint16_t)
        else if (!strcmp(op, "ild32")) LOAD("fildl", uint32_t)
        else if (!strcmp(op, "ild64")) LOAD("fildll", uint64_t)
        else if (!strcmp(op, "ldpi")) RUN("fldpi");
        else if (!strcmp(op, "ldl2e")) RUN("fldl2e");
        else if (!strcmp(op, "ldl2t")) RUN("fldl2t");
        else if (!strcmp(op, "ldlg2")) RUN("fldlg2");
        else if (!strcmp(op, "ldln2")) RUN("fldln2");
        else if (!strcmp(op, "ld1")) RUN("fld1");
        else { printf("bad op %s\n", op); fflush(stdout); continue; }
        printf("%04x%016llx %04x%016llx %04x", r0.hi, (unsigned long long)r0.lo, r1.hi, (unsigned long long)r1.lo, sw);
        if (fl) printf(" %llx", (unsigned long long)(fl & 0x8d5));
        if (has_mem) printf(" %llx", (unsigned long long)mem);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
