"""Guest memory: a page table from guest pages to host pages in the linear memory.

Guest addresses are 64-bit; every mapped guest page owns one 4 KiB host page
inside the wasm linear memory, at or above ``abi.GUEST_BASE``. The pages of one
``map`` call are allocated contiguously, so that each mapping can be shared
with Unicorn (``mem_map_ptr``) for the fallback executor.

Two kinds of access exist:

* host accesses (``read``/``write``): the API's ``mem_read``/``mem_write``;
  they ignore permissions but need a mapping (else ``GuestMemoryError``);
* guest accesses (``load``/``store``/``fetch``): what translated code does on
  the slow path; they check permissions and raise ``GuestFault`` with the
  precise ``Excp`` kind, as the IR interpreter expects.

The soft TLB (``abi.TLB_*``) lives in the linear memory too; it is filled
here on slow-path accesses and flushed when mappings change. A page holding
translated code never gets a write tag, so every guest store to it reaches the
slow path, which reports it as ``GuestFault(Excp.NONE)`` ("code write"): the
runtime then invalidates the page's translations and re-executes the store.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tcg2wasm import abi
from tcg2wasm.errors import GuestFault, GuestMemoryError
from tcg2wasm.ir.ops import MASK64, Excp
from tcg2wasm.runtime.page_table import PageTable

PERM_R = abi.PT_READ
PERM_W = abi.PT_WRITE
PERM_X = abi.PT_EXEC
_PERM_LETTERS = (("r", PERM_R), ("w", PERM_W), ("x", PERM_X))
_LINEAR_LIMIT = abi.MAX_WASM_PAGES * abi.WASM_PAGE
_WX = PERM_W | PERM_X
_TLB_EMPTY_ENTRY = struct.pack("<QQQQ", abi.TLB_INVALID, abi.TLB_INVALID, abi.TLB_INVALID, 0)


class LinearMemory(Protocol):
    """The byte store guest pages live in (the wasm memory, or a bytearray in tests)."""

    def read(self, offset: int, size: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def size(self) -> int: ...

    def ensure_size(self, nbytes: int) -> None: ...


class Watch(Protocol):
    """Memory hooks as guest memory sees them (``tcg2wasm.runtime.hooks`` implements it).

    ``page_flags(page)``: ``abi.PT_SLOW_READ`` / ``abi.PT_SLOW_WRITE`` for a page some read / write
    hook's range overlaps: its accesses leave the inline TLB path. ``hits(addr, size, write)``: the
    access overlaps a hook's range exactly (then the slow path raises ``GuestFault(Excp.WATCH)``).
    """

    def page_flags(self, page: int) -> int: ...

    def hits(self, addr: int, size: int, write: bool) -> bool: ...


class BytearrayLinearMemory:
    """A plain growable bytearray standing in for the wasm memory (unit tests)."""

    def __init__(self, nbytes: int = abi.GUEST_BASE) -> None:
        self.data = bytearray(nbytes)

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self.data[offset : offset + size])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset : offset + len(data)] = data

    def size(self) -> int:
        return len(self.data)

    def ensure_size(self, nbytes: int) -> None:
        if nbytes > len(self.data):
            self.data.extend(bytes(nbytes - len(self.data)))


def parse_perms(perms: str) -> int:
    """``"rwx"``-style string to PERM_* bits; raises on anything else."""
    if not isinstance(perms, str) or any(c not in "rwx" for c in perms) or len(set(perms)) != len(perms):
        raise GuestMemoryError(f"bad permissions {perms!r}: expected a subset of 'rwx'")
    return sum(bit for letter, bit in _PERM_LETTERS if letter in perms)


def format_perms(bits: int) -> str:
    return "".join(letter for letter, bit in _PERM_LETTERS if bits & bit)


@dataclass(slots=True)
class Page:
    host: int  # offset of the host copy in the linear memory
    perms: int  # PERM_* bits


@dataclass(frozen=True, slots=True)
class HostRun:
    """Guest pages contiguous in guest and host memory with equal permissions."""

    addr: int
    size: int
    perms: int
    host: int


class HostAllocator:
    """Bump allocation of host page ranges, with first-fit reuse of freed ranges."""

    def __init__(self, linear: LinearMemory, base: int = abi.GUEST_BASE) -> None:
        self._linear = linear
        self._top = base
        self._free: list[tuple[int, int]] = []  # (offset, npages), sorted by offset

    def allocate(self, npages: int) -> int:
        nbytes = npages * abi.PAGE_SIZE
        for i, (offset, count) in enumerate(self._free):
            if count >= npages:
                if count == npages:
                    del self._free[i]
                else:
                    self._free[i] = (offset + nbytes, count - npages)
                self._linear.write(offset, bytes(nbytes))  # reused pages must read as zero
                return offset
        if self._top + nbytes > _LINEAR_LIMIT:
            raise GuestMemoryError(
                f"out of host memory: {nbytes:#x} more bytes exceed the 4 GiB wasm linear memory")
        offset = self._top
        self._top += nbytes
        self._linear.ensure_size(self._top)
        return offset

    def free(self, offset: int, npages: int) -> None:
        self._free.append((offset, npages))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for off, count in self._free:
            if merged and merged[-1][0] + merged[-1][1] * abi.PAGE_SIZE == off:
                merged[-1] = (merged[-1][0], merged[-1][1] + count)
            else:
                merged.append((off, count))
        self._free = merged


def _merged(chunks: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """(host offset, length) pieces with neighbours that are contiguous in host memory joined.

    A mapping's pages are allocated together, so a large read is then one copy, not one per page.
    """
    out: list[tuple[int, int]] = []
    for off, n in chunks:
        if out and out[-1][0] + out[-1][1] == off:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((off, n))
    return out


def _check_range(what: str, addr: int, size: int) -> None:
    for name, value in (("address", addr), ("size", size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise GuestMemoryError(f"{what}: {name} must be an int, got {value!r}")
    if addr < 0 or addr > MASK64:
        raise GuestMemoryError(f"{what}: address {addr:#x} is not a 64-bit guest address")
    if size < 0 or addr + size > 1 << 64:
        raise GuestMemoryError(f"{what}: range {addr:#x}+{size:#x} leaves the 64-bit address space")


def _check_aligned(what: str, addr: int, size: int) -> None:
    _check_range(what, addr, size)
    if addr % abi.PAGE_SIZE or size % abi.PAGE_SIZE or size == 0:
        raise GuestMemoryError(
            f"{what}: address {addr:#x} and size {size:#x} must be page-aligned (0x1000) and size nonzero")


class GuestMemory:
    """Page table, host allocation, soft TLB and code-page tracking."""

    def __init__(self, linear: LinearMemory) -> None:
        self.linear = linear
        linear.ensure_size(abi.GUEST_BASE)
        self._alloc = HostAllocator(linear)
        self._pages: dict[int, Page] = {}
        self._table = PageTable(linear.write, self._alloc.allocate)  # what wasm refills the TLB from
        self.code_pages: set[int] = set()
        #: Called with a sorted list of page numbers whose translations must go (set by the runtime).
        self.on_invalidate: Callable[[list[int]], None] = lambda pages: None
        #: Bumped when the set of mappings or their permissions changed (Unicorn maps them again).
        self.layout_version = 0
        #: Bumped when ``code_pages`` changed (Unicorn write-protects those pages).
        self.code_version = 0
        #: While set, stores to pages both writable and executable take the slow path and are reported
        #: to ``on_exec_write(addr, size)``: code Unicorn may have translated there must be dropped.
        self.watch_exec_writes = False
        self.on_exec_write: Callable[[int, int], None] = lambda addr, size: None
        #: While true a guest store to a code page invalidates it and goes through instead of faulting.
        self.code_write_passthrough = False
        #: Memory hooks: watched pages take the slow path, and an access in a hook's range faults with
        #: ``Excp.WATCH`` (the host then redoes the instruction with ``watch_passthrough`` set).
        self.watch: Watch | None = None
        self.watch_passthrough = False
        #: (address, size, value, is_write) of the last guest load or store that faulted.
        self.last_fault_access: tuple[int, int, int, bool] | None = None
        self.tlb_flush_all()

    # -- mapping ------------------------------------------------------------
    def map(self, addr: int, size: int, perms: str = "rwx") -> None:
        _check_aligned("mem_map", addr, size)
        bits = parse_perms(perms)
        first = addr >> abi.PAGE_BITS
        npages = size >> abi.PAGE_BITS
        for page in range(first, first + npages):
            if page in self._pages:
                raise GuestMemoryError(
                    f"mem_map: {addr:#x}+{size:#x} overlaps the existing mapping at {page << abi.PAGE_BITS:#x}")
        host = self._alloc.allocate(npages)
        for i in range(npages):
            self._pages[first + i] = Page(host + i * abi.PAGE_SIZE, bits)
        self._table.set_run(first, [self._table_entry(first + i) for i in range(npages)])
        self.layout_version += 1

    def unmap(self, addr: int, size: int) -> None:
        _check_aligned("mem_unmap", addr, size)
        pages = self._require_mapped("mem_unmap", addr, size)
        self._invalidate_code(pages)
        for page in pages:
            self._alloc.free(self._pages.pop(page).host, 1)
            self.tlb_flush_page(page)
        self._table.set_run(pages[0], [0] * len(pages))
        self.layout_version += 1

    def protect(self, addr: int, size: int, perms: str) -> None:
        _check_aligned("mem_protect", addr, size)
        bits = parse_perms(perms)
        pages = self._require_mapped("mem_protect", addr, size)
        self._invalidate_code([p for p in pages if self._pages[p].perms != bits])
        for page in pages:
            self._pages[page].perms = bits
            self.tlb_flush_page(page)
        self._table.set_run(pages[0], [self._table_entry(page) for page in pages])
        self.layout_version += 1

    def _require_mapped(self, what: str, addr: int, size: int) -> list[int]:
        first = addr >> abi.PAGE_BITS
        pages = list(range(first, first + (size >> abi.PAGE_BITS)))
        for page in pages:
            if page not in self._pages:
                raise GuestMemoryError(f"{what}: {page << abi.PAGE_BITS:#x} is not mapped")
        return pages

    def is_mapped(self, addr: int) -> bool:
        return (addr >> abi.PAGE_BITS) in self._pages

    def page(self, addr: int) -> Page | None:
        return self._pages.get(addr >> abi.PAGE_BITS)

    def regions(self) -> list[tuple[int, int, str]]:
        """Mapped ranges (address, size, perms), sorted, adjacent pages of equal perms merged."""
        out: list[tuple[int, int, str]] = []
        for page in sorted(self._pages):
            perms = self._pages[page].perms
            addr = page << abi.PAGE_BITS
            if out and out[-1][0] + out[-1][1] == addr and out[-1][2] == format_perms(perms):
                out[-1] = (out[-1][0], out[-1][1] + abi.PAGE_SIZE, out[-1][2])
            else:
                out.append((addr, abi.PAGE_SIZE, format_perms(perms)))
        return out

    def host_runs(self) -> list[HostRun]:
        """Ranges contiguous in guest and host memory with equal perms (what Unicorn can share)."""
        runs: list[HostRun] = []
        for page in sorted(self._pages):
            entry = self._pages[page]
            addr = page << abi.PAGE_BITS
            last = runs[-1] if runs else None
            if (last is not None and last.addr + last.size == addr and last.perms == entry.perms
                    and last.host + last.size == entry.host):
                runs[-1] = HostRun(last.addr, last.size + abi.PAGE_SIZE, last.perms, last.host)
            else:
                runs.append(HostRun(addr, abi.PAGE_SIZE, entry.perms, entry.host))
        return runs

    # -- host access (API) -----------------------------------------------------
    def _host_chunks(self, what: str, addr: int, size: int) -> Iterator[tuple[int, int]]:
        """(host offset, length) pieces of a guest range, raising if a page is unmapped."""
        _check_range(what, addr, size)
        end = addr + size
        while addr < end:
            entry = self._pages.get(addr >> abi.PAGE_BITS)
            if entry is None:
                raise GuestMemoryError(f"{what}: address {addr:#x} is not mapped")
            offset = addr & (abi.PAGE_SIZE - 1)
            n = min(abi.PAGE_SIZE - offset, end - addr)
            yield entry.host + offset, n
            addr += n

    def read(self, addr: int, size: int) -> bytes:
        return b"".join(self.linear.read(off, n) for off, n in _merged(self._host_chunks("mem_read", addr, size)))

    def write(self, addr: int, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise GuestMemoryError(f"mem_write at {addr:#x}: data must be bytes, got {type(data).__name__}")
        chunks = list(self._host_chunks("mem_write", addr, len(data)))
        self._invalidate_code(self._code_pages_in(addr, len(data)))
        pos = 0
        for off, n in chunks:
            self.linear.write(off, bytes(data[pos : pos + n]))
            pos += n
        if self.watch_exec_writes:
            self._report_exec_write(addr, len(data))

    def _report_exec_write(self, addr: int, size: int) -> None:
        last = (addr + max(size, 1) - 1) & MASK64
        for page in range(addr >> abi.PAGE_BITS, (last >> abi.PAGE_BITS) + 1):
            entry = self._pages.get(page)
            if entry is not None and entry.perms & PERM_X:
                self.on_exec_write(addr, size)
                return

    # -- guest access (slow path, interpreter) ------------------------------------
    def _guest_chunks(self, addr: int, size: int, need: int, unmapped: Excp, prot: Excp) -> list[tuple[int, int]]:
        chunks = []
        end = addr + size
        pos = addr
        while pos < end:
            entry = self._pages.get((pos & MASK64) >> abi.PAGE_BITS)
            if entry is None:
                raise GuestFault(unmapped, pos & MASK64)
            if not entry.perms & need:
                raise GuestFault(prot, pos & MASK64)
            offset = pos & (abi.PAGE_SIZE - 1)
            n = min(abi.PAGE_SIZE - offset, end - pos)
            chunks.append((entry.host + offset, n))
            pos += n
        return chunks

    def load(self, addr: int, size: int) -> int:
        """Guest read of ``size`` bytes (little-endian, unsigned); raises GuestFault."""
        try:
            chunks = self._guest_chunks(addr, size, PERM_R, Excp.READ_UNMAPPED, Excp.READ_PROT)
        except GuestFault:
            self.last_fault_access = (addr & MASK64, size, 0, False)
            raise
        if self.watch is not None and not self.watch_passthrough and self.watch.hits(addr & MASK64, size, False):
            raise GuestFault(Excp.WATCH, addr & MASK64)
        if len(chunks) == 1:
            self.tlb_fill(addr >> abi.PAGE_BITS)
        return int.from_bytes(b"".join(self.linear.read(off, n) for off, n in chunks), "little")

    def load_for_write(self, addr: int, size: int) -> int:
        """The read of a read-modify-write: faults as a write where the pages are not writable (as the CPU)."""
        self.check_writable(addr, size)
        return self.load(addr, size)

    def check_writable(self, addr: int, size: int) -> None:
        """Raise the write fault (GuestFault) a store of ``size`` bytes at ``addr`` would raise, if any."""
        self._guest_chunks(addr, size, PERM_W, Excp.WRITE_UNMAPPED, Excp.WRITE_PROT)

    def store(self, addr: int, size: int, value: int) -> None:
        """Guest write; raises GuestFault, or GuestFault(Excp.NONE) for a write to a code page."""
        try:
            chunks = self._guest_chunks(addr, size, PERM_W, Excp.WRITE_UNMAPPED, Excp.WRITE_PROT)
        except GuestFault:
            self.last_fault_access = (addr & MASK64, size, value & ((1 << (8 * size)) - 1), True)
            raise
        if self.watch is not None and not self.watch_passthrough and self.watch.hits(addr & MASK64, size, True):
            raise GuestFault(Excp.WATCH, addr & MASK64)
        code = self._code_pages_in(addr, size)
        if code:
            if not self.code_write_passthrough:
                raise GuestFault(Excp.NONE, addr)
            self._invalidate_code(code)
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        pos = 0
        for off, n in chunks:
            self.linear.write(off, data[pos : pos + n])
            pos += n
        if self.watch_exec_writes:
            self._report_exec_write(addr, size)
        if len(chunks) == 1:
            self.tlb_fill(addr >> abi.PAGE_BITS)

    def fetch(self, addr: int, n: int) -> bytes:
        """Up to ``n`` executable bytes from ``addr`` (fewer where execute permission ends)."""
        entry = self._pages.get(addr >> abi.PAGE_BITS)
        if entry is None:
            raise GuestFault(Excp.FETCH_UNMAPPED, addr)
        if not entry.perms & PERM_X:
            raise GuestFault(Excp.FETCH_PROT, addr)
        out = []
        pos, end = addr, min(addr + n, 1 << 64)
        while pos < end:
            entry = self._pages.get(pos >> abi.PAGE_BITS)
            if entry is None or not entry.perms & PERM_X:
                break
            offset = pos & (abi.PAGE_SIZE - 1)
            k = min(abi.PAGE_SIZE - offset, end - pos)
            out.append(self.linear.read(entry.host + offset, k))
            pos += k
        return b"".join(out)

    # -- translated code tracking -------------------------------------------------
    def mark_code(self, first_addr: int, end_addr: int) -> list[int]:
        """Record that [first_addr, end_addr) holds translated code; returns its pages."""
        last = max(first_addr, end_addr - 1)
        pages = list(range(first_addr >> abi.PAGE_BITS, (last >> abi.PAGE_BITS) + 1))
        for page in pages:
            if page not in self.code_pages:
                self.code_pages.add(page)
                self.code_version += 1
                self.tlb_flush_page(page)
                self._table.set(page, self._table_entry(page))
        return pages

    def _code_pages_in(self, addr: int, size: int) -> list[int]:
        if not self.code_pages or size <= 0:
            return []
        last = (addr + size - 1) & MASK64
        return [p for p in range(addr >> abi.PAGE_BITS, (last >> abi.PAGE_BITS) + 1) if p in self.code_pages]

    def _invalidate_code(self, pages: list[int]) -> None:
        hit = sorted(p for p in pages if p in self.code_pages)
        if not hit:
            return
        self.code_version += 1
        for page in hit:
            self.code_pages.discard(page)
            self.tlb_flush_page(page)
            self._table.set(page, self._table_entry(page))
        self.on_invalidate(hit)

    def invalidate_range(self, addr: int, size: int) -> None:
        """Drop the translations of every code page in [addr, addr + size)."""
        self._invalidate_code(self._code_pages_in(addr, size))

    def _table_entry(self, page: int) -> int:
        """The page-table entry of ``page`` (``abi.PT_*``): host offset | permissions | slow-path flags."""
        entry = self._pages.get(page)
        if entry is None:
            return 0
        slow = abi.PT_SLOW_WRITE if self._slow_write(page, entry) else 0
        if self.watch is not None:
            slow |= self.watch.page_flags(page)
        return entry.host | entry.perms | slow  # PERM_R/W/X are PT_READ/WRITE/EXEC

    def _slow_write(self, page: int, entry: Page) -> bool:
        """Whether stores to ``page`` must take the slow path (translated code, watched W+X, a write hook)."""
        return (page in self.code_pages or (self.watch_exec_writes and entry.perms & _WX == _WX)
                or (self.watch is not None and bool(self.watch.page_flags(page) & abi.PT_SLOW_WRITE)))

    def _slow_read(self, page: int) -> bool:
        return self.watch is not None and bool(self.watch.page_flags(page) & abi.PT_SLOW_READ)

    def rewatch(self, pages: Iterable[int] | None = None) -> None:
        """The memory hooks changed: page-table flags and TLB entries of ``pages`` (None: every mapped page)."""
        for page in self._pages if pages is None else pages:
            if page in self._pages:
                self._table.set(page, self._table_entry(page))
                self.tlb_flush_page(page)

    def set_watch_exec_writes(self, on: bool) -> None:
        """Turn ``watch_exec_writes`` on or off, updating the page table and TLB of the W+X pages."""
        self.watch_exec_writes = on
        for page, entry in self._pages.items():
            if entry.perms & _WX == _WX:
                self._table.set(page, self._table_entry(page))
                self.tlb_flush_page(page)

    # -- soft TLB -----------------------------------------------------------------
    def tlb_fill(self, page: int) -> None:
        """Fill the TLB entry of a mapped guest page according to its permissions."""
        entry = self._pages[page]
        tag = page << abi.PAGE_BITS
        read = tag if entry.perms & PERM_R and not self._slow_read(page) else abi.TLB_INVALID
        write = tag if entry.perms & PERM_W and not self._slow_write(page, entry) else abi.TLB_INVALID
        execute = tag if entry.perms & PERM_X else abi.TLB_INVALID
        addend = (entry.host - tag) & MASK64
        self.linear.write(_tlb_entry_offset(page), struct.pack("<QQQQ", read, write, execute, addend))

    def tlb_entry(self, page: int) -> tuple[int, int, int, int]:
        """(tag_read, tag_write, tag_exec, addend) of the slot ``page`` maps to."""
        return struct.unpack("<QQQQ", self.linear.read(_tlb_entry_offset(page), abi.TLB_ENTRY_SIZE))

    def tlb_flush_page(self, page: int) -> None:
        tag = page << abi.PAGE_BITS
        if tag in self.tlb_entry(page)[:3]:
            self.linear.write(_tlb_entry_offset(page), _TLB_EMPTY_ENTRY)

    def tlb_flush_all(self) -> None:
        self.linear.write(abi.TLB_BASE, _TLB_EMPTY_ENTRY * abi.TLB_ENTRIES)


def _tlb_entry_offset(page: int) -> int:
    return abi.TLB_BASE + abi.tlb_index(page << abi.PAGE_BITS) * abi.TLB_ENTRY_SIZE
