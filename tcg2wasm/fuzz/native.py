"""The native oracle: run a state case on the host x86-64 CPU itself (docs/testing.md).

:class:`NativeRunner` keeps one child process (``native_runner.c``, compiled with gcc on first use
into a cache directory) that runs many cases read from a pipe. A case's memory is mapped at its own
addresses, its registers (GPRs, rip, rflags, fs/gs base, xmm0-15, MXCSR, x87 control word) are
loaded, and whatever stops the guest -- the stop address, a fault, a trap, a system call, the CPU
time limit -- is reported in the case format's stop conventions (:func:`classify`), as
``tcg2wasm.cases.RunResult`` with engine ``"native"``.

How a stop is detected:

* ``until``: the byte at the stop address must be ``int3`` (0xCC); the fuzzers put one there.
  Otherwise the runner writes one for the run (and restores it before reporting memory), which a
  guest reading its own code at that address would see (``stats["until_patched"]``).
* ``count``: the guest runs with the trap flag set and the runner counts single steps. A guest
  ``pushf`` then sees TF=1 (``stats["single_stepped"]``); the fuzzers use ``until``.
* A guest that does not stop within ``timeout_ms`` of CPU time ends as kind ``"timeout"``.

What the CPU cannot be given (``NativeUnsupported``): pages writable or executable but not
readable (x86 page tables have no such pages), addresses the runner occupies or that are not
user addresses, more than 1 GiB of memory, MXCSR reserved bits. rflags bits other than
``LOADABLE_RFLAGS`` are those of a user process (IF=1, IOPL=0).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import iced_x86 as ix

from tcg2wasm.abi import FPCW_DEFAULT, GPR_NAMES, MXCSR_DEFAULT, XMM_NAMES
from tcg2wasm.cases import Case, RunResult
from tcg2wasm.errors import Tcg2WasmError

SOURCE = Path(__file__).with_name("native_runner.c")
CFLAGS = ("-O2", "-static-pie", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fpie", "-fno-builtin",
          "-fcf-protection=none", "-Wall", "-Wextra", "-Werror")
MAGIC = 0x4E573254
VERSION = 1
NO_UNTIL = (1 << 64) - 1
DEFAULT_TIMEOUT_MS = 1000
FLAG_STEP = 1
STOP_UNTIL, STOP_SIGNAL, STOP_TIMEOUT, STOP_COUNT = 1, 2, 3, 4
STATUS_RAN, STATUS_SETUP_ERROR = 0, 1
SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGSYS = 4, 5, 7, 8, 11, 31
AUDIT_ARCH_X86_64 = 0xC000003E
#: rflags bits a case can give the CPU: the status flags, TF, DF, AC (through sigreturn), NT and ID (with
#: popf before entering); IF is always 1 and IOPL 0 in a user process.
LOADABLE_RFLAGS = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4000 | 0x40000 | 0x200000
_REGS = struct.Struct("<20Q")
_FPU = struct.Struct("<256sII")
_REQUEST_HEAD = struct.Struct("<IIQQII")
_REGION_HEAD = struct.Struct("<QQII")
_RESULT = struct.Struct("<IIiIQQQqQII")  # stop signo si_code si_arch si_addr trapno err si_syscall steps patched pad
_REG_ORDER = GPR_NAMES + ("rip", "rflags", "fs_base", "gs_base")
#: x86 exception vectors (SDM vol. 3, table 6-1) the kernel reports in the signal frame's trapno.
_VECTOR_FAULTS = {0: "DIVIDE", 6: "INVALID_OPCODE", 12: "SS", 13: "GP", 16: "X87_FP", 17: "ALIGNMENT",
                  19: "SIMD_FP"}


class NativeUnsupported(Tcg2WasmError):
    """The case cannot be run on the CPU as given (the message says why)."""


class NativeRunnerError(Tcg2WasmError):
    """The runner could not be built or died."""


def cache_dir() -> Path:
    base = os.environ.get("TCG2WASM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tcg2wasm")
    return Path(base)


def runner_path(cc: str = "gcc") -> Path:
    """The compiled runner, built on first use (keyed by the source and flags, so edits rebuild it)."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    target = cache_dir() / f"native-runner-{key}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise NativeRunnerError(f"cannot build the native runner with {cc}: {proc.stderr.strip()[:500]}")
        os.replace(tmp, target)  # atomic: parallel jobs may build at once
    except FileNotFoundError:
        raise NativeRunnerError(f"cannot build the native runner: {cc} not found (apt-get install gcc)") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@dataclass
