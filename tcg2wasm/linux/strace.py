"""``tcg2wasm run --strace``: every system call with decoded arguments and its result.

The lines look like ``qemu-x86_64 -strace``'s: ``PID name(args) = result``, errors as
``= -1 errno=N (message)``, brk/mmap/mremap results as ``0x%016x``, pointers as qemu prints them,
flags by name (``O_RDONLY|O_CLOEXEC``, ``PROT_READ|PROT_WRITE``). The call is written before it runs
and the result after, so what the guest itself prints comes between them, as with qemu.

Differences from qemu 7.2, on purpose: names come from the kernel's table (tcg2wasm/linux/
syscall_names.py), so a call qemu lists as ``Unknown syscall 334`` is ``rseq(...)``; a call qemu
prints as six raw registers (``arch_prctl(4098,6210496,40,-1,2,6209536)``) is printed with its own
arguments, decoded (``arch_prctl(ARCH_SET_FS,0x5ec4c0)``); AT_FDCWD and AT_EMPTY_PATH are named.

It wraps the Linux layer's syscall handler (``attach``): the dispatcher is not changed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from typing import IO, Any

from tcg2wasm.linux.syscall_names import syscall_name

ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
MASK64 = (1 << 64) - 1
STRING_LIMIT = 4096  # bytes of a path shown at most
AT_FDCWD = -100

Flags = Sequence[tuple[int, str]]

OPEN_FLAGS: Flags = (
    (0o2000, "O_APPEND"), (0o100, "O_CREAT"), (0o200000, "O_DIRECTORY"), (0o200, "O_EXCL"),
    (0o100000, "O_LARGEFILE"), (0o400, "O_NOCTTY"), (0o400000, "O_NOFOLLOW"), (0o4000, "O_NONBLOCK"),
    (0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"), (0o20000, "FASYNC"), (0o1000, "O_TRUNC"), (0o40000, "O_DIRECT"),
    (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"), (0o20000000, "O_TMPFILE"),
)
ACCESS_MODES = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")
PROT_FLAGS: Flags = ((1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"), (0x1000000, "PROT_GROWSDOWN"),
                     (0x2000000, "PROT_GROWSUP"))
MAP_TYPES = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
MAP_FLAGS: Flags = (
    (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"),
    (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
    (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x100000, "MAP_FIXED_NOREPLACE"),
)
ACCESS_FLAGS: Flags = ((4, "R_OK"), (2, "W_OK"), (1, "X_OK"))
AT_FLAGS: Flags = ((0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
                   (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"))
FACCESSAT_FLAGS: Flags = ((0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_EACCESS"), (0x1000, "AT_EMPTY_PATH"))
MREMAP_FLAGS: Flags = ((1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP"))
WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
IOCTLS = {0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF", 0x540F: "TIOCGPGRP",
          0x5410: "TIOCSPGRP", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ", 0x541B: "FIONREAD", 0x5421: "FIONBIO",
          0x5450: "FIONCLEX", 0x5451: "FIOCLEX"}
FCNTL_CMDS = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK", 6: "F_SETLK",
              7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ",
              1032: "F_GETPIPE_SZ", 1033: "F_ADD_SEALS", 1034: "F_GET_SEALS"}
FCNTL_NO_ARG = frozenset({1, 3, 9, 1032, 1034})
MADVICE = {0: "MADV_NORMAL", 1: "MADV_RANDOM", 2: "MADV_SEQUENTIAL", 3: "MADV_WILLNEED", 4: "MADV_DONTNEED",
           8: "MADV_FREE", 9: "MADV_REMOVE", 10: "MADV_DONTFORK", 11: "MADV_DOFORK", 12: "MADV_MERGEABLE",
           13: "MADV_UNMERGEABLE", 14: "MADV_HUGEPAGE", 15: "MADV_NOHUGEPAGE", 16: "MADV_DONTDUMP",
           17: "MADV_DODUMP"}
CLOCKS = {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 2: "CLOCK_PROCESS_CPUTIME_ID", 3: "CLOCK_THREAD_CPUTIME_ID",
          4: "CLOCK_MONOTONIC_RAW", 5: "CLOCK_REALTIME_COARSE", 6: "CLOCK_MONOTONIC_COARSE", 7: "CLOCK_BOOTTIME",
          8: "CLOCK_REALTIME_ALARM", 9: "CLOCK_BOOTTIME_ALARM", 11: "CLOCK_TAI"}
_SIGNAL_NAMES = ("HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP TSTP "
                 "TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS")
SIGNALS = {n: f"SIG{name}" for n, name in enumerate(_SIGNAL_NAMES.split(), start=1)}
SIGPROCMASK_HOW = {0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}
ARCH_PRCTL = {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS", 0x1004: "ARCH_GET_GS"}
RLIMITS = {0: "RLIMIT_CPU", 1: "RLIMIT_FSIZE", 2: "RLIMIT_DATA", 3: "RLIMIT_STACK", 4: "RLIMIT_CORE",
           5: "RLIMIT_RSS", 6: "RLIMIT_NPROC", 7: "RLIMIT_NOFILE", 8: "RLIMIT_MEMLOCK", 9: "RLIMIT_AS",
           10: "RLIMIT_LOCKS", 11: "RLIMIT_SIGPENDING", 12: "RLIMIT_MSGQUEUE", 13: "RLIMIT_NICE", 14: "RLIMIT_RTPRIO",
           15: "RLIMIT_RTTIME"}


# -- argument formats ------------------------------------------------------------------------------


def c_int(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >> 31 else x


def c_long(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def pointer(x: int) -> str:
    """qemu's print_pointer: NULL, or 16 hex digits."""
    return "NULL" if x == 0 else f"0x{x & MASK64:016x}"


