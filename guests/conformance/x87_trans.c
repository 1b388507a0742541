/* x87 transcendentals in their SDM ranges, printed to 15 significant digits (the SDM bounds their
 * error, not their last bit: the CPU's are within one ulp of the correctly rounded value), with
 * fsin/fcos/fptan/fsincos arguments up to 2**63 (reduced by the CPU's 66-bit pi) and the C2 of
 * an out-of-range argument. Compared line for line with the native run (make conformance). */
#include <stdint.h>
#include <stdio.h>

static long double unary(int op, long double x, uint16_t *sw) {
    long double r;
    switch (op) {
    case 0: __asm__ volatile("fninit\n fldt %2\n fsin\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(x) : "st"); break;
    case 1: __asm__ volatile("fninit\n fldt %2\n fcos\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(x) : "st"); break;
    case 2: __asm__ volatile("fninit\n fldt %2\n fptan\n fstp %%st(0)\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(x) : "st"); break;
    case 3: __asm__ volatile("fninit\n fldt %2\n f2xm1\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(x) : "st"); break;
    default: __asm__ volatile("fninit\n fldt %2\n fsincos\n fstp %%st(1)\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(x) : "st", "st(1)"); break;
    }
    return r;
}

static long double binary(int op, long double y, long double x, uint16_t *sw) {
    long double r;
    switch (op) {
    case 0: __asm__ volatile("fninit\n fldt %2\n fldt %3\n fyl2x\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(y), "m"(x) : "st", "st(1)"); break;
    case 1: __asm__ volatile("fninit\n fldt %2\n fldt %3\n fyl2xp1\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(y), "m"(x) : "st", "st(1)"); break;
    default: __asm__ volatile("fninit\n fldt %2\n fldt %3\n fpatan\n fnstsw %1\n fstpt %0" : "=m"(r), "=m"(*sw) : "m"(y), "m"(x) : "st", "st(1)"); break;
    }
    return r;
}

int main(void) {
    static const char *UNARY[] = {"fsin", "fcos", "fptan", "f2xm1", "fsincos"};
    static const char *BINARY[] = {"fyl2x", "fyl2xp1", "fpatan"};
    uint16_t sw;
    long double x = 0.000123L;
    for (int i = 0; i < 200; i++, x = x * -1.37L + 0.01L) {
        for (int op = 0; op < 5; op++) {
            long double arg = op == 3 ? x / (1.0L + (x < 0 ? -x : x)) : x;  /* f2xm1: |x| < 1 */
            long double r = unary(op, arg, &sw);
            printf("%s %.15Le -> %.15Le sw %04x\n", UNARY[op], arg, r, sw & 0x4500);
        }
    }
    long double huge = 9.2e18L;
    unary(0, huge, &sw);
    printf("fsin 9.2e18 C2 %d\n", !!(sw & 0x400));
    long double y = 3.5L;
    for (int i = 0; i < 200; i++, y = y * -1.13L + 0.3L) {
        long double a = 0.001L + (i % 37) * 0.77L, small = (i % 19 - 9) * 0.03L;
        printf("%s %.15Le %.15Le -> %.15Le\n", BINARY[0], y, a, binary(0, y, a, &sw));
        printf("%s %.15Le %.15Le -> %.15Le\n", BINARY[1], y, small, binary(1, y, small, &sw));
        printf("%s %.15Le %.15Le -> %.15Le\n", BINARY[2], y, small - a, binary(2, y, small - a, &sw));
    }
    return 0;
}