class RawResult:
    """What the runner reports, before it is put in the case format's terms."""

    stop: int
    signo: int
    si_code: int
    si_arch: int
    si_addr: int
    trapno: int
    err: int
    si_syscall: int
    steps: int
    patched: bool
    regs: dict[str, int]
    memory: list[tuple[int, bytes]]


def _check_native(case: Case) -> None:
    for r in case.memory:
        if ("w" in r.perms or "x" in r.perms) and "r" not in r.perms:
            raise NativeUnsupported(f"{case.name}: mapping 0x{r.addr:x} is {r.perms!r}: x86 pages that are "
                                    "writable or executable are readable too")
        if r.end > 1 << 47:
            raise NativeUnsupported(f"{case.name}: mapping 0x{r.addr:x} is not in the user address space")
    mxcsr = case.regs.get("mxcsr", MXCSR_DEFAULT)
    if mxcsr >> 16:
        raise NativeUnsupported(f"{case.name}: mxcsr 0x{mxcsr:x} has reserved bits set")


def encode_request(case: Case, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> bytes:
    """The runner's request for ``case`` (layout: struct request and regions in native_runner.c)."""
    _check_native(case)
    regs = case.regs
    until = case.stop.until if case.stop.until is not None else NO_UNTIL
    count = case.stop.count or 0
    flags = FLAG_STEP if case.stop.count is not None else 0
    xmm = b"".join(regs.get(name, 0).to_bytes(16, "little") for name in XMM_NAMES)
    values = [regs.get(name, 0) for name in _REG_ORDER]
    values[_REG_ORDER.index("rflags")] = regs.get("rflags", 0x2)
    parts = [_REQUEST_HEAD.pack(MAGIC, len(case.memory), until, count, timeout_ms, flags), _REGS.pack(*values),
             _FPU.pack(xmm, regs.get("mxcsr", MXCSR_DEFAULT), regs.get("fpcw", FPCW_DEFAULT))]
    for r in case.memory:
        perms = ("r" in r.perms) | ("w" in r.perms) << 1 | ("x" in r.perms) << 2
        parts.append(_REGION_HEAD.pack(r.addr, r.size, perms, len(r.data)))
        parts.append(r.data)
    return b"".join(parts)


class NativeRunner:
    """One runner process, reused across cases; restarted if it dies."""

    def __init__(self, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.timeout_ms = timeout_ms
        self._path = runner_path()
        self._proc: subprocess.Popen[bytes] | None = None
        self.cases_run = 0
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(self._path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
        assert proc.stdout is not None
        hello = _read_exact(proc.stdout, 12)
        magic, version, result_size = struct.unpack("<III", hello) if len(hello) == 12 else (0, 0, 0)
        if magic != MAGIC or version != VERSION or result_size != _RESULT.size + _REGS.size + _FPU.size:
            proc.kill()
            raise NativeRunnerError(f"{self._path}: not a native runner of protocol version {VERSION}")
        return proc

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()

    def __enter__(self) -> NativeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_raw(self, case: Case) -> RawResult:
        request = encode_request(case, timeout_ms=self.timeout_ms)
        if self._proc is None:
            self._proc = self._start()
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request)
            raw = self._read_result(proc, case)
        except (BrokenPipeError, NativeRunnerError) as e:
            self._died(proc, e)
            raise
        self.cases_run += 1
        return raw

    def _died(self, proc: subprocess.Popen[bytes], e: Exception) -> None:
        self._proc = None
        self.restarts += 1
        proc.kill()
        proc.wait()
        detail = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if detail and isinstance(e, NativeRunnerError):
            e.args = (f"{e.args[0]}: {detail}",)

    def _read_result(self, proc: subprocess.Popen[bytes], case: Case) -> RawResult:
        assert proc.stdout is not None
        head = _read_exact(proc.stdout, 8)
        if len(head) != 8:
            raise NativeRunnerError(f"native runner died running {case.name}")
        magic, status = struct.unpack("<II", head)
        if magic != MAGIC:
            raise NativeRunnerError("native runner protocol out of step")
        if status == STATUS_SETUP_ERROR:
            (n,) = struct.unpack("<I", _read_exact(proc.stdout, 4))
            raise NativeUnsupported(f"{case.name}: {_read_exact(proc.stdout, n).decode(errors='replace')}")
        body = _read_exact(proc.stdout, _RESULT.size + _REGS.size + _FPU.size)
        fields = _RESULT.unpack_from(body)
        regs = dict(zip(_REG_ORDER, _REGS.unpack_from(body, _RESULT.size), strict=True))
        xmm, mxcsr, fpcw = _FPU.unpack_from(body, _RESULT.size + _REGS.size)
        regs |= {name: int.from_bytes(xmm[16 * i:16 * i + 16], "little") for i, name in enumerate(XMM_NAMES)}
        regs |= {"mxcsr": mxcsr, "fpcw": fpcw & 0xFFFF}
        memory = [(r.addr, _read_exact(proc.stdout, r.size)) for r in case.memory if "w" in r.perms]
        stop, signo, si_code, si_arch, si_addr, trapno, err, si_syscall, steps, patched, _ = fields
        return RawResult(stop, signo, si_code, si_arch, si_addr, trapno, err, si_syscall, steps, bool(patched),
                         regs, memory)

    def run(self, case: Case) -> RunResult:
        """Run ``case`` on the CPU: a ``RunResult`` like every other engine's (engine ``"native"``)."""
        raw = self.run_raw(case)
        stop = classify(case, raw)
        if stop["kind"] == "until" or stop["kind"] in ("interrupt", "hlt", "syscall"):
            raw.regs["rip"] = stop["pc"]
        stats: dict[str, Any] = {"guest_insns": raw.steps if case.stop.count is not None else None,
                                 "fallback_insns": 0, "signal": raw.signo or None, "trapno": raw.trapno,
                                 "until_patched": raw.patched, "single_stepped": case.stop.count is not None}
        return RunResult(case.name, "native", raw.regs, raw.memory, stop, stats)


def _read_exact(stream: Any, n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# -- stops in the case format's terms ----------------------------------------------------------


def _stop(kind: str, pc: int, fault: str | None = None, address: int | None = None, vector: int | None = None,
          message: str = "") -> dict[str, Any]:
    return {"kind": kind, "pc": pc, "fault": fault, "address": address, "message": message, "vector": vector}


def case_bytes(case: Case, raw: RawResult | None, addr: int, n: int = 15) -> bytes:
    """Up to ``n`` bytes at ``addr`` as the guest saw them last (written memory first, else initial)."""
    for base, data in raw.memory if raw is not None else ():
        if base <= addr < base + len(data):
            return data[addr - base:addr - base + n]
    for r in case.memory:
        if r.addr <= addr < r.end:
            image = r.data + bytes(max(0, min(r.size, addr - r.addr + n) - len(r.data)))
            return image[addr - r.addr:addr - r.addr + n]
    return b""


def _decode(case: Case, raw: RawResult, addr: int) -> ix.Instruction | None:
    code = case_bytes(case, raw, addr)
    if not code:
        return None
    ins = ix.Decoder(64, code, ip=addr).decode()
    return None if ins.is_invalid else ins


def _page_fault(case: Case, raw: RawResult) -> dict[str, Any]:
    """#PF: the access kind from the error code (SDM vol. 3, 4.7), unmapped vs protection from the layout."""
    access = "FETCH" if raw.err & 0x10 else "WRITE" if raw.err & 0x2 else "READ"
    mapped = any(r.addr <= raw.si_addr < r.end for r in case.memory)
    kind = f"{access}_{'PROT' if mapped else 'UNMAPPED'}"
    pc = raw.regs["rip"]
    return _stop("fault", pc, kind, raw.si_addr)


def _general_protection(case: Case, raw: RawResult) -> dict[str, Any]:
    """#GP: `int n` through a gate user mode may not use (error code n*8+2), user-mode hlt, or a real #GP."""
    pc = raw.regs["rip"]
    ins = _decode(case, raw, pc)
    if raw.err & 7 == 2 and ins is not None and ins.mnemonic == ix.Mnemonic.INT:
        return _stop("interrupt", ins.next_ip, vector=raw.err >> 3)
    if raw.err == 0 and ins is not None and ins.mnemonic == ix.Mnemonic.HLT:
        return _stop("hlt", ins.next_ip)  # the case format's hlt stop; the CPU raises #GP at CPL 3
    return _stop("fault", pc, "GP")


def classify(case: Case, raw: RawResult) -> dict[str, Any]:
    """The stop dictionary (kind, pc, fault, address, vector, message) the other engines would give."""
    stop = _classify(case, raw)
    stop["message"] = _message(stop, raw)
    return stop


def _classify(case: Case, raw: RawResult) -> dict[str, Any]:
    rip = raw.regs["rip"]
    if raw.stop == STOP_UNTIL:
        return _stop("until", case.stop.until if case.stop.until is not None else rip)
    if raw.stop == STOP_COUNT:
        return _stop("count", rip)
    if raw.stop == STOP_TIMEOUT:
        return _stop("timeout", rip)
    if raw.signo == SIGSYS:
        if raw.si_arch == AUDIT_ARCH_X86_64:
            return _stop("syscall", rip)
        return _stop("interrupt", rip, vector=0x80)  # int 0x80: the 32-bit system call gate
    if raw.signo == SIGTRAP and raw.trapno in (1, 3):
        return _stop("interrupt", rip, vector=raw.trapno)  # int3 / int 3 / int1 (icebp) / a TF trap: rip is next
    if raw.trapno == 14:
        return _page_fault(case, raw)
    if raw.trapno == 13:
        return _general_protection(case, raw)
    if raw.trapno == 4:
        return _stop("interrupt", rip, vector=4)  # int 4 / CD 04 (a trap gate of DPL 3)
    if raw.trapno in _VECTOR_FAULTS:
        return _stop("fault", rip, _VECTOR_FAULTS[raw.trapno])
    return _stop("fault", rip, f"SIGNAL_{raw.signo}_VECTOR_{raw.trapno}")


def _message(stop: dict[str, Any], raw: RawResult) -> str:
    where = f"{stop['kind']} {stop['fault'] or ''}".strip() + f" at pc 0x{stop['pc']:x}"
    if stop["address"] is not None:
        where += f", address 0x{stop['address']:x}"
    if stop["vector"] is not None:
        where += f", vector 0x{stop['vector']:x}"
    if raw.signo:
        where += f" (signal {raw.signo}, vector {raw.trapno}, error code 0x{raw.err:x})"
    return where


_shared: NativeRunner | None = None


def run_native(case: Case) -> RunResult:
    """Run ``case`` on the CPU with a runner shared by the calls of this process."""
    global _shared
    if _shared is None:
        _shared = NativeRunner()
    return _shared.run(case)
