/* printf of integers and doubles, integer and floating-point arithmetic. */
#include <stdio.h>
#include <stdint.h>
#include <inttypes.h>

static uint64_t collatz_steps(uint64_t n) {
    uint64_t steps = 0;
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

int main(void) {
    int64_t acc = 1;
    for (int i = 1; i <= 20; i++) {
        acc = acc * i;
        printf("%2d! = %" PRId64 "  hex %" PRIx64 "  mod 1000003 = %" PRId64 "\n", i, acc, (uint64_t)acc, acc % 1000003);
    }
    uint64_t best = 0, best_n = 0;
    for (uint64_t n = 1; n < 20000; n++) {
        uint64_t s = collatz_steps(n);
        if (s > best) { best = s; best_n = n; }
    }
    printf("longest collatz below 20000: n=%" PRIu64 " steps=%" PRIu64 "\n", best_n, best);
    double x = 1.0, sum = 0.0;
    for (int i = 1; i <= 30; i++) {
        x = x * 1.5 - 0.25;
        sum += 1.0 / i;
    }
    printf("x=%.6f sum=%.10f ratio=%g neg=%e\n", x, sum, x / sum, -sum / 1e9);
    printf("int division: %d %d %u %ld\n", -17 / 5, -17 % 5, 4000000000u / 7u, (long)-9000000000 / 13);
    float f = 3.0f;
    for (int i = 0; i < 10; i++) f = f * 1.1f + 0.5f;
    printf("float: %.4f %d\n", f, (int)f);
    return 0;
}
