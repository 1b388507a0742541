"""The Linux x86-64 system calls a static musl, glibc or busybox program needs.

Guest file descriptors are host file descriptors (as in qemu-user): stdin,
stdout and stderr pass straight through. Memory management (brk, mmap,
munmap, mremap, mprotect) is done on the guest's own address space, below
4 GiB. An unknown system call returns -ENOSYS and is reported once on stderr.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
import time
from collections.abc import Callable

from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.guest_cpu import GuestCPU

MMAP_BASE = 0x1000_0000
MMAP_LIMIT = 0x7000_0000
MASK64 = (1 << 64) - 1

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 1, 2, 0x10, 0x20, 0x100000
ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
TCGETS, TIOCGWINSZ = 0x5401, 0x5413
AT_FDCWD = -100


class GuestExit(Exception):  # noqa: N818 - not an error: the guest ended
    """The guest called exit or exit_group."""

    def __init__(self, status: int) -> None:
        super().__init__(f"guest exited with status {status}")
        self.status = status


Cpu = GuestCPU  # the CPU a system call works on (the Machine, or Unicorn for --engine unicorn)


def _page_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _perms(prot: int) -> str:
    return "".join(c for c, bit in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC)) if prot & bit)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def _dirfd(x: int) -> int | None:
    """A dirfd argument (a C int) as os.* wants it: None for AT_FDCWD."""
    fd = (x & 0xFFFFFFFF) - (1 << 32) if x & 0x80000000 else x & 0xFFFFFFFF
    return None if fd == AT_FDCWD else fd


class GuestFaultError(Tcg2WasmError):
    """A system call argument pointed at memory the guest does not have."""


_FD_CALLS = {"read", "write", "pread64", "readv", "writev", "close", "lseek", "fstat", "ioctl", "fcntl", "dup",
             "dup2", "dup3", "openat", "newfstatat", "getdents64", "ftruncate", "fsync"}
SYSCALL_NAMES: dict[int, str] = {}
_HANDLERS: dict[int, Callable] = {}


def syscall(nr: int, name: str) -> Callable:
    def register(fn: Callable) -> Callable:
        SYSCALL_NAMES[nr] = name
        _HANDLERS[nr] = fn
        return fn
    return register


class LinuxSyscalls:
    """Serves system calls for one guest process on a CPU with the Machine API."""

    def __init__(self, cpu: Cpu, brk: int, stderr=sys.stderr) -> None:
        self.cpu = cpu
        self.brk_start = self.brk = brk
        self.brk_mapped = brk
        self.regions: dict[int, int] = {}  # mmap'd pages: start -> size (page-granular bookkeeping)
        self.mapped: set[int] = set()  # pages mapped by mmap
        self.reported: set[int] = set()
        self.stderr = stderr
        self.counts: dict[str, int] = {}
        self.tid = os.getpid()
        self.dir_entries: dict[int, list[tuple[str, int, int]]] = {}  # getdents64: what is left to list per fd

    # -- entry point ---------------------------------------------------------
    def handle(self, cpu: Cpu) -> None:
        """Serve the syscall in rax with arguments in rdi, rsi, rdx, r10, r8, r9 (as the kernel does)."""
        nr = cpu.reg_read("rax")
        args = [cpu.reg_read(r) for r in ("rdi", "rsi", "rdx", "r10", "r8", "r9")]
        fn = _HANDLERS.get(nr)
        name = SYSCALL_NAMES.get(nr, f"syscall_{nr}")
        self.counts[name] = self.counts.get(name, 0) + 1
        if fn is None:
            if nr not in self.reported:
                self.reported.add(nr)
                pc = cpu.reg_read("rip") - 2  # rip is past the 2-byte syscall instruction
                print(f"tcg2wasm: unsupported syscall {nr} ({_known_name(nr)}) at pc 0x{pc:x}:"
                      " returning -ENOSYS", file=self.stderr)
            result = -errno.ENOSYS
        else:
            try:
                result = fn(self, *args)
            except GuestFaultError:
                result = -errno.EFAULT
            except OSError as e:
                result = -(e.errno or errno.EIO)
            except (OverflowError, ValueError):  # e.g. a file descriptor no host fd can be
                result = -errno.EBADF if name in _FD_CALLS else -errno.EINVAL
        cpu.reg_write("rax", result & MASK64)
        cpu.reg_write("rcx", cpu.reg_read("rip"))  # the kernel's sysret clobbers rcx and r11
        cpu.reg_write("r11", cpu.reg_read("rflags"))

    # -- guest memory helpers ------------------------------------------------
    def read(self, addr: int, size: int) -> bytes:
        if size == 0:
            return b""
        try:
            return self.cpu.mem_read(addr, size)
        except Tcg2WasmError:
            raise GuestFaultError(f"bad guest pointer 0x{addr:x}") from None

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        try:
            self.cpu.mem_write(addr, data)
        except Tcg2WasmError:
            raise GuestFaultError(f"bad guest pointer 0x{addr:x}") from None

    def read_cstr(self, addr: int, limit: int = 4096) -> bytes:
        out = bytearray()
        while len(out) < limit:
            chunk = self.read(addr + len(out), min(256, PAGE_SIZE - ((addr + len(out)) % PAGE_SIZE)))
            nul = chunk.find(b"\0")
            if nul >= 0:
                return bytes(out + chunk[:nul])
            out += chunk
        raise GuestFaultError("string too long")

    def read_iovec(self, iov: int, count: int) -> list[tuple[int, int]]:
        raw = self.read(iov, 16 * count)
        return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(count)]

    # -- address space ---------------------------------------------------------
    def find_free(self, size: int, hint: int = 0) -> int:
        """Lowest free page-aligned range of ``size`` bytes at or above the mmap base."""
        regions = sorted(self.cpu.mem_regions())
        addr = max(MMAP_BASE, hint & ~(PAGE_SIZE - 1))
        for start, length, _ in regions:
            if start + length <= addr:
                continue
            if start >= addr + size:
                break
            addr = max(addr, _page_up(start + length))
        if addr + size > MMAP_LIMIT:
            raise OSError(errno.ENOMEM, "out of guest address space")
        return addr

    def map_pages(self, addr: int, size: int, perms: str) -> None:
        self.unmap_pages(addr, size)
        self.cpu.mem_map(addr, size, perms)
        self.cpu.mem_write(addr, bytes(size))

    def unmap_pages(self, addr: int, size: int) -> None:
        """Unmap whatever is mapped in [addr, addr+size) (holes are fine, as for munmap)."""
        end = addr + size
        for start, length, _ in sorted(self.cpu.mem_regions()):
            lo, hi = max(start, addr), min(start + length, end)
            if lo < hi:
                self.cpu.mem_unmap(lo, hi - lo)


def _known_name(nr: int) -> str:
    from tcg2wasm.linux.syscall_names import syscall_name

    return SYSCALL_NAMES.get(nr) or syscall_name(nr) or "unknown"


# -- files ----------------------------------------------------------------------
@syscall(0, "read")
def sys_read(s: LinuxSyscalls, fd: int, buf: int, count: int, *_: int) -> int:
    data = os.read(fd, min(count, 1 << 20))
    s.write(buf, data)
    return len(data)


@syscall(1, "write")
def sys_write(s: LinuxSyscalls, fd: int, buf: int, count: int, *_: int) -> int:
    return os.write(fd, s.read(buf, count))


@syscall(17, "pread64")
def sys_pread64(s: LinuxSyscalls, fd: int, buf: int, count: int, offset: int, *_: int) -> int:
    data = os.pread(fd, min(count, 1 << 20), offset)
    s.write(buf, data)
    return len(data)


@syscall(19, "readv")
def sys_readv(s: LinuxSyscalls, fd: int, iov: int, count: int, *_: int) -> int:
    total = 0
    for base, length in s.read_iovec(iov, count):
        data = os.read(fd, length) if length else b""
        s.write(base, data)
        total += len(data)
        if len(data) < length:
            break
    return total


@syscall(20, "writev")
def sys_writev(s: LinuxSyscalls, fd: int, iov: int, count: int, *_: int) -> int:
    data = b"".join(s.read(base, length) for base, length in s.read_iovec(iov, count))
    return os.write(fd, data) if data else 0


@syscall(2, "open")
def sys_open(s: LinuxSyscalls, path: int, flags: int, mode: int, *_: int) -> int:
    return os.open(s.read_cstr(path), flags & 0xFFFFFFFF, mode)


@syscall(257, "openat")
def sys_openat(s: LinuxSyscalls, dirfd: int, path: int, flags: int, mode: int, *_: int) -> int:
    return os.open(s.read_cstr(path), flags & 0xFFFFFFFF, mode, dir_fd=_dirfd(dirfd))


@syscall(3, "close")
def sys_close(s: LinuxSyscalls, fd: int, *_: int) -> int:
    if fd <= 2:
        return 0  # keep the host's standard streams open
    s.dir_entries.pop(fd, None)
    os.close(fd)
    return 0


@syscall(8, "lseek")
def sys_lseek(s: LinuxSyscalls, fd: int, offset: int, whence: int, *_: int) -> int:
    return os.lseek(fd, _signed(offset), whence)


def _pack_stat(st: os.stat_result) -> bytes:
    """struct stat of x86-64 Linux (144 bytes)."""
    def ts(t: float, ns: int) -> tuple[int, int]:
        return int(t), ns % 1_000_000_000
    return struct.pack(
        "<QQQIIIIQqqq" + "qq" * 3 + "24x",
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0, st.st_rdev, st.st_size,
        st.st_blksize, st.st_blocks, *ts(st.st_atime, st.st_atime_ns), *ts(st.st_mtime, st.st_mtime_ns),
        *ts(st.st_ctime, st.st_ctime_ns))


@syscall(5, "fstat")
def sys_fstat(s: LinuxSyscalls, fd: int, buf: int, *_: int) -> int:
    s.write(buf, _pack_stat(os.fstat(fd)))
    return 0


@syscall(4, "stat")
def sys_stat(s: LinuxSyscalls, path: int, buf: int, *_: int) -> int:
    s.write(buf, _pack_stat(os.stat(s.read_cstr(path))))
    return 0


@syscall(6, "lstat")
def sys_lstat(s: LinuxSyscalls, path: int, buf: int, *_: int) -> int:
    s.write(buf, _pack_stat(os.lstat(s.read_cstr(path))))
    return 0


@syscall(262, "newfstatat")
def sys_newfstatat(s: LinuxSyscalls, dirfd: int, path: int, buf: int, flags: int, *_: int) -> int:
    name = s.read_cstr(path)
    AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = 0x1000, 0x100
    if not name and flags & AT_EMPTY_PATH:
        st = os.fstat(dirfd)
    else:
        st = os.stat(name, dir_fd=_dirfd(dirfd), follow_symlinks=not flags & AT_SYMLINK_NOFOLLOW)
    s.write(buf, _pack_stat(st))
    return 0


@syscall(16, "ioctl")
def sys_ioctl(s: LinuxSyscalls, fd: int, request: int, arg: int, *_: int) -> int:
    import fcntl
    import termios
    if request == TCGETS:
        try:
            attrs = termios.tcgetattr(fd)
        except termios.error as e:  # ENOTTY for files and pipes, as the kernel says
            return -e.args[0]
        iflag, oflag, cflag, lflag, _, _, cc = attrs
        cc_bytes = bytes(c if isinstance(c, int) else c[0] for c in cc[:19]).ljust(19, b"\0")
        s.write(arg, struct.pack("<IIIIB", iflag, oflag, cflag, lflag, 0) + cc_bytes)
        return 0
    if request == TIOCGWINSZ:
        s.write(arg, fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))  # OSError(ENOTTY) for non-terminals
        return 0
    return -errno.ENOTTY


@syscall(72, "fcntl")
def sys_fcntl(s: LinuxSyscalls, fd: int, cmd: int, arg: int, *_: int) -> int:
    import fcntl
    if cmd in (1, 2, 3, 4):  # F_GETFD, F_SETFD, F_GETFL, F_SETFL
        return fcntl.fcntl(fd, cmd, arg)
    if cmd in (0, 1030):  # F_DUPFD, F_DUPFD_CLOEXEC
        return fcntl.fcntl(fd, cmd, arg)
    return -errno.EINVAL


@syscall(32, "dup")
def sys_dup(s: LinuxSyscalls, fd: int, *_: int) -> int:
    return os.dup(fd)


@syscall(33, "dup2")
def sys_dup2(s: LinuxSyscalls, fd: int, fd2: int, *_: int) -> int:
    return os.dup2(fd, fd2)


@syscall(21, "access")
def sys_access(s: LinuxSyscalls, path: int, mode: int, *_: int) -> int:
    return 0 if os.access(s.read_cstr(path), mode) else -errno.ENOENT


@syscall(89, "readlink")
def sys_readlink(s: LinuxSyscalls, path: int, buf: int, size: int, *_: int) -> int:
    target = os.fsencode(os.readlink(s.read_cstr(path)))[:size]
    s.write(buf, target)
    return len(target)


@syscall(79, "getcwd")
def sys_getcwd(s: LinuxSyscalls, buf: int, size: int, *_: int) -> int:
    cwd = os.fsencode(os.getcwd()) + b"\0"
    if len(cwd) > size:
        return -errno.ERANGE
    s.write(buf, cwd)
    return len(cwd)


# -- memory -----------------------------------------------------------------------
@syscall(12, "brk")
def sys_brk(s: LinuxSyscalls, addr: int, *_: int) -> int:
    if addr <= s.brk_start:
        return s.brk
    new_mapped = _page_up(addr)
    if new_mapped > s.brk_mapped:
        try:
            s.cpu.mem_map(s.brk_mapped, new_mapped - s.brk_mapped, "rw")
        except Tcg2WasmError:
            return s.brk
        s.brk_mapped = new_mapped
    s.brk = addr
    return s.brk


@syscall(9, "mmap")
def sys_mmap(s: LinuxSyscalls, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    if length == 0 or offset % PAGE_SIZE:
        return -errno.EINVAL
    size = _page_up(length)
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
        if addr % PAGE_SIZE:
            return -errno.EINVAL
    else:
        addr = s.find_free(size, addr)
    s.map_pages(addr, size, _perms(prot) or "r")
    if not flags & MAP_ANONYMOUS:
        data = os.pread(fd, length, offset)
        s.cpu.mem_write(addr, data)
    return addr


@syscall(11, "munmap")
def sys_munmap(s: LinuxSyscalls, addr: int, length: int, *_: int) -> int:
    if addr % PAGE_SIZE or length == 0:
        return -errno.EINVAL
    s.unmap_pages(addr, _page_up(length))
    return 0


@syscall(10, "mprotect")
def sys_mprotect(s: LinuxSyscalls, addr: int, length: int, prot: int, *_: int) -> int:
    if addr % PAGE_SIZE:
        return -errno.EINVAL
    end = addr + _page_up(length)
    for start, size, _perms_now in sorted(s.cpu.mem_regions()):
        lo, hi = max(start, addr), min(start + size, end)
        if lo < hi:
            s.cpu.mem_protect(lo, hi - lo, _perms(prot))
    return 0


@syscall(25, "mremap")
def sys_mremap(s: LinuxSyscalls, old: int, old_size: int, new_size: int, flags: int, new_addr: int, *_: int) -> int:
    MREMAP_MAYMOVE = 1
    old_size, new_size = _page_up(old_size), _page_up(new_size)
    if new_size <= old_size:
        s.unmap_pages(old + new_size, old_size - new_size)
        return old
    if not flags & MREMAP_MAYMOVE:
        return -errno.ENOMEM
    perms = next((p for a, n, p in s.cpu.mem_regions() if a <= old < a + n), "rw")
    data = s.read(old, old_size)
    addr = s.find_free(new_size)
    s.map_pages(addr, new_size, perms)
    s.cpu.mem_write(addr, data)
    s.unmap_pages(old, old_size)
    return addr


@syscall(28, "madvise")
def sys_madvise(s: LinuxSyscalls, *_: int) -> int:
    return 0


# -- process and thread state ---------------------------------------------------
@syscall(158, "arch_prctl")
def sys_arch_prctl(s: LinuxSyscalls, code: int, addr: int, *_: int) -> int:
    if code == ARCH_SET_FS:
        s.cpu.reg_write("fs_base", addr)
    elif code == ARCH_SET_GS:
        s.cpu.reg_write("gs_base", addr)
    elif code in (ARCH_GET_FS, ARCH_GET_GS):
        s.write(addr, struct.pack("<Q", s.cpu.reg_read("fs_base" if code == ARCH_GET_FS else "gs_base")))
    else:
        return -errno.EINVAL
    return 0


@syscall(218, "set_tid_address")
def sys_set_tid_address(s: LinuxSyscalls, *_: int) -> int:
    return s.tid


@syscall(273, "set_robust_list")
def sys_set_robust_list(s: LinuxSyscalls, *_: int) -> int:
    return 0


@syscall(334, "rseq")
def sys_rseq(s: LinuxSyscalls, *_: int) -> int:
    return -errno.ENOSYS


@syscall(302, "prlimit64")
def sys_prlimit64(s: LinuxSyscalls, pid: int, resource: int, new: int, old: int, *_: int) -> int:
    import resource as res
    if old:
        soft, hard = res.getrlimit(resource)
        inf = MASK64
        s.write(old, struct.pack("<QQ", inf if soft < 0 else soft, inf if hard < 0 else hard))
    return 0


@syscall(97, "getrlimit")
def sys_getrlimit(s: LinuxSyscalls, resource: int, old: int, *_: int) -> int:
    return sys_prlimit64(s, 0, resource, 0, old)


@syscall(318, "getrandom")
def sys_getrandom(s: LinuxSyscalls, buf: int, length: int, *_: int) -> int:
    s.write(buf, os.urandom(length))
    return length


@syscall(228, "clock_gettime")
def sys_clock_gettime(s: LinuxSyscalls, clock: int, tp: int, *_: int) -> int:
    ns = time.clock_gettime_ns(clock)
    s.write(tp, struct.pack("<qq", ns // 1_000_000_000, ns % 1_000_000_000))
    return 0


@syscall(96, "gettimeofday")
def sys_gettimeofday(s: LinuxSyscalls, tv: int, tz: int, *_: int) -> int:
    ns = time.time_ns()
    if tv:
        s.write(tv, struct.pack("<qq", ns // 1_000_000_000, (ns // 1000) % 1_000_000))
    return 0


@syscall(201, "time")
def sys_time(s: LinuxSyscalls, tloc: int, *_: int) -> int:
    now = int(time.time())
    if tloc:
        s.write(tloc, struct.pack("<q", now))
    return now


@syscall(63, "uname")
def sys_uname(s: LinuxSyscalls, buf: int, *_: int) -> int:
    u = os.uname()
    fields = [u.sysname, u.nodename, u.release, u.version, "x86_64", "(none)"]
    s.write(buf, b"".join(f.encode()[:64].ljust(65, b"\0") for f in fields))
    return 0


@syscall(99, "sysinfo")
def sys_sysinfo(s: LinuxSyscalls, buf: int, *_: int) -> int:
    uptime = int(time.monotonic())
    info = struct.pack("<qQQQQQQQHHQQI", uptime, 0, 0, 0, 24 << 30, 20 << 30, 0, 0, 0, 1, 0, 0, 1)
    s.write(buf, info.ljust(112, b"\0"))
    return 0


@syscall(157, "prctl")
def sys_prctl(s: LinuxSyscalls, *_: int) -> int:
    return 0


@syscall(13, "rt_sigaction")
def sys_rt_sigaction(s: LinuxSyscalls, sig: int, act: int, old: int, *_: int) -> int:
    if old:
        s.write(old, bytes(32))
    return 0


@syscall(14, "rt_sigprocmask")
def sys_rt_sigprocmask(s: LinuxSyscalls, how: int, new: int, old: int, size: int, *_: int) -> int:
    if old:
        s.write(old, bytes(min(size, 128)))
    return 0


@syscall(131, "sigaltstack")
def sys_sigaltstack(s: LinuxSyscalls, *_: int) -> int:
    return 0


@syscall(95, "umask")
def sys_umask(s: LinuxSyscalls, mask: int, *_: int) -> int:
    return os.umask(mask)


@syscall(39, "getpid")
def sys_getpid(s: LinuxSyscalls, *_: int) -> int:
    return os.getpid()


@syscall(110, "getppid")
def sys_getppid(s: LinuxSyscalls, *_: int) -> int:
    return os.getppid()


@syscall(186, "gettid")
def sys_gettid(s: LinuxSyscalls, *_: int) -> int:
    return s.tid


@syscall(102, "getuid")
def sys_getuid(s: LinuxSyscalls, *_: int) -> int:
    return os.getuid()


@syscall(107, "geteuid")
def sys_geteuid(s: LinuxSyscalls, *_: int) -> int:
    return os.geteuid()


@syscall(104, "getgid")
def sys_getgid(s: LinuxSyscalls, *_: int) -> int:
    return os.getgid()


@syscall(108, "getegid")
def sys_getegid(s: LinuxSyscalls, *_: int) -> int:
    return os.getegid()


@syscall(204, "sched_getaffinity")
def sys_sched_getaffinity(s: LinuxSyscalls, pid: int, size: int, mask: int, *_: int) -> int:
    s.write(mask, b"\x01" + bytes(min(size, 128) - 1))
    return min(size, 128)


@syscall(24, "sched_yield")
def sys_sched_yield(s: LinuxSyscalls, *_: int) -> int:
    return 0


@syscall(60, "exit")
def sys_exit(s: LinuxSyscalls, status: int, *_: int) -> int:
    raise GuestExit(status & 0xFF)


@syscall(231, "exit_group")
def sys_exit_group(s: LinuxSyscalls, status: int, *_: int) -> int:
    raise GuestExit(status & 0xFF)


# -- more files and directories ---------------------------------------------------------
@syscall(292, "dup3")
def sys_dup3(s: LinuxSyscalls, fd: int, fd2: int, flags: int, *_: int) -> int:
    O_CLOEXEC = 0o2000000
    if fd == fd2:
        return -errno.EINVAL
    return os.dup2(fd, fd2, inheritable=not flags & O_CLOEXEC)


@syscall(22, "pipe")
def sys_pipe(s: LinuxSyscalls, fds: int, *_: int) -> int:
    return sys_pipe2(s, fds, 0)


@syscall(293, "pipe2")
def sys_pipe2(s: LinuxSyscalls, fds: int, flags: int, *_: int) -> int:
    r, w = os.pipe2(flags & 0xFFFFFFFF) if flags else os.pipe()
    s.write(fds, struct.pack("<ii", r, w))
    return 0


@syscall(217, "getdents64")
def sys_getdents64(s: LinuxSyscalls, fd: int, buf: int, count: int, *_: int) -> int:
    """Directory entries of the host directory open as ``fd``, in linux_dirent64 records."""
    DT_DIR, DT_REG, DT_LNK = 4, 8, 10
    entries = s.dir_entries.get(fd)
    if entries is None:  # libc skips entries whose inode is 0, so give the real ones
        here = os.fstat(fd).st_ino
        entries = s.dir_entries[fd] = [(".", here, DT_DIR), ("..", here, DT_DIR)] + [
            (e.name, e.inode(), DT_DIR if e.is_dir(follow_symlinks=False) else DT_LNK if e.is_symlink() else DT_REG)
            for e in os.scandir(fd)]
    out = bytearray()
    while entries:
        name, inode, dtype = entries[0]
        raw = os.fsencode(name) + b"\0"
        reclen = (19 + len(raw) + 7) & ~7
        if len(out) + reclen > count:
            break
        out += struct.pack("<QqHB", inode, len(out) + reclen, reclen, dtype) + raw.ljust(reclen - 19, b"\0")
        entries.pop(0)
    if not out and entries:
        return -errno.EINVAL
    s.write(buf, bytes(out))
    return len(out)


@syscall(80, "chdir")
def sys_chdir(s: LinuxSyscalls, path: int, *_: int) -> int:
    os.chdir(s.read_cstr(path))
    return 0


@syscall(87, "unlink")
def sys_unlink(s: LinuxSyscalls, path: int, *_: int) -> int:
    os.unlink(s.read_cstr(path))
    return 0


@syscall(263, "unlinkat")
def sys_unlinkat(s: LinuxSyscalls, dirfd: int, path: int, flags: int, *_: int) -> int:
    AT_REMOVEDIR = 0x200
    name = s.read_cstr(path)
    if flags & AT_REMOVEDIR:
        os.rmdir(name, dir_fd=_dirfd(dirfd))
    else:
        os.unlink(name, dir_fd=_dirfd(dirfd))
    return 0


@syscall(82, "rename")
def sys_rename(s: LinuxSyscalls, old: int, new: int, *_: int) -> int:
    os.rename(s.read_cstr(old), s.read_cstr(new))
    return 0


@syscall(83, "mkdir")
def sys_mkdir(s: LinuxSyscalls, path: int, mode: int, *_: int) -> int:
    os.mkdir(s.read_cstr(path), mode)
    return 0


@syscall(84, "rmdir")
def sys_rmdir(s: LinuxSyscalls, path: int, *_: int) -> int:
    os.rmdir(s.read_cstr(path))
    return 0


@syscall(77, "ftruncate")
def sys_ftruncate(s: LinuxSyscalls, fd: int, length: int, *_: int) -> int:
    os.ftruncate(fd, length)
    return 0


@syscall(74, "fsync")
def sys_fsync(s: LinuxSyscalls, fd: int, *_: int) -> int:
    os.fsync(fd)
    return 0


@syscall(269, "faccessat")
def sys_faccessat(s: LinuxSyscalls, dirfd: int, path: int, mode: int, *_: int) -> int:
    return 0 if os.access(s.read_cstr(path), mode, dir_fd=_dirfd(dirfd)) else -errno.EACCES


@syscall(439, "faccessat2")
def sys_faccessat2(s: LinuxSyscalls, dirfd: int, path: int, mode: int, flags: int, *_: int) -> int:
    return sys_faccessat(s, dirfd, path, mode)
