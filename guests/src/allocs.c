/* malloc-heavy work: a hash table of linked nodes, grown and freed repeatedly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; unsigned key; char *text; };

int main(void) {
    unsigned nbuckets = 64;
    struct node **table = calloc(nbuckets, sizeof *table);
    unsigned long total = 0;
    for (unsigned round = 0; round < 20; round++) {
        for (unsigned i = 0; i < 500; i++) {
            unsigned key = (i * 2654435761u + round) % 100003;
            struct node *n = malloc(sizeof *n);
            n->key = key;
            n->text = malloc(16 + key % 200);
            memset(n->text, 'a' + key % 26, 15 + key % 200);
            n->text[15 + key % 200] = 0;
            n->next = table[key % nbuckets];
            table[key % nbuckets] = n;
        }
        if (round % 5 == 4) {
            nbuckets *= 2;
            struct node **bigger = calloc(nbuckets, sizeof *bigger);
            for (unsigned b = 0; b < nbuckets / 2; b++)
                for (struct node *n = table[b], *next; n; n = next) {
                    next = n->next;
                    n->next = bigger[n->key % nbuckets];
                    bigger[n->key % nbuckets] = n;
                }
            free(table);
            table = bigger;
        }
        for (unsigned b = 0; b < nbuckets; b += 3)
            while (table[b]) {
                struct node *n = table[b];
                table[b] = n->next;
                total += strlen(n->text) + n->key;
                free(n->text);
                free(n);
            }
        table = realloc(table, nbuckets * sizeof *table);
    }
    unsigned long left = 0;
    for (unsigned b = 0; b < nbuckets; b++)
        for (struct node *n = table[b]; n; n = n->next) left++;
    printf("buckets=%u total=%lu left=%lu\n", nbuckets, total, left);
    return 0;
}
