"""The trace file format (``docs/trace-format.md``): a checked header and an lzma-compressed payload.

File layout (integers little-endian)::

    magic    8 bytes  b"T2WTRACE"
    version  u16      FORMAT_VERSION
    vlen     u16      length of the tcg2wasm version string
    tool     vlen     tcg2wasm version that wrote the file (utf-8)
    rawlen   u64      payload length before compression
    zlen     u64      compressed payload length
    sha256   32 bytes digest of the compressed payload
    payload  zlen     xz (lzma) stream

The payload is ``u32 meta_len``, a JSON object of ``meta_len`` bytes, then a blob area.
The JSON refers to byte strings in the blob area as ``[offset, length]`` pairs.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import struct
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcg2wasm import __version__
from tcg2wasm.abi import FLAG_BITS, GPR_NAMES, PAGE_SIZE, SEG_BASE_NAMES
from tcg2wasm.errors import Tcg2WasmError

MAGIC = b"T2WTRACE"
FORMAT_VERSION = 3  # 2: block_seq compressed on its own; 3: each block's execution count
#: Versions this tcg2wasm reads (a version 2 file has no block counts: replay runs without a profile).
READABLE_VERSIONS = (2, 3)
_HEAD = struct.Struct("<8sHH")
_SIZES = struct.Struct("<QQ32s")
#: Blocks between two periodic register checkpoints when recording (``record --every``): each
#: costs the replay a stop (~35 µs), and narrowing walks at most this many blocks in lockstep.
DEFAULT_EVERY = 100_000
#: Registers every checkpoint holds.
TRACE_REGS: tuple[str, ...] = GPR_NAMES + ("rip", "rflags") + SEG_BASE_NAMES
#: rflags bits a checkpoint comparison looks at: the six status flags, DF and the fixed bit 1.
RFLAGS_COMPARED = sum(1 << b for b in FLAG_BITS.values()) | 0x2


class TraceFormatError(Tcg2WasmError):
    """A trace file that cannot be used: truncated, corrupted, wrong version or malformed (names the file)."""


@dataclass
class Region:
    """A mapping of the initial image; ``pages`` holds its non-zero pages by offset."""

    addr: int
    size: int
    perms: str
    pages: dict[int, bytes] = field(default_factory=dict)

    def data(self) -> bytes:
        out = bytearray(self.size)
        for off, page in self.pages.items():
            out[off : off + len(page)] = page
        return bytes(out)


@dataclass
class Block:
    """A guest block as Unicorn executed it: start pc, its bytes, its instructions (Machine counting).

    ``count`` is how many times it ran (0: unknown, a version 2 trace); replay uses the counts as
    a profile, compiling hot code at once instead of first interpreting it.
    """

    pc: int
    raw: bytes
    n_insns: int
    count: int = 0


@dataclass
class Checkpoint:
    """Registers after exactly ``icount`` guest instructions; ``flag_mask`` are rflags bits left undefined."""

    icount: int
    kind: str  # "blocks" (every N blocks) | "syscall" (at a syscall, before its effects) | "end"
    regs: dict[str, int]
    flag_mask: int = 0
    block_index: int = 0  # block executions before this point


@dataclass
class SyscallEvent:
    """One system call: what the guest asked, what it read, and what the kernel did to it.

    ``effects`` are replayed in order: ``["write", addr, data]``, ``["map", addr, size, perms]``,
    ``["unmap", addr, size]``, ``["protect", addr, size, perms]``, ``["reg", name, value]``.
    """

    icount: int  # guest instructions up to and including the syscall instruction
    nr: int
    args: list[int]
    pc: int  # rip after the syscall instruction
    reads: list[tuple[int, int]]  # guest memory the kernel read (addr, size)
    read_digest: str  # sha256 of those bytes, concatenated
    effects: list[list[Any]]
    exit_status: int | None = None  # exit/exit_group: the guest ended here
    name: str = ""


@dataclass
class TraceEnd:
    kind: str  # "exit" | "stop" (case: until/count) | "fault" | "hlt" | "interrupt"
    icount: int
    pc: int
    status: int | None = None
    fault: str | None = None
    mem_digest: str = ""


@dataclass
class Trace:
    meta: dict[str, Any]  # mode, program, argv, env, checkpoint_every, tool version...
    regs: dict[str, int]
    regions: list[Region]
    blocks: list[Block]
    block_seq_source: array | bytes  # the sequence, or its xz-compressed u32 bytes until first use
    checkpoints: list[Checkpoint]
    syscalls: list[SyscallEvent]
    end: TraceEnd
    n_blocks: int = -1  # length of the block sequence (known without decoding it)
    version: int = FORMAT_VERSION  # the file's format version (decides how memory digests are made)

    def __post_init__(self) -> None:
        if self.n_blocks < 0:
            self.n_blocks = len(self.block_seq)

    @property
    def block_seq(self) -> array:
        """array('I') of indexes into ``blocks``, in execution order.

        Replay never needs it (only narrowing and summaries do), and for a 10^8-instruction
        recording it is hundreds of MB decompressed: it is decoded on first use.
        """
        if isinstance(self.block_seq_source, bytes):
            seq = array("I")
            try:
                seq.frombytes(lzma.decompress(self.block_seq_source))
            except (lzma.LZMAError, ValueError) as e:  # damage behind the checksum (tcg2wasm fuzz files)
                raise TraceFormatError(f"corrupted trace (the block sequence does not decompress: {e})") from None
            self.block_seq_source = seq
        return self.block_seq_source

    @property
    def icount(self) -> int:
        return self.end.icount


# -- memory digests -----------------------------------------------------------------------------------


def coalesced_regions(regions: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Adjacent mappings with equal perms merged: engines split mappings differently."""
    out: list[tuple[int, int, str]] = []
    for addr, size, perms in sorted(regions):
        if out and out[-1][0] + out[-1][1] == addr and out[-1][2] == perms:
            out[-1] = (out[-1][0], out[-1][1] + size, perms)
        else:
            out.append((addr, size, perms))
    return out


