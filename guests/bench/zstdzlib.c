/* Round trips through Debian's static zstd (libzstd.a) and zlib (libz.a): MIB MiB of generated
 * text-like data compressed and decompressed at 3 levels each. Usage: zstdzlib [MIB] (default 3). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static size_t make_input(unsigned char *buf, size_t size) {
    static const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and",
                                  "runs", "far", "away", "from", "home", "into", "forest", "night", "light"};
    uint32_t seed = 2026;
    size_t n = 0;
    while (n < size) {
        seed = seed * 1664525u + 1013904223u;
        char piece[32];
        int len = (seed >> 28) < 3 ? snprintf(piece, sizeof piece, "%u ", (seed >> 8) % 100000)
                                   : snprintf(piece, sizeof piece, "%s ", words[(seed >> 16) % 18]);
        if ((seed & 0xff) < 10) piece[len - 1] = '\n';
        for (int i = 0; i < len && n < size; i++) buf[n++] = (unsigned char)piece[i];
    }
    return n;
}

static uint32_t fnv1a(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static void check(const char *what, int level, const unsigned char *in, size_t n, const unsigned char *out,
                  size_t out_n, size_t packed) {
    if (out_n != n || memcmp(in, out, n) != 0) {
        fprintf(stderr, "%s level %d: round trip differs\n", what, level);
        exit(1);
    }
    printf("%s level %d: %zu -> %zu bytes, round trip ok, fnv %08x\n", what, level, n, packed, fnv1a(out, out_n));
}

static void zstd_round(const unsigned char *in, size_t n, unsigned char *packed, size_t cap, unsigned char *out,
                       int level) {
    size_t size = ZSTD_compress(packed, cap, in, n, level);
    if (ZSTD_isError(size)) { fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(size)); exit(1); }
    size_t back = ZSTD_decompress(out, n, packed, size);
    if (ZSTD_isError(back)) { fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(back)); exit(1); }
    check("zstd", level, in, n, out, back, size);
}

static void zlib_round(const unsigned char *in, size_t n, unsigned char *packed, size_t cap, unsigned char *out,
                       int level) {
    uLongf size = cap, back = n;
    if (compress2(packed, &size, in, n, level) != Z_OK) { fprintf(stderr, "zlib: compress failed\n"); exit(1); }
    if (uncompress(out, &back, packed, size) != Z_OK) { fprintf(stderr, "zlib: uncompress failed\n"); exit(1); }
    check("zlib", level, in, n, out, back, size);
}

int main(int argc, char **argv) {
    size_t size = (size_t)(argc > 1 ? atoi(argv[1]) : 3) << 20;
    size_t cap = ZSTD_compressBound(size) + compressBound(size);
    unsigned char *in = malloc(size), *packed = malloc(cap), *out = malloc(size);
    if (!in || !packed || !out) { fprintf(stderr, "out of memory\n"); return 1; }
    size_t n = make_input(in, size);
    printf("input %zu bytes, fnv %08x\n", n, fnv1a(in, n));
    static const int zstd_levels[] = {1, 3, 5}, zlib_levels[] = {1, 3, 6};
    for (int i = 0; i < 3; i++) zstd_round(in, n, packed, cap, out, zstd_levels[i]);
    for (int i = 0; i < 3; i++) zlib_round(in, n, packed, cap, out, zlib_levels[i]);
    free(in); free(packed); free(out);
    return 0;
}
