/* A long double kernel: x87-heavy code as real programs have it (a recurrence in 80-bit extended
 * precision, a Horner polynomial, a Newton square root, then printf of long doubles), for the
 * speed check of docs/x87.md and as one more program compared with the native run line for line. */
#include <stdio.h>
#include <stdlib.h>

static long double horner(long double x) {
    static const long double c[] = {1.0L, -0.5L, 0.333333333333333333L, -0.25L, 0.2L, -0.166666666666666667L};
    long double r = 0.0L;
    for (int i = 5; i >= 0; i--)
        r = r * x + c[i];
    return r;
}

static long double newton_sqrt(long double a) {
    long double x = a > 1.0L ? a : 1.0L;
    for (int i = 0; i < 40; i++)
        x = 0.5L * (x + a / x);
    return x;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    long double sum = 0.0L, x = 1.0L / 3.0L, prod = 1.0L;
    for (int i = 1; i <= n; i++) {
        x = x * 1.000000119L + 1.0L / (long double)(i + 1);
        if (x > 1e6L)
            x /= 1e6L;
        sum += horner(x / (x + 1.0L)) - (long double)i * 1e-9L;
        prod *= 1.0L + 1.0L / ((long double)i * (long double)i);
    }
    printf("sum %.18Lg x %.18Lg prod %.18Lg\n", sum, x, prod);
    for (int i = 0; i < 300; i++) {
        long double v = newton_sqrt((long double)i + 0.25L) * (i % 2 ? -1.0L : 1.0L) / 7.0L;
        printf("%d %Lf %Lg %.20Le\n", i, v, v * 1e300L, v);
    }
    return 0;
}
