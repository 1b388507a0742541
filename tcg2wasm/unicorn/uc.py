"""``Uc``: Unicorn's Python API over a tcg2wasm ``Machine``, with hooks compiled into the translation.

A script written for ``from unicorn import *`` runs with ``from tcg2wasm.unicorn import *``
instead (x86-64 only). Memory, registers, contexts and hooks behave as Unicorn
2.1.4's do -- down to its error numbers, the order its hooks run in and the
sizes of the blocks its block hooks report -- while the guest code runs as
WebAssembly, leaving translated code only at hooked addresses
(``tcg2wasm.runtime.hooks``). docs/unicorn-api.md lists every call, its status
here and where the behaviour differs on purpose.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tcg2wasm.unicorn.unicorn_const as U
import tcg2wasm.unicorn.x86_const as X
from tcg2wasm.abi import PAGE_BITS, PAGE_SIZE
from tcg2wasm.cpu_state import MASK64
from tcg2wasm.errors import GuestMemoryError
from tcg2wasm.machine import Machine
from tcg2wasm.runtime.memory import format_perms
from tcg2wasm.runtime.registers import REGISTERS
from tcg2wasm.unicorn.context import UcContext
from tcg2wasm.unicorn.control import UcControl
from tcg2wasm.unicorn.errors import UcError, hook_handle_error
from tcg2wasm.unicorn.hookset import MMIO, Hook, HookSet
from tcg2wasm.unicorn.regions import RegionList
from tcg2wasm.unicorn.regs import EFER_64BIT, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, RIP_IDS, Registers, register_access
from tcg2wasm.unicorn.runner import Runner

__all__ = ["Uc"]

HOT_THRESHOLD = 16  # arrivals (misses) at a pc before its code is compiled; see runtime/tiering.py
_HOOK_GROUPS = (  # hook type bits one hook_add may combine (the binding's rule: one callback signature)
    U.UC_HOOK_INTR, U.UC_HOOK_INSN, U.UC_HOOK_CODE | U.UC_HOOK_BLOCK, U.UC_HOOK_MEM_INVALID,
    U.UC_HOOK_MEM_VALID | U.UC_HOOK_MEM_READ_AFTER, U.UC_HOOK_INSN_INVALID,
)
_UNSUPPORTED_HOOKS = {U.UC_HOOK_EDGE_GENERATED: "UC_HOOK_EDGE_GENERATED", U.UC_HOOK_TCG_OPCODE: "UC_HOOK_TCG_OPCODE",
                      U.UC_HOOK_TLB_FILL: "UC_HOOK_TLB_FILL"}
_INSN_HOOKS = {X.UC_X86_INS_IN, X.UC_X86_INS_OUT, X.UC_X86_INS_SYSCALL, X.UC_X86_INS_SYSENTER,
               X.UC_X86_INS_CPUID, X.UC_X86_INS_RDTSC}
_PERM_BITS = ((U.UC_PROT_READ, "r"), (U.UC_PROT_WRITE, "w"), (U.UC_PROT_EXEC, "x"))


def _int_arg(what: str, value: object) -> int:
    """An integer argument as Unicorn's C API takes it (a uint64: negative values wrap)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise UcError(U.UC_ERR_ARG, detail=f"{what} must be an int, got {value!r}")
    return value & MASK64


def _perms(what: str, perms: object) -> str:
    """The perms as page-table letters; bits outside UC_PROT_ALL fail as the binding's assertion does."""
    bits = _int_arg(f"{what}: perms", perms)
    if bits & ~U.UC_PROT_ALL:
        raise AssertionError("unexpected perms bitmask")  # unicorn's binding: `assert`, before calling Unicorn
    return "".join(letter for bit, letter in _PERM_BITS if bits & bit)


def _perm_bits(perms: str) -> int:
    return sum(bit for bit, letter in _PERM_BITS if letter in perms)


class _MachineRegisters(Registers):
    def __init__(self, machine: Machine) -> None:
        self._machine = machine

    def read(self, name: str) -> int:
        return self._machine.reg_read(name)

    def write(self, name: str, value: int) -> None:
        self._machine.reg_write(name, value)


