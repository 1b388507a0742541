/* Reads an unmapped address after printing a line: the run must end like the native one (SIGSEGV, 139). */
#include <stdio.h>

int main(void) {
    volatile long *p = (long *)0x12345678;
    printf("about to read 0x12345678\n");
    fflush(stdout);
    return (int)*p;
}