_DIGEST_CHUNK = 1 << 20
_ZERO_CHUNK = bytes(_DIGEST_CHUNK)


def memory_digest(cpu: Any, version: int = FORMAT_VERSION) -> str:
    """sha256 over every mapping (address, size, perms, contents) of a CPU with the Machine API.

    From format version 3 all-zero pages are left out of the hash (each other page is
    hashed with its offset): a guest's stack mapping is megabytes of zeros, and the digest
    is on every replay's path. Version 2 hashed every byte.
    """
    h = hashlib.sha256()
    for addr, size, perms in coalesced_regions(cpu.mem_regions()):
        h.update(struct.pack("<QQ", addr, size) + perms.encode())
        for off in range(0, size, _DIGEST_CHUNK):
            chunk = cpu.mem_read(addr + off, min(_DIGEST_CHUNK, size - off))
            if version < 3:
                h.update(chunk)
            else:
                _hash_nonzero_pages(h, off, chunk)
    return h.hexdigest()


def _hash_nonzero_pages(h: Any, offset: int, chunk: bytes) -> None:
    if chunk == _ZERO_CHUNK[: len(chunk)]:  # all zeros (a memcmp): most of a stack or a fresh heap
        return
    for start in range(0, len(chunk), PAGE_SIZE):
        page = chunk[start : start + PAGE_SIZE]
        if page != _ZERO_CHUNK[: len(page)]:
            h.update(struct.pack("<Q", offset + start))
            h.update(page)


# -- encoding -----------------------------------------------------------------------------------------


class _Blobs:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def put(self, data: bytes) -> list[int]:
        ref = [self.size, len(data)]
        self.parts.append(bytes(data))
        self.size += len(data)
        return ref


def _region_json(r: Region, blobs: _Blobs) -> dict[str, Any]:
    offs = sorted(r.pages)
    return {"addr": r.addr, "size": r.size, "perms": r.perms, "pages": offs,
            "data": blobs.put(b"".join(r.pages[o] for o in offs))}


def _event_json(e: SyscallEvent, blobs: _Blobs) -> dict[str, Any]:
    effects = [[eff[0], eff[1], blobs.put(eff[2])] if eff[0] == "write" else list(eff) for eff in e.effects]
    return {"icount": e.icount, "nr": e.nr, "name": e.name, "args": e.args, "pc": e.pc,
            "reads": [list(r) for r in e.reads], "read_digest": e.read_digest, "effects": effects,
            "exit_status": e.exit_status}