class Uc(UcControl):
    """An x86-64 emulator with Unicorn's API (``Uc(UC_ARCH_X86, UC_MODE_64)``); see the module docstring."""

    def __init__(self, arch: int, mode: int, cpu: int | None = None) -> None:
        if not isinstance(arch, int) or not U.UC_ARCH_ARM <= arch < U.UC_ARCH_MAX:
            raise KeyError(arch)  # unicorn's binding: the lookup of the architecture's class fails
        if arch != U.UC_ARCH_X86:
            raise UcError(U.UC_ERR_ARCH, detail=f"architecture {arch!r}: tcg2wasm emulates x86 (UC_ARCH_X86) only")
        if mode != U.UC_MODE_64:
            raise UcError(U.UC_ERR_MODE, detail=f"mode {mode!r}: tcg2wasm emulates 64-bit x86 (UC_MODE_64) only")
        self._arch, self._mode = arch, mode
        self._machine = Machine(engine="wasm", cold_tier="interp", hot_threshold=HOT_THRESHOLD)
        self._regs = _MachineRegisters(self._machine)
        self._hookset = HookSet(self)
        self._machine.set_hooks(self._hookset)
        self._runner = Runner(self)
        for name in ("mxcsr", "fpcw"):  # Unicorn starts with both at 0 (the Machine with Linux's values)
            self._machine.reg_write(name, 0)
        self._regions = RegionList()
        self._ptr_maps: dict[int, tuple[int, int]] = {}  # guest address -> (size, host pointer): mem_map_ptr
        self._running = False
        self._timeout = 0
        self._errno = U.UC_ERR_OK
        self._insn_base = 0
        self._cpuid_cache: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self.stop_requested = False
        self.rip_written = False  # set by a write of rip (a callback's redirect)
        self._hook_exception: BaseException | None = None
        if cpu is not None:
            self.ctl_set_cpu_model(cpu)

    # -- small things ----------------------------------------------------------------------------
    @property
    def errno(self) -> int:
        """The error number of the last failed call (UC_ERR_*)."""
        return self._errno

    @property
    def insn_count(self) -> int:
        """Guest instructions executed since the Uc was made (or the count was set to 0), as ``count`` counts them."""
        return self._machine.stats.guest_insns - self._insn_base

    @insn_count.setter
    def insn_count(self, value: int) -> None:
        if value != 0:
            raise UcError(U.UC_ERR_ARG, detail="insn_count can only be reset to 0")
        self._insn_base = self._machine.stats.guest_insns

    @property
    def machine(self) -> Machine:
        """The tcg2wasm Machine underneath (its ``stats`` say what was translated and how often it left wasm)."""
        return self._machine

    def call_back(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a hook callback as Unicorn's binding does: an exception stops the run and is raised by emu_start."""
        try:
            return fn(self, *args)
        except BaseException as e:  # noqa: BLE001 - as the binding: anything a callback raises ends the run
            if self._hook_exception is None:
                self._hook_exception = e
            self.stop_requested = True
            return None

    def get_rip(self) -> int:
        return self._machine.reg_read("rip")

    def set_rip(self, value: int) -> None:
        """Move rip without it counting as a callback's redirect."""
        self._machine.reg_write("rip", value & MASK64)

    def page_perms(self, addr: int) -> int:
        page = self._machine.memory.page(addr)
        return 0 if page is None else _perm_bits(format_perms(page.perms))

    # -- memory ----------------------------------------------------------------------------------
    def _check_range(self, what: str, address: object, size: object) -> tuple[int, int]:
        addr, length = _int_arg(f"{what}: address", address), _int_arg(f"{what}: size", size)
        if length == 0 or addr % PAGE_SIZE or length % PAGE_SIZE:
            raise UcError(U.UC_ERR_ARG, detail=f"{what}: address {addr:#x} and size {length:#x} must be "
                                               "page-aligned (0x1000) and the size nonzero")
        if addr + length > 1 << 64:
            raise UcError(U.UC_ERR_ARG, detail=f"{what}: {addr:#x}+{length:#x} wraps around the address space")
        return addr, length

    def _pages(self, addr: int, size: int) -> range:
        return range(addr >> PAGE_BITS, (addr + size) >> PAGE_BITS)

    def mem_map(self, address: int, size: int, perms: int = U.UC_PROT_ALL) -> None:
        letters = _perms("mem_map", perms)
        addr, length = self._check_range("mem_map", address, size)
        memory = self._machine.memory
        for page in self._pages(addr, length):
            if memory.is_mapped(page << PAGE_BITS):
                raise UcError(U.UC_ERR_MAP, detail=f"mem_map: {addr:#x}+{length:#x} overlaps the mapping at "
                                                   f"{page << PAGE_BITS:#x}")
        try:
            self._machine.mem_map(addr, length, letters)
        except GuestMemoryError as e:
            raise UcError(U.UC_ERR_NOMEM, detail=f"mem_map: {e}") from None
        self._regions.add(addr, length, _perm_bits(letters))

    def mem_map_ptr(self, address: int, size: int, perms: int, ptr: int) -> None:
        """Map memory whose contents live at host address ``ptr`` (copied in and out around each emu_start)."""
        host = _int_arg("mem_map_ptr: ptr", ptr)
        if host == 0:
            raise UcError(U.UC_ERR_ARG, detail="mem_map_ptr: ptr is NULL")
        self.mem_map(address, size, perms)
        self._ptr_maps[address & MASK64] = (size, host)
        self._sync_from_host()

    def mmio_map(self, address: int, size: int, read_cb: Callable[..., int] | None, read_ud: Any,
                 write_cb: Callable[..., None] | None, write_ud: Any) -> None:
        """Map a range whose reads and writes are the callbacks ``read_cb(uc, offset, size, ud)`` / ``write_cb``."""
        addr, length = self._check_range("mmio_map", address, size)
        self.mem_map(addr, length, U.UC_PROT_READ | U.UC_PROT_WRITE)
        self._hookset.add(Hook(MMIO, lambda *a: None, None, addr, addr + length - 1,
                               mmio=(read_cb, read_ud, write_cb, write_ud)))

    def _checked_pages(self, what: str, addr: int, size: int) -> None:
        memory = self._machine.memory
        for page in self._pages(addr, size):
            if not memory.is_mapped(page << PAGE_BITS):
                raise UcError(U.UC_ERR_NOMEM, detail=f"{what}: {page << PAGE_BITS:#x} is not mapped")

    def mem_unmap(self, address: int, size: int) -> None:
        addr, length = self._check_range("mem_unmap", address, size)
        self._checked_pages("mem_unmap", addr, length)
        self._sync_to_host()
        self._machine.mem_unmap(addr, length)
        self._regions.remove(addr, length)
        for start in [a for a, (n, _) in self._ptr_maps.items() if a < addr + length and addr < a + n]:
            del self._ptr_maps[start]
        for handle, hook in list(self._hookset.handles.items()):
            if hook.types & MMIO and hook.begin < addr + length and addr <= hook.end:
                self._hookset.delete(handle)

    def mem_protect(self, address: int, size: int, perms: int = U.UC_PROT_ALL) -> None:
        letters = _perms("mem_protect", perms)
        addr, length = self._check_range("mem_protect", address, size)
        self._checked_pages("mem_protect", addr, length)
        self._machine.mem_protect(addr, length, letters)
        self._regions.protect(addr, length, _perm_bits(letters))

    def mem_read(self, address: int, size: int) -> bytearray:
        addr, length = _int_arg("mem_read: address", address), _int_arg("mem_read: size", size)
        if length == 0:
            return bytearray()
        self._sync_from_host()
        try:
            return bytearray(self._machine.mem_read(addr, length))
        except GuestMemoryError as e:
            raise UcError(U.UC_ERR_READ_UNMAPPED, address, size, detail=str(e)) from None

    def mem_write(self, address: int, data: bytes) -> None:
        addr = _int_arg("mem_write: address", address)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UcError(U.UC_ERR_ARG, detail=f"mem_write: data must be bytes, got {type(data).__name__}")
        self._sync_from_host()
        try:
            self._machine.mem_write(addr, bytes(data))
        except GuestMemoryError as e:
            raise UcError(U.UC_ERR_WRITE_UNMAPPED, address, len(data), detail=str(e)) from None
        self._sync_to_host()

    def mem_regions(self) -> Iterator[tuple[int, int, int]]:
        """(begin, end inclusive, UC_PROT_* bits) of each region, as Unicorn lists them (regions.py)."""
        yield from self._regions

    def _sync_from_host(self) -> None:
        """mem_map_ptr ranges: outside emu_start the host's bytes are the truth."""
        if self._running:
            return
        for addr, (size, ptr) in self._ptr_maps.items():
            self._machine.memory.write(addr, ctypes.string_at(ptr, size))

    def _sync_to_host(self) -> None:
        if self._running:
            return
        for addr, (size, ptr) in self._ptr_maps.items():
            ctypes.memmove(ptr, self._machine.memory.read(addr, size), size)

    # -- registers -------------------------------------------------------------------------------
    def reg_read(self, reg_id: int, aux: Any = None) -> Any:
        if reg_id == X.UC_X86_REG_MSR:
            return self.msr_read(aux)
        return register_access(reg_id).read(self._regs)

    def reg_write(self, reg_id: int, value: Any) -> None:
        if reg_id == X.UC_X86_REG_MSR:
            if not isinstance(value, tuple) or len(value) != 2:
                raise UcError(U.UC_ERR_ARG, detail="reg_write(UC_X86_REG_MSR, value): value is (msr id, value)")
            self.msr_write(*value)
            return
        access = register_access(reg_id)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UcError(U.UC_ERR_ARG, detail=f"reg_write({access.name}): the value must be an int, got {value!r}")
        access.write(self._regs, value % (1 << 128))  # cut to the register's width, as Unicorn does
        if reg_id in RIP_IDS:
            self.rip_written = True

    def reg_read_batch(self, reg_ids: Sequence[int]) -> tuple[Any, ...]:
        return tuple(self.reg_read(*r) if isinstance(r, tuple) else self.reg_read(r) for r in reg_ids)

    def reg_write_batch(self, pairs: Sequence[tuple[int, Any]]) -> None:
        for reg_id, value in pairs:
            self.reg_write(reg_id, value)

    def msr_read(self, msr_id: int) -> int:
        msr = _int_arg("msr_read: msr id", msr_id)
        if msr == MSR_EFER:
            return EFER_64BIT
        name = {MSR_FS_BASE: "fs_base", MSR_GS_BASE: "gs_base"}.get(msr)
        if name is None:
            raise UcError(U.UC_ERR_ARG, detail=f"MSR {msr:#x} is not modelled (fs/gs base and EFER are)")
        return self._machine.reg_read(name)

    def msr_write(self, msr_id: int, value: int) -> None:
        msr, v = _int_arg("msr_write: msr id", msr_id), _int_arg("msr_write: value", value)
        name = {MSR_FS_BASE: "fs_base", MSR_GS_BASE: "gs_base"}.get(msr)
        if name is None and not (msr == MSR_EFER and v == EFER_64BIT):
            raise UcError(U.UC_ERR_ARG, detail=f"msr_write: MSR {msr:#x} is not writable here (fs/gs base are)")
        if name is not None:
            self._machine.reg_write(name, v)

    # -- running ---------------------------------------------------------------------------------
    def emu_start(self, begin: int, until: int, timeout: int = 0, count: int = 0) -> None:
        """Run from ``begin`` until ``until``, ``timeout`` µs or ``count`` instructions (0: no limit)."""
        args = [_int_arg(f"emu_start: {n}", v) for n, v in
                (("begin", begin), ("until", until), ("timeout", timeout), ("count", count))]
        if self._running:
            raise UcError(U.UC_ERR_ARG, detail="emu_start from inside a hook callback is not supported")
        self._hook_exception = None
        self.stop_requested = False
        self._timeout = args[2]
        self._sync_from_host()
        self._running = True
        try:
            error = self._runner.run(*args)
        finally:
            self._running = False
            self._sync_to_host()
        if error is not None:
            self._errno = error.errno
            raise error
        if self._hook_exception is not None:
            raise self._hook_exception

    def emu_stop(self) -> None:
        """Stop the run this is called from (a hook callback); outside emu_start it does nothing."""
        if self._running:
            self.stop_requested = True

    # -- hooks -----------------------------------------------------------------------------------
    def hook_add(self, htype: int, callback: Callable[..., Any], user_data: Any = None, begin: int = 1,
                 end: int = 0, aux1: int = 0, aux2: int = 0) -> int:
        """Add a hook (Unicorn's signature); returns its handle for ``hook_del``."""
        types = _int_arg("hook_add: type", htype)
        if not callable(callback):
            raise UcError(U.UC_ERR_ARG, detail=f"hook_add: callback {callback!r} is not callable")
        _check_hook_types(types)
        insn = 0
        if types == U.UC_HOOK_INSN:
            insn = aux1
            if insn not in _INSN_HOOKS:
                raise UcError(U.UC_ERR_ARG, detail=f"hook_add(UC_HOOK_INSN): instruction {aux1!r} cannot be hooked "
                                                   "(in, out, syscall, sysenter, cpuid, rdtsc can)")
        hook = Hook(types, callback, user_data, _int_arg("hook_add: begin", begin), _int_arg("hook_add: end", end),
                    insn)
        return self._hookset.add(hook)

    def hook_del(self, handle: int) -> None:
        if handle not in self._hookset.handles or self._hookset.handles[handle].types & MMIO:
            raise hook_handle_error(handle)
        self._hookset.delete(handle)

    # -- contexts --------------------------------------------------------------------------------
    def context_save(self) -> UcContext:
        return UcContext(self._machine.regs(REGISTERS), self._arch, self._mode)

    def context_update(self, context: UcContext) -> None:
        _check_context(context)
        context.__setstate__((self._machine.regs(REGISTERS), self._arch, self._mode))

    def context_restore(self, context: UcContext) -> None:
        _check_context(context)
        old_rip = self.get_rip()
        for name, value in context.values.items():
            self._machine.reg_write(name, value)
        if self.get_rip() != old_rip:
            self.rip_written = True

    # -- cpuid as Unicorn answers it -------------------------------------------------------------------
    def unicorn_cpuid(self) -> None:
        """Answer the cpuid at rip with Unicorn's CPU model (its values for eax/ecx), cached per leaf."""
        leaf = self._machine.reg_read("eax")
        subleaf = self._machine.reg_read("ecx")
        values = self._cpuid_cache.get((leaf, subleaf))
        if values is None:
            values = self._cpuid_cache[(leaf, subleaf)] = _unicorn_cpuid(leaf, subleaf)
        for name, value in zip(("rax", "rbx", "rcx", "rdx"), values, strict=True):
            self._machine.reg_write(name, value)


def _check_hook_types(types: int) -> None:
    for bit, name in _UNSUPPORTED_HOOKS.items():
        if types & bit:
            raise UcError(U.UC_ERR_ARG, detail=f"hook_add: {name} is not supported by tcg2wasm")
    if types == 0 or not any(types & ~group == 0 for group in _HOOK_GROUPS):
        raise UcError(U.UC_ERR_ARG, detail=f"hook_add: type {types:#x} is not one hook type or a combination of "
                                           "types sharing one callback signature")


def _check_context(context: object) -> None:
    if not isinstance(context, UcContext):
        raise UcError(U.UC_ERR_ARG, detail=f"expected a UcContext from context_save, got {type(context).__name__}")


def _unicorn_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """Unicorn's own answer to cpuid(leaf, subleaf) (one instruction in a private Unicorn).

    Without Unicorn installed, the answer of tcg2wasm's own CPU model (runtime/cpuid.py).
    """
    try:
        from tcg2wasm.ucadapter import cpuid_of_unicorn
    except ImportError:
        from tcg2wasm.runtime.cpuid import cpuid

        return cpuid(leaf, subleaf)
    return cpuid_of_unicorn(leaf, subleaf)