def short_pointer(x: int) -> str:
    """qemu's %#x pointers (read, write, getrandom...): NULL, or unpadded hex."""
    return "NULL" if x == 0 else f"0x{x & MASK64:x}"


def flags(value: int, table: Flags, zero: str = "0") -> str:
    names, rest = [], value
    for bit, name in table:
        if bit and rest & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(f"0x{rest:x}")
    return "|".join(names) or zero


def open_flags(value: int) -> str:
    value &= 0xFFFFFFFF
    mode = ACCESS_MODES[value & 3]
    rest = flags(value & ~3, OPEN_FLAGS, zero="")
    return f"{mode}|{rest}" if rest else mode


def named(value: int, table: dict[int, str]) -> str:
    return table.get(value, str(value))


def dirfd(x: int) -> str:
    fd = c_int(x)
    return "AT_FDCWD" if fd == AT_FDCWD else str(fd)


def escape(raw: bytes) -> str:
    """A guest string, quoted, on one line (control bytes and non-UTF-8 as escapes)."""
    text = raw.decode("utf-8", errors="backslashreplace")
    out = "".join(c if c.isprintable() and c not in '"\\' else
                  "\\" + c if c in '"\\' else c.encode("unicode_escape").decode() for c in text)
    return f'"{out}"'


class Memory:
    """Reads guest strings and structs for the decoders; an unreadable address prints as a pointer."""

    def __init__(self, cpu: Any) -> None:
        self.cpu = cpu

    def read(self, addr: int, size: int) -> bytes | None:
        try:
            return bytes(self.cpu.mem_read(addr, size))
        except Exception:  # noqa: BLE001 - any engine's "not mapped": show the pointer instead
            return None

    def string(self, addr: int) -> str:
        if addr == 0:
            return "NULL"
        out = bytearray()
        while len(out) < STRING_LIMIT:
            chunk = self.read(addr + len(out), 4096 - ((addr + len(out)) & 0xFFF))
            if chunk is None:
                return short_pointer(addr) if not out else escape(bytes(out)) + "..."
            nul = chunk.find(b"\0")
            if nul >= 0:
                return escape(bytes(out + chunk[:nul]))
            out += chunk
        return escape(bytes(out[:STRING_LIMIT])) + "..."

    def timespec(self, addr: int, sub: str = "tv_nsec") -> str | None:
        raw = self.read(addr, 16) if addr else None
        if raw is None:
            return None
        sec, frac = struct.unpack("<qq", raw)
        return f"{{tv_sec = {sec},{sub} = {frac}}}"


