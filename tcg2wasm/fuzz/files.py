"""Damaged input files: mutated case files, ELF images and traces must give exit 2 and one line naming the file.

Each seed takes one file of the repository's own corpus (``examples/*.json``,
``tests/golden/cases/*.json``, small static ``guests/bin/*.musl``, ``traces/*.t2wt``), damages it and
feeds it to the command that reads that kind of file:

* case files: byte damage of the text, or a structural edit of the JSON (a key removed, a value of
  the wrong type, huge or negative numbers, a mapping of 64 GiB, nesting 100,000 deep...); when
  the result is still a valid case, its stop becomes ``{"count": 5000}`` so that every run ends,
  and ``tcg2wasm exec --engine E`` runs it;
* ELF images: edge values written into header and program-header fields, byte damage, truncation;
  the image is loaded as ``tcg2wasm run`` loads it (``tcg2wasm.linux.process.Process``) and, when it
  loads, run for at most ``ELF_BUDGET`` instructions;
* traces: the payload is decompressed, damaged (its JSON metadata or its blob area), recompressed
  and sealed with a correct sha256, so that the damage reaches the decoder behind the checksum;
  ``tcg2wasm replay`` reads it. Raw byte damage (caught by the checksum) is tried too.

A run passes if the command exits 0 or 1 (the damaged file was still valid input), or exits 2 with
exactly one line on stderr that names the file. Anything else -- an exception escaping the command,
a traceback, several lines, a message without the file name -- is a failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import lzma
import random
import struct
import tempfile
from pathlib import Path
from typing import Any

from tcg2wasm.errors import Tcg2WasmError

ROOT = Path(__file__).resolve().parents[2]
ELF_BUDGET = 200_000
EDGE = (0, 1, 2, 0x7F, 0xFF, 0xFFF, 0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 47, 1 << 63,
        (1 << 64) - 1, (1 << 64) - 0x1000)
_PHDR_FIELDS = ((0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8))
_EHDR_FIELDS = ((16, 2), (18, 2), (24, 8), (32, 8), (40, 8), (52, 2), (54, 2), (56, 2))


def corpus() -> dict[str, list[Path]]:
    cases = sorted((ROOT / "examples").glob("*.json")) + sorted((ROOT / "tests/golden/cases").glob("*.json"))
    elfs = [p for p in sorted((ROOT / "guests/bin").glob("*.musl")) if p.stat().st_size < 30_000]
    traces = [ROOT / "traces/hello.musl.t2wt", ROOT / "traces/strings.musl.t2wt"]
    return {"case": cases, "elf": elfs, "trace": [t for t in traces if t.exists()]}


# -- damage ---------------------------------------------------------------------------------------


def damage_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 1:
            at = rng.randrange(len(out) + 1)
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 2 and out:
            at = rng.randrange(len(out))
            del out[at:at + rng.randint(1, 64)]
        else:
            return bytes(out[: rng.randrange(len(out) + 1)])
    return bytes(out)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(10)
    if pick == 0:
        return rng.choice(EDGE) * rng.choice((1, -1))
    if pick == 1:
        return rng.choice(("", "rwx", "zz", "0x10", "\u00e9", "a" * rng.randint(0, 5000)))
    if pick == 2:
        return rng.choice((True, False, None, 1.5, float("1e308")))
    if pick == 3 and depth < 3:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if pick == 4 and depth < 3:
        key = rng.choice(("addr", "size", "perms", "data", "regs", "until", "count", "x"))
        return {key: _random_value(rng, depth + 1)}
    if pick == 5:
        return 0x1000000000 * rng.randint(1, 64)  # gigantic sizes
    return rng.randint(-10, 1 << 66)


_DEEP = "__tcg2wasm_fuzz_deep__"


def _deepen(text: str) -> str:
    """Replace each deep-nesting marker by that many nested lists around a number."""
    while _DEEP in text:
        at = text.index(f'"{_DEEP}')
        end = text.index('"', at + 1)
        depth = int(text[at + 1 + len(_DEEP):end])
        text = text[:at] + "[" * depth + "7" + "]" * depth + text[end + 1:]
    return text


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _edit(rng: random.Random, doc: Any) -> Any:
    path = rng.choice(_paths(doc))
    if not path:
        return _random_value(rng)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    op = rng.randrange(5)
    if op == 0:
        del parent[key]
    elif op == 1:
        parent[key] = _random_value(rng)
    elif op == 2:  # nesting as deep as 100,000: put in as text after dumping (see _deepen)
        parent[key] = f"{_DEEP}{rng.choice((10, 1000, 100_000))}"
    elif op == 3 and isinstance(parent, dict):
        parent[rng.choice(("extra", "initial", "stop", "final", "Rax"))] = parent[key]
    else:
        parent[key] = parent[key] if not isinstance(parent[key], int) else rng.choice(EDGE)
    return doc


def damage_case(rng: random.Random, text: str) -> str:
    if rng.random() < 0.3:
        return damage_bytes(rng, text.encode()).decode("utf-8", "replace")
    doc = json.loads(text)
    for _ in range(rng.randint(1, 3)):
        doc = _edit(rng, doc)
    return _deepen(json.dumps(doc))


def bounded_case(text: str, source: str) -> str:
    """A still-valid case gets ``stop: {"count": 5000}`` so that its run ends (the damage stays)."""
    from tcg2wasm.cases import parse_cases

    try:
        parse_cases(text, source)
    except Tcg2WasmError:
        return text
    doc = json.loads(text)
    for case in doc if isinstance(doc, list) else [doc]:
        case["stop"] = {"count": 5000}
    return json.dumps(doc)


def damage_elf(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    if rng.random() < 0.25:
        return damage_bytes(rng, data)
    (phoff,) = struct.unpack_from("<Q", out, 32)
    (phnum,) = struct.unpack_from("<H", out, 56)
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.3 or not phnum:
            off, size = rng.choice(_EHDR_FIELDS)
        else:
            field, size = rng.choice(_PHDR_FIELDS)
            off = phoff + 56 * rng.randrange(phnum) + field
        if off + size <= len(out):
            value = rng.choice(EDGE + (len(data), rng.randrange(len(data) + 1)))
            out[off:off + size] = (value % (1 << (8 * size))).to_bytes(size, "little")
    return bytes(out)


def damage_trace(rng: random.Random, data: bytes) -> bytes:
    """Damage behind the checksum: decompress, change, recompress, seal (see the module docstring)."""
    from tcg2wasm.trace.format import _HEAD, _SIZES

    if rng.random() < 0.2:
        return damage_bytes(rng, data)
    _magic, _version, vlen = _HEAD.unpack_from(data)
    pos = _HEAD.size + vlen
    payload = bytearray(lzma.decompress(data[pos + _SIZES.size:]))
    (meta_len,) = struct.unpack_from("<I", payload)
    if rng.random() < 0.7:
        meta = json.loads(payload[4:4 + meta_len])
        text = _deepen(json.dumps(_edit(rng, meta))).encode()
        payload = bytearray(struct.pack("<I", len(text)) + text + payload[4 + meta_len:])
    else:
        blob = 4 + meta_len
        payload[blob:] = damage_bytes(rng, bytes(payload[blob:]))
    packed = lzma.compress(bytes(payload))
    import hashlib

    head = data[:pos] + _SIZES.pack(len(payload), len(packed), hashlib.sha256(packed).digest())
    return head + packed


# -- running ----------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``tcg2wasm ARGV`` in this process: (exit status, stderr). Exceptions escape (a failure)."""
    from tcg2wasm.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def run_elf(path: Path, engine: str) -> tuple[int, str]:
    """Load ``path`` as ``tcg2wasm run`` does (its errors reported as main reports them), run it bounded."""
    from tcg2wasm.linux.process import GuestExit, Process

    try:
        process = Process(str(path), [str(path)], env=[], engine=engine)
    except (Tcg2WasmError, OSError) as e:
        return 2, f"tcg2wasm run: error: {e}\n"
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            process.cpu.run(process.image.entry, count=ELF_BUDGET)  # system calls are handled inside
        except GuestExit:
            return 0, ""
    return 1, ""


