"""State cases, the file format: a guest machine state, how far to run it, and optionally the state expected after.

A case file holds one case object or a list of them (format in ``docs/cases.md``)::

    {"name": "add/1",
     "initial": {"regs": {"rax": 1, "rip": 65536},
                 "memory": [{"addr": 65536, "size": 4096, "perms": "rx", "data": "4801d8"}]},
     "stop": {"until": 65539},
     "final": {"regs": {"rax": 3}, "memory": [{"addr": 69632, "data": "2a"}]}}

Everything is checked on load, and every problem is reported as a :class:`CaseError`
naming the file and the field (``add.json: case 'add/1': initial.memory[0].perms: ...``),
so that no malformed case reaches the translator or Unicorn.

The result of running a case, whatever the engine, is a :class:`RunResult`; its
:meth:`RunResult.to_json` is what ``tcg2wasm exec --json`` prints. Running cases is
``tcg2wasm.cases``; this module knows no engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcg2wasm.abi import FLAG_BITS, GPR_NAMES, PAGE_SIZE, SEG_BASE_NAMES, XMM_NAMES, Excp
from tcg2wasm.errors import CaseError, GuestFault

U64_MAX = (1 << 64) - 1
#: Vector and floating-point control registers a case may also set or expect, with their widths.
VECTOR_REG_BITS: dict[str, int] = {name: 128 for name in XMM_NAMES} | {"mxcsr": 32, "fpcw": 16}
VECTOR_REGS: tuple[str, ...] = tuple(VECTOR_REG_BITS)
#: Registers a case may set or expect.
CASE_REGS: tuple[str, ...] = GPR_NAMES + ("rip", "rflags") + SEG_BASE_NAMES + VECTOR_REGS
#: Registers every run result reports (``regs`` of the JSON form; the vector ones go to ``vector_regs``).
RESULT_REGS: tuple[str, ...] = GPR_NAMES + ("rip", "rflags")
#: rflags bits the engines model: the six status flags, DF, and the always-one bit 1.
RFLAGS_MODELED = sum(1 << b for b in FLAG_BITS.values()) | 0x2
_CASE_KEYS = {"name", "description", "initial", "stop", "final"}


@dataclass(frozen=True)
class MemoryRegion:
    """One mapping of the initial state; ``data`` may be shorter than ``size`` (rest is zero)."""

    addr: int
    size: int
    perms: str
    data: bytes = b""

    @property
    def end(self) -> int:
        return self.addr + self.size


@dataclass(frozen=True)
class MemoryExpect:
    """Bytes expected at ``addr`` after the run."""

    addr: int
    data: bytes


@dataclass(frozen=True)
class Stop:
    """Run until rip reaches ``until``, or for ``count`` guest instructions (exactly one is set)."""

    until: int | None = None
    count: int | None = None


@dataclass
class Case:
    name: str
    regs: dict[str, int]
    memory: list[MemoryRegion]
    stop: Stop
    final_regs: dict[str, int] | None = None
    final_memory: list[MemoryExpect] = field(default_factory=list)
    final_stop: dict[str, Any] | None = None  # expected stop fields (kind, pc, fault, address, vector)
    source: str = "<case>"
    description: str = ""

    @property
    def has_final(self) -> bool:
        return self.final_regs is not None or bool(self.final_memory) or self.final_stop is not None

    @property
    def entry(self) -> int:
        return self.regs["rip"]


@dataclass
class RunResult:
    """What one engine did with one case: the same structure for wasm, interp and unicorn."""

    name: str
    engine: str
    regs: dict[str, int]  # RESULT_REGS, and VECTOR_REGS where the engine reports them
    memory: list[tuple[int, bytes]]  # every writable region, (addr, contents)
    stop: dict[str, Any]  # kind, pc, fault, address, message, vector (as tcg2wasm.machine.StopReason)
    stats: dict[str, Any]  # at least guest_insns, fallback_insns

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "regs": {r: self.regs[r] for r in RESULT_REGS},
            **({"vector_regs": {r: self.regs[r] for r in VECTOR_REGS if r in self.regs}}
               if any(r in self.regs for r in VECTOR_REGS) else {}),
            "memory": [{"addr": a, "data": d.hex()} for a, d in self.memory],
            "stop": self.stop,
            "stats": self.stats,
        }

    def read(self, addr: int, size: int) -> bytes | None:
        """Bytes at ``addr`` from the reported writable memory, or None if not all reported."""
        for base, data in self.memory:
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base : addr - base + size]
        return None


# -- validation helpers ---------------------------------------------------------------------


class _Where:
    """The file and case a value came from, to prefix error messages."""

    def __init__(self, source: str, case: str | None = None) -> None:
        self.source = source
        self.case = case

    def error(self, path: str, message: str) -> CaseError:
        where = f"{self.source}: case {self.case!r}" if self.case is not None else self.source
        return CaseError(f"{where}: {path}: {message}" if path else f"{where}: {message}")


def _obj(w: _Where, path: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise w.error(path, f"expected an object, got {type(v).__name__}")
    return v


def _need(w: _Where, path: str, obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise w.error(path, f"missing key {key!r}")
    return obj[key]


def _u64(w: _Where, path: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise w.error(path, f"expected an unsigned 64-bit integer, got {type(v).__name__} {v!r}")
    if v < 0:
        raise w.error(path, f"negative value {v}")
    if v > U64_MAX:
        raise w.error(path, f"value 0x{v:x} does not fit in 64 bits")
    return v


def _hex(w: _Where, path: str, v: Any) -> bytes:
    if not isinstance(v, str):
        raise w.error(path, f"expected a hex string, got {type(v).__name__}")
    text = "".join(v.split())
    try:
        return bytes.fromhex(text)
    except ValueError:
        bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), None)
        reason = f"bad hex digit {bad!r}" if bad else f"odd number of hex digits ({len(text)})"
        raise w.error(path, reason) from None


def _no_extra(w: _Where, path: str, obj: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise w.error(path, f"unknown key(s) {', '.join(map(repr, extra))} (allowed: {', '.join(sorted(allowed))})")


def _regs(w: _Where, path: str, v: Any) -> dict[str, int]:
    regs = _obj(w, path, v)
    out: dict[str, int] = {}
    for name in regs:
        if name not in CASE_REGS:
            raise w.error(f"{path}.{name}", f"unknown register (known: {', '.join(CASE_REGS)})")
        out[name] = _reg_width(w, f"{path}.{name}", regs[name], VECTOR_REG_BITS.get(name, 64))
    return out


def _reg_width(w: _Where, path: str, v: Any, bits: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise w.error(path, f"expected an unsigned {bits}-bit integer, got {type(v).__name__} {v!r}")
    if v < 0:
        raise w.error(path, f"negative value {v}")
    if v >> bits:
        raise w.error(path, f"value 0x{v:x} does not fit in {bits} bits")
    return v


def _perms(w: _Where, path: str, v: Any) -> str:
    if not isinstance(v, str) or any(c not in "rwx" for c in v) or len(set(v)) != len(v):
        raise w.error(path, f"expected a subset of 'rwx' like 'rw' or 'rx', got {v!r}")
    return "".join(c for c in "rwx" if c in v)


def _region(w: _Where, path: str, v: Any) -> MemoryRegion:
    obj = _obj(w, path, v)
    _no_extra(w, path, obj, {"addr", "size", "perms", "data"})
    addr = _u64(w, f"{path}.addr", _need(w, path, obj, "addr"))
    size = _u64(w, f"{path}.size", _need(w, path, obj, "size"))
    perms = _perms(w, f"{path}.perms", obj.get("perms", "rwx"))
    data = _hex(w, f"{path}.data", obj.get("data", ""))
    if addr % PAGE_SIZE:
        raise w.error(f"{path}.addr", f"0x{addr:x} is not aligned to the {PAGE_SIZE}-byte page")
    if size == 0 or size % PAGE_SIZE:
        raise w.error(f"{path}.size", f"0x{size:x} is not a positive multiple of the {PAGE_SIZE}-byte page")
    if addr + size > U64_MAX + 1:
        raise w.error(path, f"0x{addr:x} + 0x{size:x} runs past the end of the 64-bit address space")
    if len(data) > size:
        raise w.error(f"{path}.data", f"{len(data)} bytes do not fit in size 0x{size:x}")
    return MemoryRegion(addr, size, perms, data)


def _memory(w: _Where, path: str, v: Any) -> list[MemoryRegion]:
    if not isinstance(v, list):
        raise w.error(path, f"expected a list of regions, got {type(v).__name__}")
    regions = [_region(w, f"{path}[{i}]", r) for i, r in enumerate(v)]
    order = sorted(range(len(regions)), key=lambda i: regions[i].addr)
    for a, b in zip(order, order[1:], strict=False):
        if regions[a].end > regions[b].addr:
            raise w.error(f"{path}[{b}]", f"overlaps {path}[{a}] (0x{regions[a].addr:x}..0x{regions[a].end:x})")
    return regions


def _stop(w: _Where, v: Any) -> Stop:
    obj = _obj(w, "stop", v)
    keys = set(obj) & {"until", "count"}
    _no_extra(w, "stop", obj, {"until", "count"})
    if len(keys) != 1:
        raise w.error("stop", 'expected exactly one of {"until": ADDR} or {"count": N}')
    if "until" in obj:
        return Stop(until=_u64(w, "stop.until", obj["until"]))
    count = _u64(w, "stop.count", obj["count"])
    if count == 0:
        raise w.error("stop.count", "must be at least 1")
    return Stop(count=count)


def _final_memory(w: _Where, v: Any, regions: list[MemoryRegion]) -> list[MemoryExpect]:
    if not isinstance(v, list):
        raise w.error("final.memory", f"expected a list, got {type(v).__name__}")
    out = []
    for i, item in enumerate(v):
        path = f"final.memory[{i}]"
        obj = _obj(w, path, item)
        _no_extra(w, path, obj, {"addr", "data"})
        addr = _u64(w, f"{path}.addr", _need(w, path, obj, "addr"))
        data = _hex(w, f"{path}.data", _need(w, path, obj, "data"))
        if not any(r.addr <= addr and addr + len(data) <= r.end for r in regions):
            raise w.error(path, f"0x{addr:x}..0x{addr + len(data):x} is not inside one mapped region")
        out.append(MemoryExpect(addr, data))
    return out


_STOP_KINDS = ("until", "count", "fault", "syscall", "hlt", "interrupt")


def _final_stop(w: _Where, v: Any) -> dict[str, Any]:
    obj = _obj(w, "final.stop", v)
    _no_extra(w, "final.stop", obj, {"kind", "pc", "fault", "address", "vector"})
    out: dict[str, Any] = {}
    if "kind" in obj:
        if obj["kind"] not in _STOP_KINDS:
            raise w.error("final.stop.kind", f"expected one of {', '.join(_STOP_KINDS)}, got {obj['kind']!r}")
        out["kind"] = obj["kind"]
    if "fault" in obj:
        if not isinstance(obj["fault"], str) or not obj["fault"]:
            raise w.error("final.stop.fault", f"expected a fault name like 'READ_UNMAPPED', got {obj['fault']!r}")
        out["fault"] = obj["fault"]
    for key in ("pc", "address", "vector"):
        if key in obj:
            out[key] = _u64(w, f"final.stop.{key}", obj[key])
    return out


def parse_case(obj: Any, source: str = "<case>", index: int | None = None) -> Case:
    """Validate one decoded case object; raises :class:`CaseError` naming source and field."""
    label = f"[{index}]" if index is not None else None
    w = _Where(source, label)
    obj = _obj(w, "", obj)
    name = obj.get("name", label or Path(source).stem)
    if not isinstance(name, str) or not name:
        raise w.error("name", f"expected a non-empty string, got {name!r}")
    w.case = name
    _no_extra(w, "", obj, _CASE_KEYS)
    initial = _obj(w, "initial", _need(w, "", obj, "initial"))
    _no_extra(w, "initial", initial, {"regs", "memory"})
    regs = _regs(w, "initial.regs", _need(w, "initial", initial, "regs"))
    if "rip" not in regs:
        raise w.error("initial.regs", "missing key 'rip' (where execution starts)")
    memory = _memory(w, "initial.memory", initial.get("memory", []))
    stop = _stop(w, _need(w, "", obj, "stop"))
    case = Case(name=name, regs=regs, memory=memory, stop=stop, source=source)
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise w.error("description", "expected a string")
    case.description = description
    if "final" in obj:
        final = _obj(w, "final", obj["final"])
        _no_extra(w, "final", final, {"regs", "memory", "stop"})
        if "regs" in final:
            case.final_regs = _regs(w, "final.regs", final["regs"])
        case.final_memory = _final_memory(w, final.get("memory", []), memory)
        if "stop" in final:
            case.final_stop = _final_stop(w, final["stop"])
    return case


def parse_cases(text: str, source: str = "<case>") -> list[Case]:
    """Decode JSON text holding one case object or a list of them."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseError(f"{source}: line {e.lineno} column {e.colno}: malformed JSON: {e.msg}") from None
    except RecursionError:  # found by `tcg2wasm fuzz files` (issue 14: a traceback before)
        raise CaseError(f"{source}: malformed JSON: nested too deeply") from None
    if isinstance(doc, list):
        if not doc:
            raise CaseError(f"{source}: the list of cases is empty")
        return [parse_case(item, source, i) for i, item in enumerate(doc)]
    return [parse_case(doc, source)]


