/* x87 conformance: arithmetic, conversions and compares over special values, in every rounding
 * mode and precision. Each line: the operation, the control word, the operands' bits, the
 * result's bits and the status word (C0, C2, C3 masked where the SDM leaves them undefined).
 * Compared line for line with the native run (make conformance; tests/test_conformance.py). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct { uint64_t lo; uint16_t hi; } __attribute__((packed)) f80;

static const f80 VALUES[] = {
    {0, 0}, {0, 0x8000}, {1ULL << 63, 0x3fff}, {1ULL << 63, 0xbfff}, {0xc000000000000000ULL, 0x4000},
    {0xaaaaaaaaaaaaaaabULL, 0x3fff}, {0xffffffffffffffffULL, 0x3ffe}, {0x8000000000000001ULL, 0x3fff},
    {1ULL << 63, 0x7fff}, {1ULL << 63, 0xffff}, {0xc000000000000000ULL, 0x7fff}, {0xa000000000000000ULL, 0x7fff},
    {0xc000000000000001ULL, 0xffff}, {1, 0}, {0x8000000000000001ULL, 0}, {0x4000000000000000ULL, 0x3fff},
    {0xffffffffffffffffULL, 0x7ffe}, {1ULL << 63, 1}, {0xffffffffffffffffULL, 0x403e}, {0x8000000000000800ULL, 0x4034},
    {0xc90fdaa22168c235ULL, 0x4000}, {0x9e3779b97f4a7c15ULL, 0x3ffa}, {0xfffffffffffff800ULL, 0x43fe},
    {0x8000000000000400ULL, 0x3c00},
};
#define NV (sizeof VALUES / sizeof VALUES[0])
static const uint16_t MODES[] = {0x037f, 0x077f, 0x0b7f, 0x0f7f, 0x007f, 0x027f, 0x047f, 0x0e7f};
#define NM (sizeof MODES / sizeof MODES[0])
#define ARITH_SW 0x3aff  /* C1, TOP, exceptions, ES; C0 C2 C3 undefined after arithmetic */

static void print80(const char *op, uint16_t cw, f80 a, f80 b, f80 r, uint16_t sw, uint16_t mask) {
    printf("%s %04x %04x%016llx %04x%016llx -> %04x%016llx sw %04x\n", op, cw, a.hi, (unsigned long long)a.lo,
           b.hi, (unsigned long long)b.lo, r.hi, (unsigned long long)r.lo, sw & mask);
}

