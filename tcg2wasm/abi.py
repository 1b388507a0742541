"""The runtime ABI shared by the front end, the backend and the runtime.

Linear memory layout (one wasm memory, imported by every module as
``env.memory``; one funcref table imported as ``env.table``)::

    0x0000 .. 0x0FFF   unused (null page)
    STATE_BASE         CPU state block: one little-endian i64 per field (STATE_FIELDS)
    JC_BASE            jump cache: JC_ENTRIES x 16 bytes {pc: i64, table_index: i32, pad}
    TLB_BASE           soft TLB: TLB_ENTRIES x 32 bytes {tag_read, tag_write, tag_exec, addend}
    PT_L1_BASE         first level of the guest page table (4096 x u32)
    GUEST_BASE ..      guest pages (host copies of guest memory) and page-table levels 2 and 3

A TLB tag is the guest page address (low 12 bits clear) or TLB_INVALID.
host address = guest address + addend.

Guest registers and flags are IR *globals*: they live in the state block
between regions and in wasm locals inside one. Each flag is stored as 0 or 1.
"""

from __future__ import annotations

from enum import IntEnum

from tcg2wasm.cpu_state import (  # noqa: F401  the guest state the ABI lays out, re-exported
    FLAG_BITS,
    FLAG_NAMES,
    FPCW_DEFAULT,
    FPCW_KEPT,
    FPCW_ONES,
    GLOBAL_INDEX,
    GLOBAL_NAMES,
    GPR_NAMES,
    MASK64,
    MXCSR_DEFAULT,
    RFLAGS_FIXED,
    SEG_BASE_NAMES,
    XMM_HALF_NAMES,
    XMM_NAMES,
    fpcw_as_loaded,
)


class Exit(IntEnum):
    """Why translated code hands control back (``exit_tb`` codes, also region return values)."""

    CONTINUE = 0  # next pc is in state.rip; the dispatcher goes on
    FAULT = 1  # memory or CPU exception; kind/address in the state block
    SYSCALL = 2  # guest executed syscall; rip is the next instruction
    FALLBACK = 3  # instruction not lifted; rip is that instruction
    HLT = 4
    ICOUNT = 5  # instruction budget exhausted at a block start; rip is that block
    MISS = 6  # dispatcher: no translation for state.rip
    STOP = 7  # dispatcher: state.rip reached the stop address
    CPUID = 8  # host computes cpuid; rip is the next instruction
    RDTSC = 9  # host computes rdtsc; rip is the next instruction
    INT = 10  # int n / int3; exception number in state.fault_kind
    TRAP = 11  # a trap Unicorn reported after the instruction (int n, int3): rip is past it
    HOOK = 12  # rip is a hooked pc reached in the middle of a block: the host runs its hooks (runtime/hooks.py)


class Excp(IntEnum):
    """Exception kinds stored in state.fault_kind on ``Exit.FAULT``."""

    NONE = 0
    READ_UNMAPPED = 1
    WRITE_UNMAPPED = 2
    FETCH_UNMAPPED = 3
    READ_PROT = 4
    WRITE_PROT = 5
    FETCH_PROT = 6
    DIVIDE = 7  # #DE
    INVALID_OPCODE = 8  # #UD (undecodable bytes)
    GP = 9  # #GP
    X87_FPE = 10  # #MF: an x87 instruction found an unmasked exception pending (status word ES); SIGFPE
    SIMD_FPE = 11  # #XM: an SSE instruction raised an unmasked MXCSR exception; SIGFPE
    WATCH = 12  # an access inside a memory hook's range: the host redoes the instruction with the hooks (not a fault)


#: State fields env.x87 returns an op's second, third... outputs in.
X87_OUTPUTS: tuple[str, ...] = ("x87_out1", "x87_out2", "x87_out3", "x87_out4")

#: State block fields (i64 each) in order. The first len(GLOBAL_NAMES) are the IR globals.
STATE_FIELDS: tuple[str, ...] = GLOBAL_NAMES + (
    "rip",
    "rflags_rest",  # rflags bits other than the seven flags above (bit 1 always set)
    "exit_code",  # last Exit code (informational)
    "fault_kind",  # Excp kind, or interrupt vector for Exit.INT
    "fault_addr",  # faulting data address (memory faults)
    "icount_left",  # guest instructions the translated code may still execute
    "stop_pc",  # the dispatcher returns Exit.STOP when rip reaches it (none: runtime/stops.py NO_STOP)
    "exit_pending",  # set by host helpers: leave at the next check
    "scratch",  # second result of host helpers (remainder of env.div128)
    *X87_OUTPUTS,  # the further results of env.x87
)
STATE_BASE = 0x1000
STATE_OFFSET: dict[str, int] = {name: STATE_BASE + 8 * i for i, name in enumerate(STATE_FIELDS)}
STATE_SIZE = 8 * len(STATE_FIELDS)

JC_BASE = 0x2000
JC_ENTRIES = 1 << 16  # power of two; 1 MiB. 4096 let two hot return points of busybox awk evict each other every line
JC_ENTRY_SIZE = 16
JC_INVALID_PC = 0xFFFF_FFFF_FFFF_FFFF  # an empty entry's tag, with table slot 0: a block may start there (a miss)