def encode(trace: Trace) -> bytes:
    blobs = _Blobs()
    seq = array("I", trace.block_seq)
    meta = {
        "meta": trace.meta,
        "regs": trace.regs,
        "regions": [_region_json(r, blobs) for r in trace.regions],
        "blocks": [[b.pc, blobs.put(b.raw), b.n_insns, b.count] for b in trace.blocks],
        "block_seq": blobs.put(lzma.compress(seq.tobytes(), preset=1)),
        "n_blocks": len(seq),
        "checkpoints": [[c.icount, c.kind, [c.regs[n] for n in TRACE_REGS], c.flag_mask, c.block_index]
                        for c in trace.checkpoints],
        "syscalls": [_event_json(e, blobs) for e in trace.syscalls],
        "end": vars(trace.end),
    }
    head = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode()
    payload = struct.pack("<I", len(head)) + head + b"".join(blobs.parts)
    packed = lzma.compress(payload, preset=6)
    tool = __version__.encode()
    return (_HEAD.pack(MAGIC, FORMAT_VERSION, len(tool)) + tool
            + _SIZES.pack(len(payload), len(packed), hashlib.sha256(packed).digest()) + packed)


def save(trace: Trace, path: str | Path) -> None:
    Path(path).write_bytes(encode(trace))


# -- decoding -----------------------------------------------------------------------------------------


def read_header(data: bytes, source: str) -> tuple[int, str, bytes]:
    """(format version, tool version, compressed payload) after checking magic, version, length, sha256."""
    if len(data) < _HEAD.size:
        raise TraceFormatError(f"{source}: not a tcg2wasm trace (file too short: {len(data)} bytes)")
    magic, version, vlen = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise TraceFormatError(f"{source}: not a tcg2wasm trace (bad magic {magic!r})")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise TraceFormatError(f"{source}: trace format version {version}, this tcg2wasm ({__version__}) reads "
                               f"versions {readable} only; re-record the trace")
    pos = _HEAD.size + vlen
    if len(data) < pos + _SIZES.size:
        raise TraceFormatError(f"{source}: truncated trace (header cut short)")
    tool = data[_HEAD.size : pos].decode("utf-8", "replace")
    _rawlen, zlen, digest = _SIZES.unpack_from(data, pos)
    packed = data[pos + _SIZES.size :]
    if len(packed) < zlen:
        raise TraceFormatError(f"{source}: truncated trace ({len(packed)} of {zlen} payload bytes)")
    if len(packed) > zlen:
        raise TraceFormatError(f"{source}: corrupted trace ({len(packed) - zlen} bytes after the payload)")
    if hashlib.sha256(packed).digest() != digest:
        raise TraceFormatError(f"{source}: corrupted trace (sha256 of the payload does not match the header)")
    return version, tool, packed


def _unpack_payload(packed: bytes, source: str) -> tuple[dict[str, Any], memoryview]:
    try:
        payload = lzma.decompress(packed)
    except lzma.LZMAError as e:
        raise TraceFormatError(f"{source}: corrupted trace (payload does not decompress: {e})") from None
    (meta_len,) = struct.unpack_from("<I", payload)
    try:
        meta = json.loads(payload[4 : 4 + meta_len])
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise TraceFormatError(f"{source}: malformed trace metadata: {e}") from None
    return meta, memoryview(payload)[4 + meta_len :]


#: the types of a syscall effect's fields after its name ("ref": a blob reference [offset, size])
_EFFECT_FIELDS: dict[str, tuple[str, ...]] = {"write": ("int", "ref"), "zero": ("int", "int"),
                                              "map": ("int", "int", "str"), "unmap": ("int", "int"),
                                              "protect": ("int", "int", "str"), "reg": ("str", "u64")}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(values: Any, what: str, u64: bool = False) -> None:
    if not all(_is_int(v) and (not u64 or 0 <= v < 1 << 64) for v in values):
        raise ValueError(f"{what}: expected {'64-bit unsigned ' if u64 else ''}integers")