Arg = Callable[[int, Memory], str]


def _d(v: int, m: Memory) -> str:
    return str(c_int(v))


def _l(v: int, m: Memory) -> str:
    return str(c_long(v))


def _u(v: int, m: Memory) -> str:
    return str(v & MASK64)


def _x(v: int, m: Memory) -> str:
    return short_pointer(v)


def _hex(v: int, m: Memory) -> str:
    return f"0x{v & 0xFFFFFFFF:x}" if v & 0xFFFFFFFF else "0"


def _p(v: int, m: Memory) -> str:
    return pointer(v)


def _s(v: int, m: Memory) -> str:
    return m.string(v)


def _o(v: int, m: Memory) -> str:
    return f"0{v & 0xFFFFFFFF:o}" if v & 0xFFFFFFFF else "0"


def _at(v: int, m: Memory) -> str:
    return dirfd(v)


def _table(table: dict[int, str]) -> Arg:
    return lambda v, m: named(c_int(v), table)


def _bits(table: Flags, zero: str = "0") -> Arg:
    return lambda v, m: flags(v & 0xFFFFFFFF, table, zero)


def _oflags(v: int, m: Memory) -> str:
    return open_flags(v)


def _signal(v: int, m: Memory) -> str:
    return SIGNALS.get(c_int(v), str(c_int(v)))


def _mmap_flags(v: int, m: Memory) -> str:
    kind = MAP_TYPES.get(v & 3, "")
    rest = flags(v & ~3 & 0xFFFFFFFF, MAP_FLAGS, zero="")
    return "|".join(part for part in (kind, rest) if part) or "0"


def _fd_flags(v: int, m: Memory) -> str:
    """dup3/pipe2 flags: O_CLOEXEC, O_NONBLOCK (no access mode)."""
    return flags(v & 0xFFFFFFFF, OPEN_FLAGS)


def _timespec(v: int, m: Memory) -> str:
    return m.timespec(v) or pointer(v)


_prot = _bits(PROT_FLAGS, "PROT_NONE")

