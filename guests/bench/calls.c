/* Call-heavy code: recursion (Fibonacci, Ackermann, a binary tree built and walked recursively),
 * calls through function pointers (qsort's comparator, a table of operations).
 * Usage: calls [SCALE]  (default 1; SCALE multiplies the rounds of each part). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static uint64_t fib(int n) { return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static uint64_t ack(uint64_t m, uint64_t n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

struct node { struct node *left, *right; int value; };

__attribute__((noinline)) static struct node *build(int depth, int *next) {
    struct node *n = malloc(sizeof *n);
    n->value = (*next)++;
    n->left = depth ? build(depth - 1, next) : NULL;
    n->right = depth ? build(depth - 1, next) : NULL;
    return n;
}

__attribute__((noinline)) static int64_t walk(const struct node *n, int depth) {
    return n ? (int64_t)n->value * (depth & 3 ? 1 : -1) + walk(n->left, depth + 1) + walk(n->right, depth + 1) : 0;
}

static void release(struct node *n) {
    if (n) { release(n->left); release(n->right); free(n); }
}

static int by_value(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t op_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t op_xor(uint64_t a, uint64_t b) { return a ^ (b << 1); }
static uint64_t op_mul(uint64_t a, uint64_t b) { return a * (b | 1); }
static uint64_t op_rot(uint64_t a, uint64_t b) { return (a << (b & 63)) | (a >> (-b & 63)); }

static uint64_t (*const ops[])(uint64_t, uint64_t) = {op_add, op_xor, op_mul, op_rot};

static uint64_t sorted_checksum(int count) {
    uint32_t *v = malloc(count * sizeof *v), seed = 7;
    for (int i = 0; i < count; i++) v[i] = seed = seed * 1103515245u + 12345u;
    qsort(v, count, sizeof *v, by_value);
    uint64_t sum = 0;
    for (int i = 0; i < count; i++) sum = sum * 31 + v[i];
    free(v);
    return sum;
}

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    uint64_t f = 0, a = 0, acc = 1;
    int64_t t = 0;
    for (int r = 0; r < scale; r++) {
        f += fib(30);
        a += ack(2, 2000) + ack(3, 7);
        int next = 0;
        struct node *root = build(16, &next);
        t += walk(root, 0);
        release(root);
        for (uint64_t i = 0; i < 1000000; i++) acc = ops[(i ^ (acc >> 7)) & 3](acc, i);
    }
    printf("fib %llu, ack %llu, tree %lld, ops %016llx, sorted %016llx\n", (unsigned long long)f,
           (unsigned long long)a, (long long)t, (unsigned long long)acc, (unsigned long long)sorted_checksum(100000 * scale));
    return 0;
}