#define BINARY(NAME, INSN) static void NAME(uint16_t cw, f80 a, f80 b) { f80 r; uint16_t sw; \
    __asm__ volatile("fninit\n fldcw %[cw]\n fldt %[b]\n fldt %[a]\n" INSN "\n fnstsw %[sw]\n fnclex\n fstpt %[r]\n fstp %%st(0)\n" \
        : [r] "=m"(r), [sw] "=m"(sw) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b) : "memory", "st", "st(1)"); \
    print80(#NAME, cw, a, b, r, sw, ARITH_SW); }
BINARY(fadd, "fadd %%st(1), %%st")
BINARY(fsub, "fsub %%st(1), %%st")
BINARY(fmul, "fmul %%st(1), %%st")
BINARY(fdiv, "fdiv %%st(1), %%st")
BINARY(fdivr, "fdivr %%st(1), %%st")
BINARY(fscale, "fscale")
BINARY(fprem, "fprem")
BINARY(fprem1, "fprem1")
#define UNARY(NAME, INSN) static void NAME(uint16_t cw, f80 a) { f80 r; uint16_t sw; \
    __asm__ volatile("fninit\n fldcw %[cw]\n fldt %[a]\n" INSN "\n fnstsw %[sw]\n fnclex\n fstpt %[r]\n" \
        : [r] "=m"(r), [sw] "=m"(sw) : [cw] "m"(cw), [a] "m"(a) : "memory", "st"); \
    print80(#NAME, cw, a, a, r, sw, ARITH_SW); }
UNARY(fsqrt, "fsqrt")
UNARY(frndint, "frndint")
UNARY(fxam, "fxam")
UNARY(fchs, "fchs")

static void compares(uint16_t cw, f80 a, f80 b) {
    uint16_t sw1, sw2; uint64_t fl;
    __asm__ volatile("fninit\n fldcw %[cw]\n fldt %[b]\n fldt %[a]\n fcom %%st(1)\n fnstsw %[s1]\n fnclex\n"
                     "fucomi %%st(1), %%st\n pushfq\n popq %[fl]\n fnstsw %[s2]\n fnclex\n fstp %%st(0)\n fstp %%st(0)\n"
                     : [s1] "=m"(sw1), [s2] "=m"(sw2), [fl] "=r"(fl) : [cw] "m"(cw), [a] "m"(a), [b] "m"(b)
                     : "memory", "cc", "st", "st(1)");
    printf("fcom %04x %04x%016llx %04x%016llx sw %04x fucomi %04x flags %03llx\n", cw, a.hi, (unsigned long long)a.lo,
           b.hi, (unsigned long long)b.lo, sw1, sw2 & 0x3aff, (unsigned long long)(fl & 0x8d5));
}

static void stores(uint16_t cw, f80 a) {
    uint32_t f32 = 0; uint64_t f64 = 0, i64 = 0, t64 = 0; uint32_t i32 = 0; uint16_t i16 = 0, sw; unsigned char bcd[10] = {0};
    __asm__ volatile("fninit\n fldcw %[cw]\n fldt %[a]\n fsts %[f32]\n fstl %[f64]\n fistl %[i32]\n fists %[i16]\n"
                     "fld %%st(0)\n fistpll %[i64]\n fld %%st(0)\n fisttpll %[t64]\n fld %%st(0)\n fbstp %[bcd]\n"
                     "fnstsw %[sw]\n fnclex\n fstp %%st(0)\n"
                     : [f32] "=m"(f32), [f64] "=m"(f64), [i32] "=m"(i32), [i16] "=m"(i16), [i64] "=m"(i64),
                       [t64] "=m"(t64), [bcd] "=m"(bcd), [sw] "=m"(sw) : [cw] "m"(cw), [a] "m"(a) : "memory", "st");
    printf("stores %04x %04x%016llx -> %08x %016llx %08x %04x %016llx %016llx ", cw, a.hi, (unsigned long long)a.lo,
           f32, (unsigned long long)f64, i32, i16, (unsigned long long)i64, (unsigned long long)t64);
    for (int i = 9; i >= 0; i--) printf("%02x", bcd[i]);
    printf(" sw %04x\n", sw & 0x3aff);
}

static void loads(uint16_t cw, uint64_t bits) {
    f80 r1, r2, r3; uint16_t sw; uint32_t b32 = (uint32_t)bits;
    __asm__ volatile("fninit\n fldcw %[cw]\n flds %[b32]\n fstpt %[r1]\n fldl %[b64]\n fstpt %[r2]\n fildll %[b64]\n fstpt %[r3]\n fnstsw %[sw]\n"
                     : [r1] "=m"(r1), [r2] "=m"(r2), [r3] "=m"(r3), [sw] "=m"(sw) : [cw] "m"(cw), [b32] "m"(b32), [b64] "m"(bits)
                     : "memory", "st");
    printf("loads %04x %016llx -> %04x%016llx %04x%016llx %04x%016llx sw %04x\n", cw, (unsigned long long)bits,
           r1.hi, (unsigned long long)r1.lo, r2.hi, (unsigned long long)r2.lo, r3.hi, (unsigned long long)r3.lo, sw & 0x3aff);
}

int main(int argc, char **argv) {
    unsigned step = argc > 1 ? 3 : 1;  /* any argument: a third of the operand pairs (the short set) */
    static const uint64_t BITS[] = {0, 1, 0x7ff0000000000000ULL, 0x7ff0000000000001ULL, 0x7ff8000000000000ULL,
        0x8000000000000000ULL, 0x3ff0000000000000ULL, 0x000fffffffffffffULL, 0x7f800001ULL, 0x7fc00000ULL, 0x00400000ULL,
        0x3f800000ULL, 0xc2f6e979ULL, 0x4009219652bd3c36ULL, 0xfffffffffffffffeULL, 0x8000000000000001ULL};
    for (unsigned m = 0; m < NM; m++) {
        uint16_t cw = MODES[m];
        for (unsigned i = 0; i < NV; i++) {
            for (unsigned j = (i * step) % NV % step; j < NV; j += step) {
                fadd(cw, VALUES[i], VALUES[j]); fsub(cw, VALUES[i], VALUES[j]); fmul(cw, VALUES[i], VALUES[j]);
                fdiv(cw, VALUES[i], VALUES[j]); fdivr(cw, VALUES[i], VALUES[j]); compares(cw, VALUES[i], VALUES[j]);
                if (m < 4) { fscale(cw, VALUES[i], VALUES[j]); fprem(cw, VALUES[i], VALUES[j]); fprem1(cw, VALUES[i], VALUES[j]); }
            }
            fsqrt(cw, VALUES[i]); frndint(cw, VALUES[i]); fxam(cw, VALUES[i]); fchs(cw, VALUES[i]);
            stores(cw, VALUES[i]);
        }
        for (unsigned k = 0; k < sizeof BITS / sizeof BITS[0]; k++) loads(cw, BITS[k]);
    }
    return 0;
}
