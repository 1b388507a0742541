/* A compute-heavy guest (a few 10^8 instructions): sieve, integer hashing and a small matrix product. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static unsigned char composite[1 << 20];

static unsigned sieve(unsigned n) {
    memset(composite, 0, n);
    unsigned count = 0;
    for (unsigned i = 2; i < n; i++) {
        if (composite[i]) continue;
        count++;
        for (unsigned j = 2 * i; j < n; j += i) composite[j] = 1;
    }
    return count;
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

int main(void) {
    unsigned primes = 0;
    for (int round = 0; round < 8; round++) primes += sieve(1 << 20);
    uint64_t h = 0;
    for (uint64_t i = 0; i < 6000000; i++) h += mix(i ^ h);
    enum { N = 48 };
    static double a[N][N], b[N][N], c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { a[i][j] = (i * 7 + j) % 13 - 6; b[i][j] = (i + 3 * j) % 11 - 5; }
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
                c[i][j] = s + r;
            }
    double trace = 0;
    for (int i = 0; i < N; i++) trace += c[i][i];
    printf("primes=%u hash=%016llx trace=%.1f\n", primes, (unsigned long long)h, trace);
    return 0;
}
