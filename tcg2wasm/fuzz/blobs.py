"""Random code blobs, crash-only: no process crash, no hang, no Python traceback, every stop a documented one.

A blob is up to 48 bytes of random bytes, of random prefixes, or of random encodings of any legacy
instruction iced-x86 knows (lifted or not: x87, MMX, segment moves, far branches... reach the
Unicorn fallback), placed at a random offset of the stream layout's code page (often at its end).
It runs with random registers for at most ``LIMIT`` instructions on the IR-interpreter engine, and
on the wasm engine for every ``wasm_every``-th blob. What is checked is only that the run ends
the way ``docs/cases.md`` says runs end: a stop of a documented kind, a documented fault name with a
pc (and an address for memory faults), and an interrupt vector that is the one of the instruction
before the stop. A crash or a hang is caught by the campaign's supervisor.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import iced_x86 as ix

from tcg2wasm.cases import Case, MemoryRegion, Stop
from tcg2wasm.fuzz import encodings
from tcg2wasm.fuzz.draw import RandomDraw, value64
from tcg2wasm.fuzz.encodings import Draw
from tcg2wasm.fuzz.streams import CODE_ADDR, LAYOUT, data_image, random_instruction

LIMIT = 200
STOP_KINDS = frozenset({"until", "count", "fault", "syscall", "hlt", "interrupt"})
FAULTS = frozenset({"READ_UNMAPPED", "WRITE_UNMAPPED", "FETCH_UNMAPPED", "READ_PROT", "WRITE_PROT", "FETCH_PROT",
                    "DIVIDE", "INVALID_OPCODE", "GP"})
MEMORY_FAULTS = frozenset(f for f in FAULTS if "_" in f and f != "INVALID_OPCODE")
_PREFIXES = bytes.fromhex("262e363e646566 67 f0 f2 f3 40 41 44 48 4c 4f".replace(" ", ""))
_VECTORS = {ix.Mnemonic.INT3: 3, ix.Mnemonic.INT1: 1, ix.Mnemonic.INTO: 4}


@functools.cache
def _all_templates() -> tuple[encodings.Template, ...]:
    out = []
    for code in range(1, 5000):
        try:
            info = ix.OpCodeInfo(code)  # type: ignore[arg-type]  # (iced_x86.Code is a module of ints)
        except ValueError:
            break
        if info.mode64 and info.encoding == ix.EncodingKind.LEGACY:
            t = encodings._parse(code, info.op_code_string)
            if t is not None:
                out.append(t)
    return tuple(out)


def blob_bytes(draw: Draw) -> bytes:
    out = b""
    while len(out) < draw.int(1, 48):
        pick = draw.int(0, 9)
        if pick < 2:
            out += draw.bytes(draw.int(1, 8))
        elif pick < 3:
            out += bytes(draw.choice(_PREFIXES) for _ in range(draw.int(1, 15)))
        elif pick < 6:
            out += encodings.encode(draw, draw.choice(_all_templates()))
        else:
            picked = random_instruction(draw)
            out += picked[0] if picked else b""
    return out[:64]


def blob_case(seed: int) -> Case:
    draw = RandomDraw(seed)
    blob = blob_bytes(draw)
    offset = 0x1000 - draw.int(1, len(blob)) if draw.chance(0.3) else draw.int(0, 0x1F00 - len(blob))
    regs = {name: value64(draw) for name in ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")}
    if draw.chance(0.7):
        regs["rsp"] = 0x31000 + 8 * draw.int(-64, 64)
    regs |= {"rip": CODE_ADDR + offset, "rflags": draw.int(0, 0xFFF) & 0xED5 | 0x202,
             "fs_base": draw.choice((0, 0x20000)), "gs_base": draw.choice((0, 0x25000))}
    fill = random.Random(seed)
    memory = [MemoryRegion(addr, size, perms, bytes(offset) + blob if addr == CODE_ADDR else data_image(fill, size))
              for addr, size, perms in LAYOUT]
    return Case(f"blob-{seed}", regs, memory, Stop(count=LIMIT), description=blob.hex())


def stop_problems(case: Case, stop: dict[str, Any], memory_fetch: Any) -> list[str]:
    """Why ``stop`` is not a documented stop (docs/cases.md), one line each; empty if it is."""
    out = []
    kind = stop.get("kind")
    if kind not in STOP_KINDS:
        return [f"undocumented stop kind {kind!r}: {stop.get('message')}"]
    if not isinstance(stop.get("pc"), int) or not isinstance(stop.get("message"), str):
        out.append(f"stop without an integer pc and a message: {stop}")
    if kind == "fault":
        if stop.get("fault") not in FAULTS:
            out.append(f"undocumented fault {stop.get('fault')!r}: {stop.get('message')}")
        elif (stop["fault"] in MEMORY_FAULTS) != (stop.get("address") is not None):
            out.append(f"fault {stop['fault']} with address {stop.get('address')!r}: {stop.get('message')}")
    if kind == "interrupt":
        out += _vector_problems(stop, memory_fetch)
    return out


def _vector_problems(stop: dict[str, Any], fetch: Any) -> list[str]:
    """The vector must be the one of the int/int3/int1 that ends just before the stop pc."""
    pc, vector = stop["pc"], stop.get("vector")
    for length in range(1, 16):
        try:
            raw = fetch(pc - length, length)
        except Exception:
            continue
        ins = ix.Decoder(64, raw, ip=pc - length).decode()
        if ins.is_invalid or ins.len != length:
            continue
        want = _VECTORS.get(ins.mnemonic, ins.immediate(0) if ins.mnemonic == ix.Mnemonic.INT else None)
        if want is not None:
            return [] if want == vector else [f"interrupt vector {vector} after {ins} (vector {want})"]
    return [f"interrupt vector {vector} at pc 0x{pc:x} with no int instruction before it: {stop.get('message')}"]


class BlobWorker:
    """Crash-only runs of random blobs on the interp engine (and the wasm engine on a sample)."""

    def __init__(self, options: dict[str, Any]) -> None:
        from tcg2wasm.fuzz.engines import MachineEngine

        self.wasm_every = int(options.get("wasm_every", 20))
        self.interp = MachineEngine("interp", limit=LIMIT)
        self.wasm = MachineEngine("wasm", limit=LIMIT)
        self.count = 0

    def close(self) -> None:
        pass

    def run(self, seed: int) -> dict[str, Any]:
        from tcg2wasm.fuzz.kinds import traceback_failure

        case = blob_case(seed)
        self.count += 1
        engines = [self.interp] + ([self.wasm] if seed % self.wasm_every == 0 else [])
        labels = []
        for engine in engines:
            try:
                result = engine.run(case)
            except Exception as e:  # never: bad guest code is a guest fault, not an exception
                engine.machine = None
                failure = traceback_failure(seed, e, f"blob {case.description} on {engine.engine}")
                failure["failure"]["case"] = _case_json(case, failure["failure"]["detail"])
                return failure
            problems = stop_problems(case, result.stop, engine.machine.memory.fetch)
            if problems:
                return {"seed": seed, "labels": [f"{engine.engine}:bad-stop"],
                        "failure": {"status": "bad-stop", "engine": engine.engine, "detail": problems,
                                    "case": _case_json(case, problems)}}
            labels.append(f"{engine.engine}:{result.stop['kind']}:{result.stop.get('fault') or ''}".rstrip(":"))
        return {"seed": seed, "labels": labels}


def _case_json(case: Case, detail: list[str]) -> dict[str, Any]:
    from tcg2wasm.fuzz.regressions import regression_case

    return regression_case(case, None, detail)
