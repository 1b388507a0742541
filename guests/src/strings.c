/* string.h routines and a hash over text built in memory. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <ctype.h>

static unsigned long fnv1a(const char *s, size_t n) {
    unsigned long h = 1469598103934665603ul;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ul; }
    return h;
}

int main(void) {
    char buf[4096];
    buf[0] = 0;
    for (int i = 0; i < 100; i++) {
        char word[32];
        snprintf(word, sizeof word, "w%03d-", i * 7 % 101);
        strcat(buf, word);
    }
    size_t n = strlen(buf);
    printf("len=%zu fnv=%016lx\n", n, fnv1a(buf, n));
    printf("strchr: %s\n", strchr(buf, '9') ? strchr(buf, '9') + 0 : "none");
    printf("strstr: %ld\n", (long)(strstr(buf, "w050") - buf));
    printf("strrchr: %ld\n", (long)(strrchr(buf, 'w') - buf));
    char *dup = strdup(buf);
    for (char *p = dup; *p; p++) *p = toupper((unsigned char)*p);
    printf("memcmp=%d strcmp=%d strncmp=%d\n", memcmp(buf, dup, n) > 0, strcmp(buf, dup) > 0, strncmp(buf, dup, 1) > 0);
    memmove(dup + 1, dup, 50);
    memset(dup + 60, '.', 10);
    dup[80] = 0;
    printf("%s\n", dup);
    char *tok = strtok(dup, "-");
    int count = 0;
    while (tok) { count++; tok = strtok(NULL, "-"); }
    printf("tokens=%d atoi=%d strtol=%ld\n", count, atoi("  -1234xyz"), strtol("0x7fff", NULL, 16));
    free(dup);
    return 0;
}
