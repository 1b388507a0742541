/* Makes a system call no kernel has: -ENOSYS, then carries on and exits with status 3. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void) {
    long r = syscall(1000, 1, 2, 3);
    printf("syscall 1000 -> %ld (errno %s)\n", r, errno == ENOSYS ? "ENOSYS" : "other");
    return 3;
}