def load_cases(path: str | Path) -> list[Case]:
    """Read and validate a case file."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CaseError(f"{p}: cannot read case file: {e}") from None
    return parse_cases(text, str(p))


def load_case(path: str | Path) -> Case:
    """Read a case file that must hold exactly one case."""
    cases = load_cases(path)
    if len(cases) != 1:
        raise CaseError(f"{path}: expected one case, found {len(cases)}")
    return cases[0]


def case_to_json(case: Case) -> dict[str, Any]:
    """The JSON object form of a case (what :func:`parse_case` reads back)."""
    obj: dict[str, Any] = {"name": case.name}
    if case.description:
        obj["description"] = case.description
    obj["initial"] = {
        "regs": dict(case.regs),
        "memory": [{"addr": r.addr, "size": r.size, "perms": r.perms, "data": r.data.hex()} for r in case.memory],
    }
    obj["stop"] = {"until": case.stop.until} if case.stop.until is not None else {"count": case.stop.count}
    if case.has_final:
        final: dict[str, Any] = {}
        if case.final_regs is not None:
            final["regs"] = dict(case.final_regs)
        if case.final_memory:
            final["memory"] = [{"addr": m.addr, "data": m.data.hex()} for m in case.final_memory]
        if case.final_stop is not None:
            final["stop"] = dict(case.final_stop)
        obj["final"] = final
    return obj


# -- code access without an engine ----------------------------------------------------------


def case_fetch(case: Case) -> Any:
    """A front-end ``fetch(addr, n)`` over the case's executable initial memory.

    Returns up to ``n`` bytes (fewer at the end of an executable mapping) and raises
    ``GuestFault`` FETCH_UNMAPPED / FETCH_PROT if ``addr`` itself cannot be fetched.
    """
    regions = sorted(case.memory, key=lambda r: r.addr)

    def image(r: MemoryRegion) -> bytes:
        return r.data + bytes(r.size - len(r.data))

    def fetch(addr: int, n: int) -> bytes:
        start = next((i for i, r in enumerate(regions) if r.addr <= addr < r.end), None)
        if start is None:
            raise GuestFault(Excp.FETCH_UNMAPPED, addr)
        if "x" not in regions[start].perms:
            raise GuestFault(Excp.FETCH_PROT, addr)
        out = bytearray(image(regions[start])[addr - regions[start].addr :])
        for prev, r in zip(regions[start:], regions[start + 1 :], strict=False):
            if len(out) >= n or r.addr != prev.end or "x" not in r.perms:
                break
            out += image(r)
        return bytes(out[:n])

    return fetch


def stop_to_json(stop: Any) -> dict[str, Any]:
    """A Machine ``StopReason`` as the JSON stop dictionary every engine reports."""
    return {
        "kind": stop.kind,
        "pc": stop.pc,
        "fault": stop.fault,
        "address": stop.address,
        "message": stop.message,
        "vector": getattr(stop, "vector", None),
    }


def stats_to_json(stats: Any) -> dict[str, Any]:
    """The Machine's stats object as a plain dictionary (sorted keys, JSON values only)."""
    raw = stats if isinstance(stats, dict) else getattr(stats, "__dict__", {})
    if hasattr(stats, "__dataclass_fields__"):
        raw = {name: getattr(stats, name) for name in stats.__dataclass_fields__}
    return {k: v for k, v in sorted(raw.items()) if isinstance(v, int | float | str | bool | None)}


