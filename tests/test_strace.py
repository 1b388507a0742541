"""--strace: the kernel's syscall names (generated table), decoded arguments, qemu-x86_64 -strace's format."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tcg2wasm.linux import strace
from tcg2wasm.linux.syscall_names import KERNEL_SYSCALL_NAMES

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests"
BUSYBOX = Path("/bin/busybox")
sys.path.insert(0, str(ROOT / "tools"))

import gen_syscall_names  # noqa: E402

#: Calls qemu 7.2 prints as six raw registers: only their names are compared.
QEMU_RAW = re.compile(r"^\w+\((-?\d+,){5}-?\d+\)")
#: Results that depend on the process (pid, working directory, the clock).
HOST_RESULTS = ("set_tid_address(", "getcwd(", "clock_gettime(")


def test_the_committed_name_table_is_what_the_kernel_headers_give() -> None:
    assert gen_syscall_names.HEADER.exists(), "kernel headers missing: apt-get install linux-libc-dev"
    assert gen_syscall_names.main(["--check"]) == 0
    table = gen_syscall_names.parse_header(gen_syscall_names.HEADER.read_text())
    assert table == KERNEL_SYSCALL_NAMES
    assert (KERNEL_SYSCALL_NAMES[200], KERNEL_SYSCALL_NAMES[234], KERNEL_SYSCALL_NAMES[40],
            KERNEL_SYSCALL_NAMES[230]) == ("tkill", "tgkill", "sendfile", "clock_nanosleep")


def run_strace(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tcg2wasm", "run", "--strace", *argv]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, cwd=cwd)


def normalize(line: str) -> str:
    """Comparable with qemu: no pid, pointers as PTR, qemu's -100 as AT_FDCWD, times as T."""
    line = re.sub(r"^\d+ ", "", line)
    line = re.sub(r"0x[0-9a-f]{5,}", "PTR", line)
    line = re.sub(r"\((-100),", "(AT_FDCWD,", line).replace(",)", ")")  # qemu 7.2: rmdir("d",)
    line = re.sub(r"tv_(sec|nsec|usec) = \d+", r"tv_\1 = T", line)
    if line.startswith(HOST_RESULTS):
        line = line.split(" = ")[0]
    return line


def test_strace_of_every_served_call_matches_qemu() -> None:
    """guests/src/syscalls.c under tcg2wasm and under qemu-x86_64 7.2 (guests/record_qemu_strace.sh)."""
    result = run_strace(str(GUESTS / "bin" / "syscalls.musl"), "one", "two", cwd=GUESTS)
    assert result.returncode == 3 and result.stdout == "hi\nxxxxxxxxbye\n", result.stderr[-2000:]
    ours = [normalize(line) for line in result.stderr.splitlines()]
    qemu = [normalize(line) for line in (GUESTS / "expected" / "syscalls.musl.qemu-strace").read_text().splitlines()]
    assert len(ours) == len(qemu), "\n".join(ours)
    for mine, theirs in zip(ours, qemu, strict=True):
        if QEMU_RAW.match(theirs):  # qemu does not decode these; we do (arch_prctl(ARCH_SET_FS,...))
            assert mine.split("(")[0] == theirs.split("(")[0] and not QEMU_RAW.match(mine)
        else:
            assert mine == theirs


@pytest.mark.skipif(not BUSYBOX.exists(), reason="busybox-static is not installed (make test installs it)")
def test_strace_of_busybox_one_line_per_call_with_names() -> None:
    result = run_strace(str(BUSYBOX), "ls", "-l", str(GUESTS / "src"))
    assert result.returncode == 0 and "syscalls.c" in result.stdout
    lines = result.stderr.splitlines()
    pid = lines[0].split()[0]
    assert all(line.startswith(f"{pid} ") for line in lines), lines
    calls = [re.match(rf"{pid} (\w+)\(", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert set(calls) <= set(KERNEL_SYSCALL_NAMES.values())
    assert {"openat", "getdents64", "newfstatat", "write", "exit_group"} <= set(calls)
    assert any(re.search(r'openat\(AT_FDCWD,".*/guests/src",O_RDONLY\|O_DIRECTORY\|\S*O_CLOEXEC\) = \d+$', line)
               for line in lines), lines  # the descriptor number is the host's next free one
    assert lines[-1] == f"{pid} exit_group(0)"
    assert all(re.search(r"\) = (-1 errno=\d+ \(.+\)|-?\d+|0x[0-9a-f]{16})( \(.*\))?$", line)
               for line in lines[:-1]), lines


def test_unsupported_call_gets_a_line_of_its_own() -> None:
    result = run_strace(str(GUESTS / "bin" / "nosys.musl"))
    lines = result.stderr.splitlines()
    note = next(i for i, line in enumerate(lines) if "unsupported syscall 1000" in line)
    assert lines[note - 1].endswith("Unknown syscall 1000") and lines[note].startswith("tcg2wasm: unsupported")


@pytest.mark.parametrize(("nr", "args", "expected"), [
    (257, [(-100) & strace.MASK64, 0, 0o2000000 | 0o200000, 0], 'openat(AT_FDCWD,NULL,O_RDONLY|O_DIRECTORY|O_CLOEXEC)'),
    (2, [0, 0o1101, 0o644], "open(NULL,O_WRONLY|O_CREAT|O_TRUNC,0644)"),
    (9, [0, 4096, 5, 0x22, strace.MASK64, 0], "mmap(NULL,4096,PROT_READ|PROT_EXEC,MAP_PRIVATE|MAP_ANONYMOUS,-1,0)"),
    (72, [3, 4, 0o4000], "fcntl(3,F_SETFL,O_RDONLY|O_NONBLOCK)"),
    (16, [1, 0x1234, 0x10], "ioctl(1,0x1234,0x10)"),
    (13, [2, 0, 0, 8], "rt_sigaction(SIGINT,NULL,NULL)"),
    (158, [0x1002, 0x5EC4C0], "arch_prctl(ARCH_SET_FS,0x5ec4c0)"),
    (39, [7, 7], "getpid()"),
    (999, [1, 2], "Unknown syscall 999"),
    (451, [1, 2, 3, 4, 5, 6], "cachestat(1,2,3,4,5,6)" if KERNEL_SYSCALL_NAMES.get(451) else "Unknown syscall 451"),
])
def test_decoders(nr: int, args: list[int], expected: str) -> None:
    full = args + [0] * (6 - len(args))
    assert strace.format_call(nr, full, strace.Memory(None)) == expected


def test_results_and_strings() -> None:
    m = strace.Memory(None)
    assert strace.format_result(0, (-2) & strace.MASK64, [0] * 6, m) == " = -1 errno=2 (No such file or directory)"
    assert strace.format_result(12, 0x5EC000, [0] * 6, m) == " = 0x00000000005ec000"
    assert strace.format_result(1, 3, [0] * 6, m) == " = 3"
    assert strace.escape(b'a"b\n\xff') == '"a\\"b\\n\\\\xff"'