def _field_ok(kind: str, v: Any) -> bool:
    if kind == "ref":
        return isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v)
    if kind == "str":
        return isinstance(v, str)
    return _is_int(v) and (kind != "u64" or 0 <= v < 1 << 64)


def _check_effect(eff: Any) -> None:
    fields = _EFFECT_FIELDS.get(str(eff[0])) if isinstance(eff, list) and eff else None
    if fields is None or len(eff) != 1 + len(fields) or not all(map(_field_ok, fields, eff[1:])):
        raise ValueError(f"syscalls: malformed effect {eff!r:.60}")


def _check_registers(meta: dict[str, Any]) -> None:
    """The initial registers (every one of TRACE_REGS) and each checkpoint's, as 64-bit values."""
    if not isinstance(meta["regs"], dict):
        raise ValueError("regs: expected an object")
    missing = [name for name in TRACE_REGS if name not in meta["regs"]]
    if missing:
        raise ValueError(f"regs: missing {', '.join(missing[:4])}")
    _ints(meta["regs"].values(), "regs", u64=True)
    for c in meta["checkpoints"]:
        if not (isinstance(c, list) and len(c) == 5 and isinstance(c[1], str) and isinstance(c[2], list)
                and len(c[2]) == len(TRACE_REGS)):
            raise ValueError(f"checkpoints: malformed checkpoint {c!r:.60}")
        _ints([c[0], c[3], c[4]], "checkpoints")
        _ints(c[2], "checkpoint registers", u64=True)


def _check_shapes(meta: dict[str, Any]) -> None:
    """Types of the metadata fields replay relies on (damage behind the checksum: tcg2wasm fuzz files)."""
    for r in meta["regions"]:
        _ints([r["addr"], r["size"], *r["pages"]], "regions")
        if not isinstance(r["perms"], str):
            raise ValueError("regions: perms must be a string")
    for b in meta["blocks"]:
        _ints([b[0], b[2], *b[3:4]], "blocks")
    for e in meta["syscalls"]:
        _ints([e["icount"], e["nr"], e["pc"], *e["args"]], "syscalls")
        for eff in e["effects"]:
            _check_effect(eff)
    _check_registers(meta)


def _decode(meta: dict[str, Any], blob: memoryview, version: int) -> Trace:
    def get(ref: list[int]) -> bytes:
        off, n = ref
        if off < 0 or n < 0 or off + n > len(blob):
            raise ValueError(f"blob reference {ref} outside the {len(blob)}-byte blob area")
        return bytes(blob[off : off + n])

    regions = []
    for r in meta["regions"]:
        data = get(r["data"])
        pages = {o: data[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] for i, o in enumerate(r["pages"])}
        regions.append(Region(r["addr"], r["size"], r["perms"], pages))
    blocks = [Block(b[0], get(b[1]), b[2], b[3] if len(b) > 3 else 0) for b in meta["blocks"]]
    seq = get(meta["block_seq"])  # still compressed: see Trace.block_seq
    checkpoints = [Checkpoint(ic, kind, dict(zip(TRACE_REGS, values, strict=True)), mask, bi)
                   for ic, kind, values, mask, bi in meta["checkpoints"]]
    events = []
    for e in meta["syscalls"]:
        effects = [[eff[0], eff[1], get(eff[2])] if eff[0] == "write" else eff for eff in e["effects"]]
        events.append(SyscallEvent(e["icount"], e["nr"], e["args"], e["pc"], [tuple(r) for r in e["reads"]],
                                   e["read_digest"], effects, e["exit_status"], e.get("name", "")))
    return Trace(meta["meta"], meta["regs"], regions, blocks, seq, checkpoints, events, TraceEnd(**meta["end"]),
                 meta["n_blocks"], version)


def decode(data: bytes, source: str = "<trace>") -> Trace:
    version, _tool, packed = read_header(data, source)
    meta, blob = _unpack_payload(packed, source)
    try:
        _check_shapes(meta)
        return _decode(meta, blob, version)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise TraceFormatError(f"{source}: malformed trace payload: {type(e).__name__}: {e}") from None


def load(path: str | Path) -> Trace:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TraceFormatError(f"{path}: cannot read trace: {e.strerror}") from None
    return decode(data, str(path))
