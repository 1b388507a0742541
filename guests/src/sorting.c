/* qsort and a hand-written merge sort over pseudo-random data; checksums the results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned rng_state = 12345;
static unsigned rng(void) { rng_state = rng_state * 1103515245u + 12345u; return rng_state >> 8; }

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void merge_sort(int *v, int *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    merge_sort(v, tmp, h);
    merge_sort(v + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = v[i] <= v[j] ? v[i++] : v[j++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

int main(void) {
    enum { N = 5000 };
    int *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *tmp = malloc(N * sizeof *tmp);
    for (int i = 0; i < N; i++) a[i] = b[i] = (int)(rng() % 100000) - 50000;
    qsort(a, N, sizeof *a, cmp_int);
    merge_sort(b, tmp, N);
    long sum = 0;
    for (int i = 0; i < N; i++) {
        if (a[i] != b[i]) { printf("mismatch at %d\n", i); return 1; }
        sum = sum * 31 + a[i];
    }
    printf("sorted %d ints: min=%d max=%d checksum=%ld\n", N, a[0], a[N - 1], sum);
    const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date", "kiwi", "lemon", "mango", "grape"};
    char *copy[10];
    for (int i = 0; i < 10; i++) copy[i] = strdup(words[i]);
    qsort(copy, 10, sizeof *copy, cmp_str);
    for (int i = 0; i < 10; i++) printf("%s%c", copy[i], i == 9 ? '\n' : ' ');
    for (int i = 0; i < 10; i++) free(copy[i]);
    free(a); free(b); free(tmp);
    return 0;
}
