/* Random probes into a 16 MiB open-addressing hash table: a working set far beyond any small TLB.
 * Usage: hashprobe [N]: N keys inserted, N looked up (default and at most 1,048,576; the table is always
 * 2^21 slots of 8 bytes, so even a small N touches pages all over the 16 MiB). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS (1u << 21) /* 2^21 * 8 bytes = 16 MiB */
#define MASK (SLOTS - 1)

static uint64_t table[SLOTS];

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

static uint32_t slot_of(uint64_t key) {
    key *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(key >> 43) & MASK;
}

static void insert(uint64_t key) {
    for (uint32_t i = slot_of(key);; i = (i + 1) & MASK) {
        if (table[i] == 0 || table[i] == key) { table[i] = key; return; }
    }
}

static int contains(uint64_t key, unsigned *probes) {
    for (uint32_t i = slot_of(key);; i = (i + 1) & MASK) {
        ++*probes;
        if (table[i] == key) return 1;
        if (table[i] == 0) return 0;
    }
}

int main(int argc, char **argv) {
    long inserts = argc > 1 ? atol(argv[1]) : SLOTS / 2;
    if (inserts < 1 || inserts > SLOTS / 2) inserts = SLOTS / 2;
    long lookups = inserts;
    uint64_t seed = 0x2545f4914f6cdd1dull;
    for (long i = 0; i < inserts; i++) insert(xorshift(&seed) | 1);
    /* look up keys from the same sequence (present) interleaved with others (mostly absent) */
    uint64_t again = 0x2545f4914f6cdd1dull, other = 0x9e3779b97f4a7c15ull;
    unsigned found = 0, probes = 0;
    uint64_t sum = 0;
    for (long i = 0; i < lookups; i++) {
        uint64_t key = (i & 1) ? (xorshift(&other) | 1) : (xorshift(&again) | 1);
        if (contains(key, &probes)) { found++; sum += key >> 32; }
    }
    printf("inserted %ld, looked up %ld: found %u, %u probes, checksum %016llx\n",
           inserts, lookups, found, probes, (unsigned long long)sum);
    return 0;
}
