"""Shrinking a diverging stream case to a small one that still diverges the same way.

Greedy, in the manner of delta debugging, with the case's own structure as the units: each
instruction of the stream is replaced by ``nop`` bytes of its length (so that branch
displacements stay valid), then every register is reset to zero (or its start-up default), then
every data mapping is emptied, and finally the nops are squeezed out when no branch is left. A step
is kept when the case still diverges on the same engine with the same first differing field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import iced_x86 as ix

from tcg2wasm.abi import FPCW_DEFAULT, MXCSR_DEFAULT
from tcg2wasm.cases import Case, MemoryRegion
from tcg2wasm.fuzz.compare import stream_instructions

Predicate = Callable[[Case], bool]
_DEFAULTS = {"rflags": 0x202, "mxcsr": MXCSR_DEFAULT, "fpcw": FPCW_DEFAULT}


def _code_region(case: Case) -> int:
    return next(i for i, r in enumerate(case.memory) if r.addr <= case.entry < r.end and "x" in r.perms)


def _with_code(case: Case, data: bytes) -> Case:
    index = _code_region(case)
    memory = list(case.memory)
    memory[index] = dataclasses.replace(memory[index], data=data)
    return dataclasses.replace(case, memory=memory)


def _nop_out(case: Case, ins: ix.Instruction) -> Case:
    region = case.memory[_code_region(case)]
    data = bytearray(region.data)
    start = ins.ip - region.addr
    data[start:start + ins.len] = b"\x90" * ins.len
    return _with_code(case, bytes(data))


def shrink_instructions(case: Case, fails: Predicate) -> Case:
    for ins in reversed(stream_instructions(case)):
        if ins.mnemonic == ix.Mnemonic.NOP:
            continue
        candidate = _nop_out(case, ins)
        if fails(candidate):
            case = candidate
    return case


def shrink_registers(case: Case, fails: Predicate) -> Case:
    for name in sorted(case.regs):
        if name == "rip":
            continue
        default = _DEFAULTS.get(name, 0)
        if case.regs[name] == default:
            continue
        candidate = dataclasses.replace(case, regs=case.regs | {name: default})
        if fails(candidate):
            case = candidate
    return case


def shrink_data(case: Case, fails: Predicate) -> Case:
    code = _code_region(case)
    for i, region in enumerate(case.memory):
        if i == code or not region.data:
            continue
        memory = list(case.memory)
        memory[i] = MemoryRegion(region.addr, region.size, region.perms, b"")
        candidate = dataclasses.replace(case, memory=memory)
        if fails(candidate):
            case = candidate
    return case


def squeeze_nops(case: Case, fails: Predicate) -> Case:
    """Drop the nops when no branch is left (nothing depends on the layout but the stop address)."""
    insns = stream_instructions(case)
    if any(ins.flow_control != ix.FlowControl.NEXT for ins in insns) or case.stop.until is None:
        return case
    region = case.memory[_code_region(case)]
    kept = b"".join(region.data[ins.ip - region.addr:ins.next_ip - region.addr] for ins in insns
                    if ins.mnemonic != ix.Mnemonic.NOP)
    prefix = region.data[:case.entry - region.addr]
    candidate = _with_code(case, prefix + kept + b"\xcc")
    candidate = dataclasses.replace(candidate, stop=dataclasses.replace(case.stop, until=case.entry + len(kept)))
    return candidate if fails(candidate) else case


def minimize(case: Case, fails: Predicate) -> Case:
    """The smallest case this greedy pass finds for which ``fails`` still holds (``case`` itself must fail)."""
    for step in (shrink_instructions, shrink_registers, shrink_data, squeeze_nops):
        case = step(case, fails)
    return case
