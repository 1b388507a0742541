"""What a run reports: why it stopped (``StopReason``) and the counters over a machine's life (``Stats``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tcg2wasm.abi import Excp

__all__ = ["MEMORY_FAULTS", "NO_STOP", "Stats", "StopReason", "fault_stop", "has_stop_pc", "no_stop_for"]

MEMORY_FAULTS = frozenset({Excp.READ_UNMAPPED, Excp.WRITE_UNMAPPED, Excp.FETCH_UNMAPPED,
                           Excp.READ_PROT, Excp.WRITE_PROT, Excp.FETCH_PROT})

#: ``stop_pc`` meaning "no stop address": a non-canonical pc, where rip never is while guest code runs
#: (a branch there raises #GP first); every canonical address, 2^64-1 too, may be an ``until``.
NO_STOP = 1 << 63


def no_stop_for(begin: int) -> int:
    """The "no stop" value for a run from ``begin`` (a run may begin at a non-canonical pc, to fault there)."""
    return NO_STOP if begin != NO_STOP else NO_STOP + 1


def has_stop_pc(stop_pc: int) -> bool:
    """Whether ``stop_pc`` is a stop address (an ``until`` rip can reach) rather than "no stop"."""
    return stop_pc < 1 << 47 or stop_pc >= (1 << 64) - (1 << 47)


@dataclass
class StopReason:
    """Why ``Machine.run`` returned."""

    kind: str  # "until" | "count" | "fault" | "syscall" | "hlt" | "interrupt"
    pc: int  # rip when stopped (the faulting instruction for faults)
    fault: str | None = None  # Excp name for faults, e.g. "READ_UNMAPPED", "DIVIDE"; "UNSUPPORTED"
    address: int | None = None  # faulting data address of memory faults
    message: str = ""
    vector: int | None = None  # interrupt number for kind == "interrupt"


def fault_stop(pc: int, kind: Excp | str, addr: int | None, insn: str) -> StopReason:
    """A fault stop with its one-line message; ``insn`` describes the instruction at ``pc``."""
    name = kind.name if isinstance(kind, Excp) else kind
    address = addr if isinstance(kind, Excp) and kind in MEMORY_FAULTS else None
    where = f" accessing {address:#x}" if address is not None else ""
    return StopReason("fault", pc, name, address, f"{name} at pc {pc:#x} ({insn}){where}")


@dataclass
class Stats:
    """Counters over the machine's lifetime."""

    blocks_translated: int = 0
    regions_translated: int = 0
    regions_from_cache: int = 0  # regions the persistent translation cache gave (nothing translated)
    modules: int = 0  # wasm modules instantiated (regions and one-off blocks)
    guest_insns: int = 0  # exact: budget consumed, fallback instructions included
    fallback_insns: int = 0
    translate_seconds: float = 0.0  # lifting, optimizing, compiling and instantiating, on the main thread
    background_seconds: float = 0.0  # the same done by the background compiler (runtime/background.py)
    host_exits: int = 0  # returns from translated code / the dispatcher to Python
    host_calls: int = 0  # calls from translated code into Python helpers (faults, code writes, div128...)
    invalidations: int = 0  # pages whose translations were dropped
    code_write_restarts: int = 0  # guest stores into translated code, re-executed after invalidation
    blocks_interpreted: int = 0  # cold blocks run by the IR interpreter before their pc got hot
    unicorn_slices: int = 0  # runs of cold code (and fallback instructions) in Unicorn
    entries_run_through: int = 0  # compiled entries Unicorn stopped stopping at (visits too short)
    unicorn_seconds: float = 0.0  # time in them (their instructions are not in guest_insns)

    def as_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)