TLB_BASE = JC_BASE + JC_ENTRIES * JC_ENTRY_SIZE
TLB_ENTRIES = 4096  # power of two; 16 MiB of reach (a miss is refilled in wasm from the page table)
TLB_ENTRY_SIZE = 32
TLB_TAG_READ = 0
TLB_TAG_WRITE = 8
TLB_TAG_EXEC = 16
TLB_ADDEND = 24
TLB_INVALID = 1  # a tag no page-aligned address equals

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
PAGE_MASK = ~(PAGE_SIZE - 1) & 0xFFFF_FFFF_FFFF_FFFF

#: The guest page table, walked in wasm on a TLB miss (``runtime/memory.py`` keeps it). Guest page
#: numbers below 2**PT_PAGE_BITS (addresses below 2**48) are in it; an access above takes Python's path.
#: Three levels of 4096 little-endian u32: PT_L1 (fixed, here) -> L2 tables -> leaves, the tables
#: allocated among the guest pages; an entry is a table's linear offset, or 0. A leaf entry is
#: ``host page offset | PT_* flags``, 0 for an unmapped page.
PT_L1_BASE = TLB_BASE + TLB_ENTRIES * TLB_ENTRY_SIZE
PT_LEVEL_BITS = 12
PT_LEVEL_ENTRIES = 1 << PT_LEVEL_BITS
PT_TABLE_SIZE = 4 * PT_LEVEL_ENTRIES
PT_PAGE_BITS = 3 * PT_LEVEL_BITS
PT_READ, PT_WRITE, PT_EXEC = 1, 2, 4  # the page's permissions
PT_SLOW_WRITE = 8  # stores must reach Python: the page holds translated code (or is watched)
PT_SLOW_READ = 16  # loads must reach Python (a watched page)

GUEST_BASE = ((PT_L1_BASE + PT_TABLE_SIZE + 0xFFFF) // 0x10000) * 0x10000

WASM_PAGE = 0x10000
MAX_WASM_PAGES = 65536  # 4 GiB linear memory


def jc_index(pc: int) -> int:
    """Jump-cache slot for a guest pc; the dispatcher computes the same hash in wasm."""
    return ((pc ^ (pc >> 12)) & (JC_ENTRIES - 1))


def tlb_index(addr: int) -> int:
    """Soft-TLB slot of a guest address; translated code computes the same in wasm."""
    return (addr >> PAGE_BITS) & (TLB_ENTRIES - 1)


def pt_indexes(page: int) -> tuple[int, int, int]:
    """(L1, L2, leaf) indexes of a guest page number below 2**PT_PAGE_BITS in the page table."""
    mask = PT_LEVEL_ENTRIES - 1
    return (page >> (2 * PT_LEVEL_BITS)) & mask, (page >> PT_LEVEL_BITS) & mask, page & mask


# -- wasm imports every region module declares (module "env") -----------------
IMPORT_MODULE = "env"
IMPORT_MEMORY = "memory"  # the one linear memory: min 1 page, max MAX_WASM_PAGES
IMPORT_TABLE = "table"  # the one funcref table; region functions are placed in it by the runtime
Signature = tuple[tuple[str, ...], tuple[str, ...]]  # (params, results) as wasm value types
#: The functions every region module imports, name -> signature.
#: ld_miss(addr, memop) -> value: a load that missed the inline TLB check (a TLB miss or a
#:   page-crossing access). Refills the TLB from the page table and loads, in wasm; only a fault,
#:   a watched page or an address beyond the page table goes on to the host's ld_slow. On a fault
#:   state.fault_kind, state.fault_addr and state.exit_pending = 1 are set and 0 is returned.
#: st_miss(addr, value, memop): the same for stores (writes to pages holding translated code go
#:   on to st_slow, which reports them so those translations are invalidated).
#: x87(op code, args...) -> the first output of x87 op ``code`` (``ir.ops_x87.HOST_CODE``) on its
#:   inputs and constants (zero-padded); the other outputs in state.x87_out1... (never faults).
#:   A host (Python) function.
#: div128(nl, nh, d, is_signed) -> quotient of (nh:nl) / d; remainder in state.scratch.
#:   Called only when the dividend does not fit 64 bits; the caller checked d != 0 and
#:   that the quotient fits. A host (Python) function.
REGION_IMPORTS: dict[str, Signature] = {
    "ld_miss": (("i64", "i32"), ("i64",)),
    "st_miss": (("i64", "i64", "i32"), ()),
    "div128": (("i64", "i64", "i64", "i32"), ("i64",)),
    "x87": (("i32", "i64", "i64", "i64", "i64", "i64", "i64", "i64"), ("i64",)),
}
#: The host (Python) functions: ld_slow and st_slow (what ld_miss/st_miss fall back to, same
#: contract), div128 and x87.
HOST_IMPORTS: dict[str, Signature] = {
    "ld_slow": REGION_IMPORTS["ld_miss"],
    "st_slow": REGION_IMPORTS["st_miss"],
    "div128": REGION_IMPORTS["div128"],
    "x87": REGION_IMPORTS["x87"],
}
#: Every region module exports one function of type () -> i32 under this name. It loads the
#: globals it uses from the state block, runs, stores them back, sets state.rip (and
#: state.icount_left), and returns an Exit code (Exit.CONTINUE: go on at state.rip).
REGION_EXPORT = "region"
