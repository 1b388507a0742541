/* Executes an undefined instruction (ud2) after printing a line: SIGILL natively (status 132). */
#include <stdio.h>

int main(void) {
    printf("about to execute ud2\n");
    fflush(stdout);
    __asm__ volatile("ud2");
    return 0;
}
