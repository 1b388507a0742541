/* fenv conformance: double (SSE) and long double (x87) arithmetic and conversions in every rounding
 * mode, with the exception flags fetestexcept reports after each. Compared line for line with
 * the native run (make conformance). */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const double D[] = {0.0, -0.0, 1.0, -1.5, 3.0, 0.1, 1e308, 1e-308, 4.9e-324, 2.2250738585072014e-308,
                           INFINITY, -INFINITY, NAN, 1.0 / 3.0, 123456789.125, -9007199254740993.0};
#define N (sizeof D / sizeof D[0])
static const int MODES[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};

static uint64_t bits(double x) { uint64_t b; memcpy(&b, &x, 8); return b; }
static void show(const char *op, int mode, double a, double b, double r) {
    int ex = fetestexcept(FE_ALL_EXCEPT);
    printf("%s %d %016llx %016llx -> %016llx flags %02x\n", op, mode, (unsigned long long)bits(a),
           (unsigned long long)bits(b), (unsigned long long)bits(r), ex);
}
static void showl(const char *op, int mode, long double a, long double b, long double r) {
    int ex = fetestexcept(FE_ALL_EXCEPT);
    unsigned char buf[10]; memcpy(buf, &r, 10);
    printf("%s %d %.6Lg %.6Lg -> ", op, mode, a, b);
    for (int i = 9; i >= 0; i--) printf("%02x", buf[i]);
    printf(" flags %02x\n", ex);
}

int main(void) {
    volatile double a, b, r;
    volatile long double la, lb, lr;
    for (unsigned m = 0; m < 4; m++) {
        fesetround(MODES[m]);
        for (unsigned i = 0; i < N; i++) {
            for (unsigned j = 0; j < N; j++) {
                a = D[i]; b = D[j];
                feclearexcept(FE_ALL_EXCEPT); r = a + b; show("add", m, a, b, r);
                feclearexcept(FE_ALL_EXCEPT); r = a * b; show("mul", m, a, b, r);
                feclearexcept(FE_ALL_EXCEPT); r = a / b; show("div", m, a, b, r);
                la = D[i]; lb = D[j];
                feclearexcept(FE_ALL_EXCEPT); lr = la / lb; showl("ldiv", m, la, lb, lr);
                feclearexcept(FE_ALL_EXCEPT); lr = la * lb + la; showl("lmuladd", m, la, lb, lr);
            }
            a = D[i];
            feclearexcept(FE_ALL_EXCEPT); r = sqrt(a); show("sqrt", m, a, 0, r);
            feclearexcept(FE_ALL_EXCEPT); r = (float)a; show("tofloat", m, a, 0, r);
            feclearexcept(FE_ALL_EXCEPT); r = (double)(long long)(a * 1e3); show("toint", m, a, 0, r);
            feclearexcept(FE_ALL_EXCEPT); r = rint(a); show("rint", m, a, 0, r);
            la = D[i];
            feclearexcept(FE_ALL_EXCEPT); lr = sqrtl(la); showl("lsqrt", m, la, 0, lr);
            feclearexcept(FE_ALL_EXCEPT); r = (double)la; show("ltod", m, a, 0, r);
        }
    }
    return 0;
}
