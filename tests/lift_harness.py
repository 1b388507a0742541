"""Differential harness for lifted instructions: the same snippet and state in Unicorn and in our engines.

A snippet runs from CODE_ADDR until it falls off its end (or faults) with a
data area at DATA_ADDR and a stack at STACK_ADDR. Registers, defined flags and
the data/stack areas must match Unicorn; flags iced-x86 reports as undefined
for any instruction of the snippet are masked. The x87 control word ``fpcw`` is
initialised (``regs["fpcw"]``, else 0x037F as Linux starts a process) and
compared too: the Unicorn and the Machine of a snippet are reused across
examples, and without this one example's fldcw would leak into the next.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import iced_x86 as ix
import unicorn as uc
from hypothesis import strategies as st

from tcg2wasm import Machine
from tcg2wasm.abi import FLAG_BITS, FPCW_DEFAULT, GPR_NAMES
from tcg2wasm.errors import GuestFault
from tcg2wasm.ir import Excp, Exit
from tcg2wasm.ir.interp import run_tb
from tcg2wasm.ucadapter import REG_IDS, fault_of_error, new_uc

CODE_ADDR = 0x10000
DATA_ADDR = 0x20000
DATA_SIZE = 0x2000
STACK_ADDR = 0x30000
STACK_SIZE = 0x2000
STACK_TOP = STACK_ADDR + 0x1000
MAX_INSNS = 100_000
#: Random states per instruction form. `make test-diff` (and plain pytest) use the full 200 that the
#: acceptance asks for; `make test` lowers it through TCG2WASM_EXAMPLES to stay within its time budget.
EXAMPLES = int(os.environ.get("TCG2WASM_EXAMPLES", "200"))

ARITH_FLAGS = sum(1 << FLAG_BITS[f] for f in ("cf", "pf", "af", "zf", "sf", "of"))
_ICED_TO_RFLAGS = {
    ix.RflagsBits.OF: 0x800, ix.RflagsBits.SF: 0x80, ix.RflagsBits.ZF: 0x40, ix.RflagsBits.AF: 0x10,
    ix.RflagsBits.CF: 0x1, ix.RflagsBits.PF: 0x4, ix.RflagsBits.DF: 0x400,
}
_UC_REG = {name: REG_IDS[name] for name in GPR_NAMES}


@dataclass
class Outcome:
    regs: dict[str, int]  # 16 GPRs, rip, rflags, fpcw
    memory: dict[int, bytes]  # data and stack areas
    stop: str  # "end" or a fault kind name
    stop_pc: int
    extra: dict = field(default_factory=dict)


def undefined_flags_mask(code: bytes, addr: int = CODE_ADDR) -> int:
    """rflags bits that some instruction of ``code`` leaves undefined."""
    mask = 0
    for ins in ix.Decoder(64, code, ip=addr):
        for iced_bit, bit in _ICED_TO_RFLAGS.items():
            if ins.rflags_undefined & iced_bit:
                mask |= bit
    return mask


@st.composite
def values64(draw: st.DrawFn) -> int:
    """64-bit values biased toward the edges where flags change."""
    return draw(st.one_of(
        st.integers(0, 2**64 - 1),
        st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                         0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 2**64 - 1, 2**64 - 2]),
        st.integers(0, 0x1FF),
    ))


@st.composite
def states(draw: st.DrawFn, pointers: dict[str, int] | None = None) -> dict[str, int]:
    """A random register state: GPRs, arithmetic flags and DF; rsp points into the stack.

    ``pointers`` maps registers to base addresses; each gets base + a small random offset.
    """
    regs = {name: draw(values64()) for name in GPR_NAMES}
    regs["rsp"] = STACK_TOP - 8 * draw(st.integers(0, 16))
    for name, base in (pointers or {}).items():
        regs[name] = base + draw(st.integers(0, 0x100))
    flags = draw(st.integers(0, 2**12 - 1)) & (ARITH_FLAGS | 0x400)
    regs["rflags"] = flags | 0x202
    return regs


def _image(data: bytes) -> dict[int, bytearray]:
    return {DATA_ADDR: bytearray(data.ljust(DATA_SIZE, b"\0")), STACK_ADDR: bytearray(STACK_SIZE)}


@functools.lru_cache(maxsize=4)
def _unicorn_for(code: bytes) -> uc.Uc:
    """One Unicorn per snippet, reused across examples (creating one costs more than running it)."""
    mu = new_uc()
    mu.mem_map(CODE_ADDR, 0x1000, uc.UC_PROT_READ | uc.UC_PROT_EXEC)
    mu.mem_write(CODE_ADDR, code)
    for addr, buf in _image(b"").items():
        mu.mem_map(addr, len(buf), uc.UC_PROT_READ | uc.UC_PROT_WRITE)
    return mu


def run_unicorn(code: bytes, regs: dict[str, int], data: bytes = b"") -> Outcome:
    mu = _unicorn_for(code)
    for addr, buf in _image(data).items():
        mu.mem_write(addr, bytes(buf))
    for name, r in _UC_REG.items():
        mu.reg_write(r, regs.get(name, 0))
    mu.reg_write(REG_IDS["fs_base"], regs.get("fs_base", 0))
    mu.reg_write(REG_IDS["gs_base"], regs.get("gs_base", 0))
    mu.reg_write(REG_IDS["rflags"], regs.get("rflags", 0x202))
    mu.reg_write(REG_IDS["fpcw"], regs.get("fpcw", FPCW_DEFAULT))
    stop = {"kind": "end"}

    def on_interrupt(mu_: uc.Uc, intno: int, _user: object) -> None:
        stop["kind"] = {0: Excp.DIVIDE.name}.get(intno, f"INT{intno}")
        mu_.emu_stop()

    hook = mu.hook_add(uc.UC_HOOK_INTR, on_interrupt)
    end = CODE_ADDR + len(code)
    try:
        mu.emu_start(CODE_ADDR, end, count=MAX_INSNS)
    except uc.UcError as e:
        fault = fault_of_error(e)
        stop["kind"] = fault.name if fault is not None else str(e)
    out = {name: mu.reg_read(r) for name, r in _UC_REG.items()}
    out["rip"] = mu.reg_read(REG_IDS["rip"])
    out["rflags"] = mu.reg_read(REG_IDS["rflags"])
    out["fpcw"] = mu.reg_read(REG_IDS["fpcw"])
    mem = {addr: bytes(mu.mem_read(addr, len(buf))) for addr, buf in _image(data).items()}
    mu.hook_del(hook)
    if stop["kind"] != "end":
        _unicorn_for.cache_clear()  # after a CPU exception Unicorn's state is not reliably reusable
    _keep_bsf_destination(code, regs, out)
    if stop["kind"] == Excp.READ_UNMAPPED.name and _read_modify_write_at(code, out["rip"]):
        # Unicorn's known error (tcg2wasm.fuzz.known, unicorn-rmw-write-fault): the CPU reports the read of a
        # read-modify-write of an unmapped page as a write fault (tests/regressions/rmw-*.json, on the CPU)
        stop["kind"] = Excp.WRITE_UNMAPPED.name
    return Outcome(out, mem, stop["kind"], out["rip"])


def _keep_bsf_destination(code: bytes, regs: dict[str, int], out: dict[str, int]) -> None:
    """Unicorn's known error (tcg2wasm.fuzz.known, unicorn-bsf-bsr-zero-source): bsf/bsr r32 of a zero source
    zero-extends the register; the CPU keeps all 64 bits (tests/regressions/bs*-zero-*.json, on the CPU)."""
    from tcg2wasm.frontend.x86_64.context import gpr_location

    ins = ix.Decoder(64, code, ip=CODE_ADDR).decode()
    if ins.len != len(code) or ins.mnemonic not in (ix.Mnemonic.BSF, ix.Mnemonic.BSR) \
            or ix.RegisterInfo(ins.op_register(0)).size != 4 or not out["rflags"] & (1 << FLAG_BITS["zf"]):
        return
    name = gpr_location(ins.op_register(0))[0]
    out[name] = regs.get(name, 0)


def _read_modify_write_at(code: bytes, pc: int) -> bool:
    from tcg2wasm.frontend.x86_64.context import reads_to_write

    if not CODE_ADDR <= pc < CODE_ADDR + len(code):
        return False
    ins = ix.Decoder(64, code[pc - CODE_ADDR:], ip=pc).decode()
    return not ins.is_invalid and reads_to_write(ins)


class _DictMemory:
    """Guest memory for the interpreter runner: code (rx) plus the data and stack areas (rw)."""

    def __init__(self, code: bytes, data: bytes) -> None:
        self.code = code
        self.areas = _image(data)

    def _find(self, addr: int, size: int, write: bool) -> tuple[bytearray, int]:
        for base, buf in self.areas.items():
            if base <= addr and addr + size <= base + len(buf):
                return buf, addr - base
        if addr >= CODE_ADDR and addr + size <= CODE_ADDR + 0x1000:
            if write:
                raise GuestFault(Excp.WRITE_PROT, addr)
            padded = self.code.ljust(0x1000, b"\0")
            return bytearray(padded), addr - CODE_ADDR
        raise GuestFault(Excp.WRITE_UNMAPPED if write else Excp.READ_UNMAPPED, addr)

    def load(self, addr: int, size: int) -> int:
        buf, off = self._find(addr, size, False)
        return int.from_bytes(buf[off:off + size], "little")

    def load_for_write(self, addr: int, size: int) -> int:
        self._find(addr, size, True)
        return self.load(addr, size)

    def store(self, addr: int, size: int, value: int) -> None:
        buf, off = self._find(addr, size, True)
        buf[off:off + size] = value.to_bytes(size, "little")

    def fetch(self, addr: int, n: int) -> bytes:
        if not CODE_ADDR <= addr < CODE_ADDR + 0x1000:
            raise GuestFault(Excp.FETCH_UNMAPPED, addr)
        return self.code.ljust(0x1000, b"\0")[addr - CODE_ADDR:][:n]


def _split_rflags(values: list[int], rflags: int) -> None:
    from tcg2wasm.abi import GLOBAL_INDEX
    for name, bit in FLAG_BITS.items():
        values[GLOBAL_INDEX[name]] = (rflags >> bit) & 1


def _join_rflags(values: list[int]) -> int:
    from tcg2wasm.abi import GLOBAL_INDEX
    rflags = 0x202
    for name, bit in FLAG_BITS.items():
        rflags |= values[GLOBAL_INDEX[name]] << bit
    return rflags


def run_interp(code: bytes, regs: dict[str, int], data: bytes = b"", optimize: bool = False) -> Outcome:
    """Run with the front end and the IR reference interpreter (no wasm, no Machine)."""
    from tcg2wasm.abi import GLOBAL_INDEX, GLOBAL_NAMES
    from tcg2wasm.frontend.x86_64.translate import translate_block

    mem = _DictMemory(code, data)
    values = [0] * len(GLOBAL_NAMES)
    values[GLOBAL_INDEX["fpcw"]] = FPCW_DEFAULT
    for name, value in regs.items():
        if name in GLOBAL_INDEX:
            values[GLOBAL_INDEX[name]] = value
    _split_rflags(values, regs.get("rflags", 0x202))
    end = CODE_ADDR + len(code)
    pc, stop, executed = CODE_ADDR, "end", 0
    while pc != end and executed < MAX_INSNS:
        try:
            tb = translate_block(mem.fetch, pc, stop_pcs=frozenset({end}))
        except GuestFault as f:
            stop = f.kind.name
            break
        if optimize:
            from tcg2wasm.opt import optimize_tb
            tb = optimize_tb(tb)
        result = run_tb(tb, values, mem)
        executed += tb.n_insns
        if result.exit == Exit.FAULT:
            stop, pc = result.fault_kind.name, result.pc
            break
        if result.exit != Exit.CONTINUE:
            stop, pc = result.exit.name, result.pc
            break
        pc = result.pc
    out = {name: values[GLOBAL_INDEX[name]] for name in GPR_NAMES}
    out["rip"] = pc
    out["rflags"] = _join_rflags(values)
    out["fpcw"] = values[GLOBAL_INDEX["fpcw"]]
    return Outcome(out, {a: bytes(b) for a, b in mem.areas.items()}, stop, pc)


@functools.lru_cache(maxsize=4)
def machine_for(code: bytes, engine: str) -> Machine:
    """One Machine per snippet and engine, reused across examples, so each snippet compiles once."""
    m = Machine(engine=engine, hot_threshold=1)  # compile at once: the wasm path is what is tested
    m.mem_map(CODE_ADDR, 0x1000, "rx")
    m.mem_write(CODE_ADDR, code)
    for addr, buf in _image(b"").items():
        m.mem_map(addr, len(buf), "rw")
    return m


def run_machine(code: bytes, regs: dict[str, int], data: bytes = b"", engine: str = "wasm") -> Outcome:
    """Run through the public Machine API (wasm or interp engine)."""
    m = machine_for(code, engine)
    for addr, buf in _image(data).items():
        m.mem_write(addr, bytes(buf))
    for name in (*GPR_NAMES, "fs_base", "gs_base"):
        m.reg_write(name, regs.get(name, 0))
    m.reg_write("rflags", regs.get("rflags", 0x202))
    m.reg_write("fpcw", regs.get("fpcw", FPCW_DEFAULT))
    end = CODE_ADDR + len(code)
    fallbacks_before = m.stats.fallback_insns
    reason = m.run(CODE_ADDR, until=end, count=MAX_INSNS)
    stop = "end" if reason.kind == "until" else (reason.fault or reason.kind)
    out = {name: m.reg_read(name) for name in (*GPR_NAMES, "rip", "rflags", "fpcw")}
    mem = {addr: m.mem_read(addr, len(buf)) for addr, buf in _image(data).items()}
    fallbacks = m.stats.fallback_insns - fallbacks_before
    return Outcome(out, mem, stop, out["rip"], {"stats": m.stats, "fallback_insns": fallbacks})


ENGINES = {
    "interp": run_interp,
    "interp-opt": lambda code, regs, data=b"": run_interp(code, regs, data, optimize=True),
    "wasm": lambda code, regs, data=b"": run_machine(code, regs, data, "wasm"),
}


def compare(code: bytes, regs: dict[str, int], data: bytes = b"", engine: str = "interp",
            ignore_flags: int = 0, allow_fallback: bool = False) -> None:
    """Assert ``engine`` matches Unicorn on this snippet and state (undefined flags masked).

    On the wasm engine no instruction may fall back to Unicorn (else Unicorn would be compared
    with itself) unless ``allow_fallback``; the interp runners fail on a fallback by themselves.
    """
    want = run_unicorn(code, regs, data)
    got = ENGINES[engine](code, regs, data)
    if not allow_fallback:
        assert got.extra.get("fallback_insns", 0) == 0, f"{got.extra['fallback_insns']} instructions fell back"
    mask = ~(undefined_flags_mask(code) | ignore_flags)
    want.regs["rflags"] &= mask
    got.regs["rflags"] &= mask
    assert got.stop == want.stop, f"stop: got {got.stop} at {got.stop_pc:#x}, want {want.stop} at {want.stop_pc:#x}"
    diffs = {k: (hex(got.regs[k]), hex(want.regs[k])) for k in want.regs if got.regs[k] != want.regs[k]}
    assert not diffs, f"register differences (got, want): {diffs}"
    for addr in want.memory:
        assert got.memory[addr] == want.memory[addr], f"memory differs in area {addr:#x}"