# -- checking a result ------------------------------------------------------------------------


def check_result(case: Case, result: RunResult) -> list[str]:
    """Differences between ``case.final`` and ``result``, one readable line each (empty: match).

    ``rflags`` is compared on the bits the engines model (status flags, DF, bit 1).
    """
    problems = _stop_problems(case, result)
    for name, want in sorted((case.final_regs or {}).items()):
        got = result.regs.get(name)
        if got is None:
            problems.append(f"{name}: not reported by engine {result.engine}")
            continue
        mask = RFLAGS_MODELED if name == "rflags" else (1 << VECTOR_REG_BITS.get(name, 64)) - 1
        if (got ^ want) & mask:
            problems.append(f"{name}: expected 0x{want:x}, got 0x{got:x}")
    for m in case.final_memory:
        got_bytes = result.read(m.addr, len(m.data))
        if got_bytes is None:
            problems.append(f"memory 0x{m.addr:x}: not in a writable region reported by {result.engine}")
        elif got_bytes != m.data:
            first = next(i for i in range(len(m.data)) if got_bytes[i] != m.data[i])
            problems.append(
                f"memory 0x{m.addr + first:x}: expected {m.data[first:first + 16].hex()}, "
                f"got {got_bytes[first:first + 16].hex()}"
            )
    return problems


def _stop_problems(case: Case, result: RunResult) -> list[str]:
    """``final.stop`` fields that the result's stop does not have, compared exactly."""

    def show(v: Any) -> str:
        return f"0x{v:x}" if isinstance(v, int) and not isinstance(v, bool) else repr(v)

    return [f"stop.{key}: expected {show(want)}, got {show(result.stop.get(key))}"
            for key, want in (case.final_stop or {}).items() if result.stop.get(key) != want]
