/* One call of each system call the Linux layer serves (and a few it does not), with fixed
 * arguments: tests/test_strace.py compares `tcg2wasm run --strace` of it with qemu-x86_64 -strace
 * (guests/expected/syscalls.musl.qemu-strace). Its own output is deterministic. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct iov { void *base; size_t len; };

static void files(char *buf) {
    /* Only descriptors it opened itself, and no lasting change to the process (cwd, umask):
     * the trace tests record it inside the test process. */
    char tmp[64];
    struct iov out[2] = {{buf, 4}, {buf + 4, 4}}, in[2] = {{tmp, 4}, {tmp + 4, 4}};
    long a = syscall(SYS_open, "/etc/passwd", O_RDONLY | O_CLOEXEC, 0);
    syscall(SYS_read, a, tmp, 10);
    syscall(SYS_write, 1, "hi\n", 3);
    syscall(SYS_pread64, a, tmp, 10, 5);
    syscall(SYS_readv, a, in, 2);
    syscall(SYS_writev, 1, out, 2);
    syscall(SYS_lseek, a, 10, SEEK_SET);
    long b = syscall(SYS_openat, AT_FDCWD, "/tmp/tcg2wasm-strace-guest", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    syscall(SYS_stat, "/etc/passwd", buf);
    syscall(SYS_lstat, "/etc/passwd", buf);
    syscall(SYS_fstat, a, buf);
    syscall(SYS_newfstatat, AT_FDCWD, "/etc", buf, AT_SYMLINK_NOFOLLOW);
    syscall(SYS_ioctl, a, 0x5401, buf);
    syscall(SYS_ioctl, a, 0x5413, buf);
    syscall(SYS_fcntl, b, F_SETFD, 1);
    long c = syscall(SYS_dup, b);
    syscall(SYS_dup2, b, c);
    syscall(SYS_close, c);
    syscall(SYS_access, "/etc/passwd", R_OK);
    syscall(SYS_readlink, "/nonexistent/link", buf, 256);
    syscall(SYS_getcwd, buf, 256);
    syscall(SYS_mkdir, "/tmp/tcg2wasm-strace-dir", 0755);
    syscall(SYS_rmdir, "/tmp/tcg2wasm-strace-dir");
    syscall(SYS_rename, "/tmp/tcg2wasm-strace-guest", "/tmp/tcg2wasm-strace-guest2");
    syscall(SYS_unlink, "/tmp/tcg2wasm-strace-guest2");
    syscall(SYS_unlinkat, AT_FDCWD, "/tmp/tcg2wasm-strace-none", AT_REMOVEDIR);
    syscall(SYS_ftruncate, 1000, 100);
    syscall(SYS_chdir, ".");
    syscall(SYS_close, b);
    syscall(SYS_close, a);
}

static void memory(char *buf) {
    long r = syscall(SYS_mmap, 0, 8192, 3, 0x22, -1, 0);
    syscall(SYS_mprotect, r, 4096, 1);
    syscall(SYS_madvise, r, 4096, 4);
    syscall(SYS_munmap, r, 8192);
    syscall(SYS_getrandom, buf, 8, 1);
    syscall(SYS_clock_gettime, 1, buf);
    syscall(SYS_rt_sigaction, 13, 0, buf, 8);
    syscall(SYS_rt_sigprocmask, 0, 0, buf, 8);
    long old = syscall(SYS_umask, 022);
    syscall(SYS_umask, old);
    syscall(SYS_getuid);
}

int main(void) {
    char buf[256];
    memset(buf, 'x', sizeof buf);
    files(buf);
    memory(buf);
    syscall(SYS_write, 1, "bye\n", 4);
    syscall(SYS_exit_group, 3);
    return 0;
}
