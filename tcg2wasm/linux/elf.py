"""Loading static x86-64 ELF executables (pyelftools reads the headers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tcg2wasm.abi import PAGE_SIZE
from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.guest_cpu import GuestMemoryAPI

PIE_BASE = 0x0040_0000
PF_X, PF_W, PF_R = 1, 2, 4
USER_TOP = 1 << 47  # segments must lie in the lower half of the address space, as for the kernel
#: At most this much memory in PT_LOAD segments: every guest page takes a page of the 4 GiB wasm memory.
MAX_LOAD_BYTES = 1 << 31


class ElfLoadError(Tcg2WasmError):
    """The file is not a static x86-64 Linux executable we can run; the message says why."""


@dataclass
class LoadedImage:
    entry: int
    phdr_addr: int
    phent: int
    phnum: int
    brk: int  # first byte after the highest segment, page-aligned
    base: int  # load bias (0 for ET_EXEC)


def _page_down(x: int) -> int:
    return x & ~(PAGE_SIZE - 1)


def _page_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _perms(flags: int) -> str:
    return "".join(c for c, bit in (("r", PF_R), ("w", PF_W), ("x", PF_X)) if flags & bit)


def _open(path: Path) -> tuple[ELFFile, bytes]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ElfLoadError(f"{path}: cannot read: {e.strerror}") from None
    if data[:4] != b"\x7fELF":
        raise ElfLoadError(f"{path}: not an ELF file")
    import io
    try:
        elf = ELFFile(io.BytesIO(data))
        _ = elf.header  # parse eagerly so truncation shows here
    except (ELFError, ValueError, EOFError, OSError, OverflowError) as e:
        raise ElfLoadError(f"{path}: malformed ELF: {e}") from None
    return elf, data


def _check_header(elf: ELFFile, path: Path) -> None:
    if elf.elfclass != 64:
        raise ElfLoadError(f"{path}: {elf.elfclass}-bit ELF; only x86-64 (ELFCLASS64) is supported")
    if elf["e_machine"] != "EM_X86_64":
        raise ElfLoadError(f"{path}: machine {elf['e_machine']}; only EM_X86_64 is supported")
    if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
        raise ElfLoadError(f"{path}: ELF type {elf['e_type']} is not an executable")


def load_elf(mem: GuestMemoryAPI, path: str | Path) -> LoadedImage:
    """Map the PT_LOAD segments of a static executable into guest memory."""
    path = Path(path)
    elf, data = _open(path)
    _check_header(elf, path)
    try:
        segments = list(elf.iter_segments())
    except (ELFError, ValueError, EOFError, OverflowError) as e:  # OverflowError: a huge e_phoff (fuzz files)
        raise ElfLoadError(f"{path}: malformed program headers: {e}") from None
    if any(s["p_type"] == "PT_INTERP" for s in segments):
        raise ElfLoadError(f"{path}: dynamically linked (has PT_INTERP); only static executables are supported")
    loads = [s for s in segments if s["p_type"] == "PT_LOAD"]
    if not loads:
        raise ElfLoadError(f"{path}: no PT_LOAD segment")
    base = PIE_BASE if elf["e_type"] == "ET_DYN" else 0
    _check_segments(loads, base, len(data), path)
    page_perms: dict[int, int] = {}
    for seg in loads:
        start = base + seg["p_vaddr"]
        for page in range(_page_down(start), _page_up(start + seg["p_memsz"]), PAGE_SIZE):
            page_perms[page] = page_perms.get(page, 0) | seg["p_flags"]
    try:
        _map_runs(mem, page_perms)
        for seg in loads:
            start = base + seg["p_vaddr"]
            mem.mem_write(start, data[seg["p_offset"]:seg["p_offset"] + seg["p_filesz"]])
    except Tcg2WasmError as e:  # e.g. out of guest memory: say which file
        raise ElfLoadError(f"{path}: cannot load the segments: {e}") from None
    phdr_addr = _phdr_address(elf, loads, base)
    end = max(base + s["p_vaddr"] + s["p_memsz"] for s in loads)
    return LoadedImage(base + elf["e_entry"], phdr_addr, elf["e_phentsize"], elf["e_phnum"], _page_up(end), base)


def _check_segments(loads: list, base: int, file_size: int, path: Path) -> None:
    """Every PT_LOAD segment inside the file and the user address space, all of them of a loadable size
    (a damaged p_memsz of 2^47 must be an error, not a loop over 2^35 pages: found by `tcg2wasm fuzz files`)."""
    total = 0
    for seg in loads:
        start = base + seg["p_vaddr"]
        if seg["p_filesz"] > seg["p_memsz"] or seg["p_offset"] + seg["p_filesz"] > file_size:
            raise ElfLoadError(f"{path}: segment at 0x{start:x} extends past the end of the file")
        if start + seg["p_memsz"] > USER_TOP:
            raise ElfLoadError(f"{path}: segment at 0x{start:x} (0x{seg['p_memsz']:x} bytes) is outside the user "
                               f"address space (below 0x{USER_TOP:x})")
        total += seg["p_memsz"]
    if total > MAX_LOAD_BYTES:
        raise ElfLoadError(f"{path}: segments of 0x{total:x} bytes in all; at most 0x{MAX_LOAD_BYTES:x} can be loaded")


def _map_runs(mem: GuestMemoryAPI, page_perms: dict[int, int]) -> None:
    """Map runs of consecutive pages with equal permissions as one mapping each."""
    pages = sorted(page_perms)
    run_start = pages[0]
    for i, page in enumerate(pages):
        nxt = pages[i + 1] if i + 1 < len(pages) else None
        if nxt != page + PAGE_SIZE or page_perms[nxt] != page_perms[page]:
            mem.mem_map(run_start, page + PAGE_SIZE - run_start, _perms(page_perms[page]) or "r")
            run_start = nxt if nxt is not None else 0


def _phdr_address(elf: ELFFile, loads: list, base: int) -> int:
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_PHDR":
            return base + seg["p_vaddr"]
    phoff = elf["e_phoff"]
    for seg in loads:
        if seg["p_offset"] <= phoff < seg["p_offset"] + seg["p_filesz"]:
            return base + seg["p_vaddr"] + phoff - seg["p_offset"]
    return 0