#: name -> one formatter per argument (the kernel's arity). Calls not listed print their six
#: argument registers as signed numbers, as qemu does for the calls it does not decode.
ARGS: dict[str, tuple[Arg, ...]] = {
    "read": (_d, _x, _u), "write": (_d, _x, _u), "pread64": (_d, _x, _u, _l), "pwrite64": (_d, _x, _u, _l),
    "readv": (_d, _x, _hex), "writev": (_d, _x, _hex), "close": (_d,), "lseek": (_d, _l, _table(WHENCE)),
    "stat": (_s, _p), "lstat": (_s, _p), "fstat": (_d, _p), "newfstatat": (_at, _s, _p, _bits(AT_FLAGS)),
    "statx": (_at, _s, _bits(AT_FLAGS), _x, _p),
    "dup": (_d,), "dup2": (_d, _d), "dup3": (_d, _d, _fd_flags), "pipe": (_p,), "pipe2": (_p, _fd_flags),
    "access": (_s, _bits(ACCESS_FLAGS, "F_OK")), "faccessat": (_at, _s, _bits(ACCESS_FLAGS, "F_OK")),
    "faccessat2": (_at, _s, _bits(ACCESS_FLAGS, "F_OK"), _bits(FACCESSAT_FLAGS)),
    "readlink": (_s, _p, _d), "readlinkat": (_at, _s, _p, _d), "getcwd": (_x, _d), "chdir": (_s,),
    "fchdir": (_d,), "mkdir": (_s, _o), "mkdirat": (_at, _s, _o), "rmdir": (_s,), "unlink": (_s,),
    "unlinkat": (_at, _s, _bits(AT_FLAGS)), "rename": (_s, _s), "renameat": (_at, _s, _at, _s),
    "chmod": (_s, _o), "fchmod": (_d, _o), "ftruncate": (_d, _l), "truncate": (_s, _l), "fsync": (_d,),
    "fdatasync": (_d,), "getdents64": (_d, _x, _d), "umask": (_o,), "chroot": (_s,), "symlink": (_s, _s),
    "link": (_s, _s), "sendfile": (_d, _d, _p, _u),
    "brk": (_p,), "mmap": (_p, _u, _prot, _mmap_flags, _d, _l), "munmap": (_p, _u), "mprotect": (_p, _u, _prot),
    "mremap": (_p, _u, _u, _bits(MREMAP_FLAGS), _p), "madvise": (_p, _u, _table(MADVICE)),
    "arch_prctl": (_table(ARCH_PRCTL), _x), "set_tid_address": (_x,), "set_robust_list": (_x, _u),
    "rseq": (_x, _u, _d, _x), "prlimit64": (_d, _table(RLIMITS), _p, _p), "getrlimit": (_table(RLIMITS), _p),
    "setrlimit": (_table(RLIMITS), _p), "getrandom": (_x, _u, _u), "clock_gettime": (_table(CLOCKS), _p),
    "clock_getres": (_table(CLOCKS), _p), "gettimeofday": (_p, _p), "time": (_p,), "uname": (_x,), "sysinfo": (_x,),
    "prctl": (_d, _l, _l, _l, _l), "rt_sigaction": (_signal, _p, _p),  # qemu leaves out sigsetsize
    "rt_sigprocmask": (_table(SIGPROCMASK_HOW), _p, _p), "sigaltstack": (_p, _p),
    "getpid": (), "getppid": (), "gettid": (), "getuid": (), "geteuid": (), "getgid": (), "getegid": (),
    "getpgrp": (), "setsid": (), "sched_yield": (), "fork": (), "vfork": (), "pause": (),
    "sched_getaffinity": (_d, _u, _x), "exit": (_d,), "exit_group": (_d,), "kill": (_d, _signal),
    "tkill": (_d, _signal), "tgkill": (_d, _d, _signal), "wait4": (_d, _p, _d, _p), "execve": (_s, _p, _p),
    "nanosleep": (_timespec, _p), "clock_nanosleep": (_table(CLOCKS), _d, _timespec, _p), "alarm": (_u,),
    "setpgid": (_d, _d), "getpgid": (_d,), "getsid": (_d,), "futex": (_p, _d, _d, _p, _p, _d),
    "poll": (_p, _u, _d), "select": (_d, _p, _p, _p, _p), "socket": (_d, _d, _d), "connect": (_d, _p, _d),
}
ADDRESS_RESULTS = frozenset({"brk", "mmap", "mremap"})
#: Calls that never return: the line ends without a result.
NO_RETURN = frozenset({"exit", "exit_group"})


def _open_args(name: str, args: Sequence[int], m: Memory) -> list[str]:
    """open/openat/creat: the mode only when the flags create a file (O_CREAT, O_TMPFILE)."""
    if name == "openat":
        head, (path, oflag, mode) = [dirfd(args[0])], args[1:4]
    else:
        head, (path, oflag, mode) = [], args[0:3]
    out = [*head, m.string(path), open_flags(oflag)]
    if oflag & 0o100 or oflag & 0o20000000 == 0o20000000:
        out.append(_o(mode, m))
    return out


def _fcntl_args(args: Sequence[int], m: Memory) -> list[str]:
    cmd = c_int(args[1])
    out = [str(c_int(args[0])), FCNTL_CMDS.get(cmd, str(cmd))]
    if cmd == 4:  # F_SETFL
        out.append(open_flags(args[2]))
    elif cmd not in FCNTL_NO_ARG:
        out.append(str(c_long(args[2])))
    return out


def _ioctl_args(args: Sequence[int], m: Memory) -> list[str]:
    request = args[1] & 0xFFFFFFFF
    if request in IOCTLS:
        return [str(c_int(args[0])), IOCTLS[request], pointer(args[2])]
    return [str(c_int(args[0])), f"0x{request:x}", short_pointer(args[2])]


