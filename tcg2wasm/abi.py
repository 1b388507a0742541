"""The runtime ABI shared by the front end, the backend and the runtime.

Linear memory layout (one wasm memory, imported by every module as
``env.memory``; one funcref table imported as ``env.table``)::

    0x0000 .. 0x0FFF   unused (null page)
    STATE_BASE         CPU state block: one little-endian i64 per field (STATE_FIELDS)
    JC_BASE            jump cache: JC_ENTRIES x 16 bytes {pc: i64, table_index: i32, pad}
    TLB_BASE           soft TLB: TLB_ENTRIES x 32 bytes {tag_read, tag_write, tag_exec, addend}
    GUEST_BASE ..      guest pages (host copies of guest memory), bump-allocated

A TLB tag is the guest page address (low 12 bits clear) or TLB_INVALID.
host address = guest address + addend.

Guest registers and flags are IR *globals*: they live in the state block
between regions and in wasm locals inside one. Each flag is stored as 0 or 1.
"""

from __future__ import annotations

GPR_NAMES: tuple[str, ...] = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)
FLAG_NAMES: tuple[str, ...] = ("cf", "pf", "af", "zf", "sf", "of", "df")
FLAG_BITS: dict[str, int] = {"cf": 0, "pf": 2, "af": 4, "zf": 6, "sf": 7, "df": 10, "of": 11}
SEG_BASE_NAMES: tuple[str, ...] = ("fs_base", "gs_base")
#: The 16 xmm registers, each as two i64 halves (the IR has 64-bit values only).
XMM_NAMES: tuple[str, ...] = tuple(f"xmm{i}" for i in range(16))
XMM_HALF_NAMES: tuple[str, ...] = tuple(f"{x}_{half}" for x in XMM_NAMES for half in ("lo", "hi"))
MXCSR_DEFAULT = 0x1F80  # all exceptions masked, round to nearest: what Linux starts a process with
#: x87 FPU control word as Linux starts a process: exceptions masked, 64-bit precision, round to nearest.
FPCW_DEFAULT = 0x037F
#: Control-word bits fldcw keeps (IM..PM, PC, RC, X); of the reserved ones bit 6 reads as 1 and
#: bits 7, 13-15 as 0 on the CPU (Unicorn keeps all 16 bits as loaded: docs/sse.md, "x87").
FPCW_KEPT = 0x1F3F
FPCW_ONES = 0x0040


def fpcw_as_loaded(value: int) -> int:
    """The control word the CPU holds after loading ``value`` (what fnstcw then stores)."""
    return (value & FPCW_KEPT) | FPCW_ONES


#: IR globals in index order: the guest state that translated code reads and writes.
GLOBAL_NAMES: tuple[str, ...] = GPR_NAMES + FLAG_NAMES + SEG_BASE_NAMES + XMM_HALF_NAMES + ("mxcsr", "fpcw")
GLOBAL_INDEX: dict[str, int] = {name: i for i, name in enumerate(GLOBAL_NAMES)}

#: State block fields (i64 each) in order. The first len(GLOBAL_NAMES) are the IR globals.
STATE_FIELDS: tuple[str, ...] = GLOBAL_NAMES + (
    "rip",
    "rflags_rest",  # rflags bits other than the seven flags above (bit 1 always set)
    "exit_code",  # last Exit code (informational)
    "fault_kind",  # Excp kind, or interrupt vector for Exit.INT
    "fault_addr",  # faulting data address (memory faults)
    "icount_left",  # guest instructions the translated code may still execute
    "stop_pc",  # the dispatcher returns Exit.STOP when rip reaches it (~0 = none)
    "exit_pending",  # set by host helpers: leave at the next check
    "scratch",  # second result of host helpers (remainder of env.div128)
)
STATE_BASE = 0x1000
STATE_OFFSET: dict[str, int] = {name: STATE_BASE + 8 * i for i, name in enumerate(STATE_FIELDS)}
STATE_SIZE = 8 * len(STATE_FIELDS)

JC_BASE = 0x2000
JC_ENTRIES = 1 << 16  # power of two; 1 MiB. 4096 let two hot return points of busybox awk evict each other every line
JC_ENTRY_SIZE = 16
JC_INVALID_PC = 0xFFFF_FFFF_FFFF_FFFF  # never a block start the cache can hold (odd and ~0)

TLB_BASE = JC_BASE + JC_ENTRIES * JC_ENTRY_SIZE
TLB_ENTRIES = 1024  # power of two
TLB_ENTRY_SIZE = 32
TLB_TAG_READ = 0
TLB_TAG_WRITE = 8
TLB_TAG_EXEC = 16
TLB_ADDEND = 24
TLB_INVALID = 1  # a tag no page-aligned address equals

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
PAGE_MASK = ~(PAGE_SIZE - 1) & 0xFFFF_FFFF_FFFF_FFFF

GUEST_BASE = ((TLB_BASE + TLB_ENTRIES * TLB_ENTRY_SIZE + 0xFFFF) // 0x10000) * 0x10000

WASM_PAGE = 0x10000
MAX_WASM_PAGES = 65536  # 4 GiB linear memory


def jc_index(pc: int) -> int:
    """Jump-cache slot for a guest pc; the dispatcher computes the same hash in wasm."""
    return ((pc ^ (pc >> 12)) & (JC_ENTRIES - 1))


def tlb_index(addr: int) -> int:
    """Soft-TLB slot of a guest address; translated code computes the same in wasm."""
    return (addr >> PAGE_BITS) & (TLB_ENTRIES - 1)


RFLAGS_FIXED = 0x2  # bit 1 of rflags always reads as one


# -- wasm imports every region module declares (module "env") -----------------
IMPORT_MODULE = "env"
IMPORT_MEMORY = "memory"  # the one linear memory: min 1 page, max MAX_WASM_PAGES
IMPORT_TABLE = "table"  # the one funcref table; region functions are placed in it by the runtime
#: Host helpers, name -> (params, results) as wasm value types.
#: ld_slow(addr, memop) -> value: TLB miss / page-crossing load. On a fault it sets
#:   state.fault_kind, state.fault_addr and state.exit_pending = 1 and returns 0.
#: st_slow(addr, value, memop): the same for stores (also where writes to pages holding
#:   translated code are caught, which invalidates those translations).
#: div128(nl, nh, d, is_signed) -> quotient of (nh:nl) / d; remainder in state.scratch.
#:   Called only when the dividend does not fit 64 bits; the caller checked d != 0 and
#:   that the quotient fits.
HOST_IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ld_slow": (("i64", "i32"), ("i64",)),
    "st_slow": (("i64", "i64", "i32"), ()),
    "div128": (("i64", "i64", "i64", "i32"), ("i64",)),
}
#: Every region module exports one function of type () -> i32 under this name. It loads the
#: globals it uses from the state block, runs, stores them back, sets state.rip (and
#: state.icount_left), and returns an Exit code (Exit.CONTINUE: go on at state.rip).
REGION_EXPORT = "region"