def judge(code: int, stderr: str, path: Path) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        return ["a Python traceback on stderr", *lines[-6:]]
    if code in (0, 1):
        return []
    if code != 2:
        return [f"exit status {code}", *lines[-3:]]
    if len(lines) != 1:
        return [f"exit 2 with {len(lines)} lines on stderr (want one)", *lines[:4]]
    if path.name not in lines[0]:
        return [f"exit 2, but the message does not name the file: {lines[0][:200]}"]
    return []


class FileWorker:
    def __init__(self, options: dict[str, Any]) -> None:
        self.corpus = corpus()
        self.tmp = tempfile.TemporaryDirectory(prefix="tcg2wasm-files-")

    def close(self) -> None:
        self.tmp.cleanup()

    def run(self, seed: int) -> dict[str, Any]:
        from tcg2wasm.fuzz.kinds import traceback_failure

        rng = random.Random(seed)
        kind = rng.choice([k for k in ("case", "elf", "trace") if self.corpus[k]])
        source = rng.choice(self.corpus[kind])
        path = Path(self.tmp.name) / f"damaged-{seed}{source.suffix}"
        engine = rng.choice(("interp", "unicorn", "wasm") if kind != "trace" else ("interp", "wasm"))
        path.write_bytes(self._damaged(rng, kind, source, path))
        what = f"{kind} {source.name} damaged (seed {seed}, engine {engine})"
        saved = path.read_bytes().hex() if path.stat().st_size < 200_000 else None
        try:
            code, stderr = self._feed(kind, path, engine)
        except BaseException as e:  # SystemExit and RecursionError included: the command must never raise
            if isinstance(e, KeyboardInterrupt):
                raise
            out = traceback_failure(seed, e, what)
            out["failure"]["file"] = saved
            return out
        problems = judge(code, stderr, path)
        label = f"{kind}:exit{code}"
        if problems:
            return {"seed": seed, "labels": [label, f"{kind}:bad"],
                    "failure": {"status": "bad-error", "detail": [what, *problems], "file": saved}}
        return {"seed": seed, "labels": [label]}

    @staticmethod
    def _damaged(rng: random.Random, kind: str, source: Path, path: Path) -> bytes:
        if kind == "case":
            return bounded_case(damage_case(rng, source.read_text()), str(path)).encode("utf-8", "replace")
        if kind == "elf":
            return damage_elf(rng, source.read_bytes())
        return damage_trace(rng, source.read_bytes())

    @staticmethod
    def _feed(kind: str, path: Path, engine: str) -> tuple[int, str]:
        if kind == "case":
            return run_cli(["exec", "--engine", engine, str(path)])
        if kind == "elf":
            return run_elf(path, engine)
        return run_cli(["replay", "--engine", engine, "--no-profile", str(path)])