def format_call(nr: int, args: Sequence[int], m: Memory) -> str:
    """``name(arg,...)`` for system call ``nr``; qemu's ``Unknown syscall N`` for a number the kernel lacks."""
    name = syscall_name(nr)
    if name is None:
        return f"Unknown syscall {nr}"
    if name in ("open", "openat", "creat"):
        parts = _open_args(name, args, m) if name != "creat" else [m.string(args[0]), _o(args[1], m)]
    elif name == "fcntl":
        parts = _fcntl_args(args, m)
    elif name == "ioctl":
        parts = _ioctl_args(args, m)
    elif name in ARGS:
        parts = [fmt(value, m) for fmt, value in zip(ARGS[name], args, strict=False)]
    else:
        parts = [str(c_long(a)) for a in args]
    return f"{name}({','.join(parts)})"


def format_result(nr: int, ret: int, args: Sequence[int], m: Memory) -> str:
    """`` = value`` (or `` = -1 errno=N (message)``), with what some calls wrote, as qemu shows it."""
    value = c_long(ret)
    if -4096 < value < 0:
        return f" = -1 errno={-value} ({os.strerror(-value)})"
    name = syscall_name(nr)
    if name in ADDRESS_RESULTS:
        return f" = 0x{ret & MASK64:016x}"
    shown = ""
    if name == "clock_gettime":
        shown = m.timespec(args[1]) or ""
    elif name == "gettimeofday":
        tv = m.timespec(args[0], "tv_usec") if args[0] else "NULL"
        shown = f"{tv},NULL" if tv else ""
    return f" = {value}" + (f" ({shown})" if shown else "")


class Tracer:
    """Writes one line per system call to ``out`` around the wrapped handler (``tracer(cpu)``)."""

    def __init__(self, handler: Callable[[Any], None], out: IO[str], pid: int | None = None) -> None:
        self.handler = handler
        self.out = out
        self.pid = os.getpid() if pid is None else pid
        self.pending = False  # a call is written, its result not yet

    def break_line(self) -> None:
        """End a pending call line, so that a message from the Linux layer gets a line of its own."""
        if self.pending:
            self.out.write("\n")
            self.pending = False

    def __call__(self, cpu: Any) -> None:
        nr = cpu.reg_read("rax")
        args = [cpu.reg_read(r) for r in ARG_REGS]
        memory = Memory(cpu)
        call = format_call(nr, args, memory)
        self.out.write(f"{self.pid} {call}")
        self.out.flush()  # before the call runs: the guest's own output follows it, as with qemu
        self.pending = True
        if syscall_name(nr) is None:
            self.break_line()
            self.handler(cpu)
            return
        try:
            self.handler(cpu)
        except BaseException:  # exit, exit_group: no result; anything else: end the line first
            self.break_line()
            self.out.flush()
            raise
        self.pending = False
        self.out.write(format_result(nr, cpu.reg_read("rax"), args, memory) + "\n")
        self.out.flush()


def _same_stream(a: IO[str], b: IO[str]) -> bool:
    if a is b:
        return True
    try:
        return a.fileno() == b.fileno()
    except (AttributeError, OSError, ValueError):
        return False


class _BreakingStream:
    """The Linux layer's message stream: a message starts on a line of its own while a call is pending."""

    def __init__(self, stream: IO[str], tracer: Tracer) -> None:
        self.stream = stream
        self.tracer = tracer

    def write(self, text: str) -> int:
        if _same_stream(self.tracer.out, self.stream):
            self.tracer.break_line()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def attach(process: Any, out: IO[str]) -> Tracer:
    """Trace every system call of ``process`` (a tcg2wasm.linux.Process) to ``out``."""
    tracer = Tracer(process.cpu.syscall_handler, out)
    process.cpu.syscall_handler = tracer
    syscalls = getattr(process, "syscalls", None)
    if syscalls is not None and hasattr(syscalls, "stderr"):  # its "unsupported syscall" notes
        syscalls.stderr = _BreakingStream(syscalls.stderr, tracer)
    return tracer
