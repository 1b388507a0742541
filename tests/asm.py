"""Assemble Intel-syntax x86-64 snippets with GNU as, for tests.

``assemble("add rax, rbx")`` returns the machine code bytes as linked at
``addr`` (so rip-relative operands and jumps to labels are right). Results are
cached on disk keyed by a hash of the source and address, so a test suite that
assembles the same snippets again does not pay for ``as`` each time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

_DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "asm"
_CACHE_DIR = Path(os.environ.get("TCG2WASM_ASM_CACHE", _DEFAULT_CACHE))
_PROLOGUE = ".intel_syntax noprefix\n.text\n.globl _start\n_start:\n"


class AssemblerError(Exception):
    """GNU as rejected the source; the message carries its diagnostics."""


def _cache_path(src: str, addr: int) -> Path:
    key = hashlib.sha256(f"{addr:x}\0{src}".encode()).hexdigest()[:32]
    return _CACHE_DIR / f"{key}.bin"


def _run(cmd: list[str], src: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssemblerError(f"{cmd[0]} failed on:\n{src}\n{proc.stderr.strip()}")


def assemble_uncached(src: str, addr: int = 0x10000) -> bytes:
    """Assemble ``src`` (Intel syntax, GNU directives allowed) placed at ``addr``."""
    with tempfile.TemporaryDirectory(prefix="tcg2wasm-as-") as tmp:
        d = Path(tmp)
        (d / "a.s").write_text(_PROLOGUE + src + "\n")
        _run(["as", "--64", "-o", str(d / "a.o"), str(d / "a.s")], src)
        link = ["ld", "-static", "-nostdlib", f"-Ttext=0x{addr:x}", "-e", "_start"]
        _run([*link, "-o", str(d / "a.elf"), str(d / "a.o")], src)
        _run(["objcopy", "-O", "binary", "--only-section=.text", str(d / "a.elf"), str(d / "a.bin")], src)
        return (d / "a.bin").read_bytes()


def assemble(src: str, addr: int = 0x10000) -> bytes:
    """Cached :func:`assemble_uncached`."""
    path = _cache_path(src, addr)
    if path.exists():
        return path.read_bytes()
    code = assemble_uncached(src, addr)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(code)
    tmp.replace(path)
    return code
