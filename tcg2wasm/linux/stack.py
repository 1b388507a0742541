"""The start-up stack the kernel gives a new process: argc, argv, envp, auxv and their strings."""

from __future__ import annotations

import itertools
import os
import struct

from tcg2wasm.linux.elf import LoadedImage

STACK_TOP = 0x7FFF_0000
STACK_SIZE = 8 << 20

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN = 23, 25, 26, 31


#: The kernel's limits (execve fails with E2BIG past them): one string, and all of argv and envp
#: together (a quarter of the 8 MiB default stack limit).
MAX_ARG_STRLEN = 32 * 4096
MAX_ARG_TOTAL = STACK_SIZE // 4


def _c_string(text: str | bytes) -> bytes:
    """A NUL-terminated start-up string; str is encoded as the OS encodes arguments (surrogateescape)."""
    raw = text if isinstance(text, bytes) else os.fsencode(text)
    if len(raw) + 1 > MAX_ARG_STRLEN:
        raise ValueError(f"argument list too long: a {len(raw) + 1}-byte string (the kernel allows "
                         f"{MAX_ARG_STRLEN} per argument or environment entry)")
    return raw + b"\0"


def build_stack(mem, image: LoadedImage, argv: list[str] | list[bytes], envp: list[str] | list[bytes],
                hwcap: int = 0, random_bytes: bytes | None = None) -> int:
    """Map the stack, write the start-up block, return the initial rsp (16-byte aligned at argc)."""
    mem.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE, "rw")
    strings = [_c_string(a) for a in argv] + [_c_string(e) for e in envp]
    if sum(map(len, strings)) > MAX_ARG_TOTAL:
        raise ValueError(f"argument list too long: {sum(map(len, strings))} bytes of arguments and environment "
                         f"(the kernel allows {MAX_ARG_TOTAL})")
    strings += [b"x86_64\0", random_bytes if random_bytes is not None else os.urandom(16)]
    strings_base = (STACK_TOP - sum(map(len, strings))) & ~0xF  # the strings sit at the top of the stack
    ptrs = [strings_base + offset for offset in itertools.accumulate(map(len, strings[:-1]), initial=0)]
    argv_ptrs, env_ptrs = ptrs[: len(argv)], ptrs[len(argv) : len(argv) + len(envp)]
    platform, rand = ptrs[-2], ptrs[-1]
    execfn = argv_ptrs[0] if argv_ptrs else 0
    mem.mem_write(strings_base, b"".join(strings))
    auxv = [
        (AT_PHDR, image.phdr_addr), (AT_PHENT, image.phent), (AT_PHNUM, image.phnum), (AT_PAGESZ, 4096),
        (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, image.entry), (AT_UID, os.getuid()), (AT_EUID, os.geteuid()),
        (AT_GID, os.getgid()), (AT_EGID, os.getegid()), (AT_PLATFORM, platform), (AT_HWCAP, hwcap),
        (AT_CLKTCK, 100), (AT_SECURE, 0), (AT_RANDOM, rand), (AT_HWCAP2, 0), (AT_EXECFN, execfn), (AT_NULL, 0),
    ]
    words = [len(argv), *argv_ptrs, 0, *env_ptrs, 0]
    for key, value in auxv:
        words += [key, value]
    rsp = (strings_base - 8 * len(words)) & ~0xF
    mem.mem_write(rsp, struct.pack(f"<{len(words)}Q", *words))
    return rsp
