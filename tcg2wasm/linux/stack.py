"""The start-up stack the kernel gives a new process: argc, argv, envp, auxv and their strings."""

from __future__ import annotations

import os
import struct

from tcg2wasm.linux.elf import LoadedImage

STACK_TOP = 0x7FFF_0000
STACK_SIZE = 8 << 20

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN = 23, 25, 26, 31


def build_stack(mem, image: LoadedImage, argv: list[str], envp: list[str], hwcap: int = 0,
                random_bytes: bytes | None = None) -> int:
    """Map the stack, write the start-up block, return the initial rsp (16-byte aligned at argc)."""
    mem.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE, "rw")
    blob = bytearray()
    strings_base = STACK_TOP - 4096  # strings live in the top page

    def put(data: bytes) -> int:
        addr = strings_base + len(blob)
        blob.extend(data)
        return addr

    argv_ptrs = [put(a.encode() + b"\0") for a in argv]
    env_ptrs = [put(e.encode() + b"\0") for e in envp]
    platform = put(b"x86_64\0")
    rand = put(random_bytes if random_bytes is not None else os.urandom(16))
    execfn = argv_ptrs[0] if argv_ptrs else 0
    if len(blob) > 4096:
        raise ValueError("arguments and environment exceed the 4 KiB start-up string area")
    mem.mem_write(strings_base, bytes(blob))
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
