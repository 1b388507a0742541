"""User mode: static musl/glibc programs and busybox applets through `tcg2wasm run`, against the native run."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
PROGRAMS = sorted(p.name for p in (GUESTS / "bin").iterdir())
#: "wasm" runs cold code in Unicorn (what `tcg2wasm run` does); "wasm/interp-tier" in the IR interpreter,
#: so that translated code runs from the 16th miss on and every instruction is counted.
ENGINES = ["unicorn", "wasm", "wasm/interp-tier"]


def tcg2wasm_run(engine: str, *argv: str, stdin: bytes = b"", timeout: int = 600) -> subprocess.CompletedProcess:
    engine, _, tier = engine.partition("/")
    env = os.environ | ({"TCG2WASM_COLD_TIER": tier.removesuffix("-tier")} if tier else {})
    cmd = [sys.executable, "-m", "tcg2wasm", "run", "--engine", engine, *argv]
    result = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
    if result.returncode < 0:  # killed by the guest's signal: the status a shell reports
        result.returncode = 128 - result.returncode
    return result


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("program", PROGRAMS)
def test_guest_program_matches_native_run(engine: str, program: str) -> None:
    result = tcg2wasm_run(engine, str(GUESTS / "bin" / program), "one", "two")
    expected = (GUESTS / "expected" / f"{program}.out").read_bytes()
    status = int((GUESTS / "expected" / f"{program}.status").read_text())
    assert result.stdout == expected, result.stderr.decode()[-2000:]
    assert result.returncode == status


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bb") / "in.txt"
    lines = [f"{(i * 7919) % 2003} line {i} {'x' * (i % 13)}" for i in range(2000)]
    path.write_text("\n".join(lines) + "\n")
    return path


APPLETS = [
    ["echo", "hello", "world"],
    ["sha256sum", "{file}"],
    ["md5sum", "{file}"],
    ["wc", "{file}"],
    ["sort", "{file}"],
    ["awk", "{s += $1} END {print s, NR}", "{file}"],
    ["gzip", "-c", "{file}"],
    ["ls", "-la", "{dir}"],
    ["xxd", "{file}"],
    ["sed", "s/line/LINE/g", "{file}"],
    ["bzip2", "-c", "{file}"],
]


@pytest.mark.usefixtures("busybox")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("applet", APPLETS, ids=lambda a: a[0])
def test_busybox_applet_matches_native_run(engine: str, applet: list[str], text_file: Path) -> None:
    argv = [a.replace("{file}", str(text_file)).replace("{dir}", str(text_file.parent)) for a in applet]
    native = subprocess.run([BUSYBOX, *argv], capture_output=True, timeout=60)
    result = tcg2wasm_run(engine, BUSYBOX, *argv)
    assert result.stdout == native.stdout, result.stderr.decode()[-2000:]
    assert result.returncode == native.returncode


@pytest.mark.usefixtures("busybox")
def test_busybox_awk_sum_runs_without_the_fallback(text_file: Path, tmp_path: Path) -> None:
    """awk converts every number with libc code that stores the x87 control word (fnstcw): it is lifted."""
    argv = ["awk", "{s+=$1}END{print(s)}", str(text_file)]
    native = subprocess.run([BUSYBOX, *argv], capture_output=True, timeout=60)
    stats = tmp_path / "stats.json"
    result = tcg2wasm_run("wasm/interp-tier", "--stats-json", str(stats), BUSYBOX, *argv)
    assert result.stdout == native.stdout and result.returncode == native.returncode, result.stderr.decode()[-2000:]
    assert json.loads(stats.read_text())["fallback_insns"] == 0


@pytest.mark.usefixtures("busybox")
@pytest.mark.parametrize("engine", ENGINES)
def test_busybox_gunzip_round_trip(engine: str, text_file: Path, tmp_path: Path) -> None:
    packed = tmp_path / "in.gz"
    packed.write_bytes(gzip.compress(text_file.read_bytes()))
    result = tcg2wasm_run(engine, BUSYBOX, "gzip", "-dc", str(packed))
    assert result.stdout == text_file.read_bytes(), result.stderr.decode()[-2000:]
    assert result.returncode == 0


@pytest.mark.parametrize("content, message", [
    (b"not an elf at all", "not an ELF"),
    (b"\x7fELF\x01\x01\x01" + bytes(57), "only x86-64"),
    (b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x28\x00" + bytes(44), "EM_ARM"),
    (b"\x7fELF\x02\x01\x01" + bytes(5), "malformed"),
])
def test_bad_elf_is_refused_clearly(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    result = tcg2wasm_run("wasm", str(path))
    assert result.returncode == 126  # cannot execute (as env(1) and timeout(1) say it)
    assert message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize("program, expected", [
    ("crash_segv.musl", r"READ_UNMAPPED at pc 0x[0-9a-f]+ \(48 8b 04 25 78 56 34 12: mov rax,\[12345678h\]\) "
                        r"accessing 0x12345678"),
    ("crash_ud.musl", r"INVALID_OPCODE at pc 0x[0-9a-f]+ \(0f 0b: ud2\)"),
    ("nosys.musl", r"unsupported syscall 1000 \(unknown\) at pc 0x[0-9a-f]+: returning -ENOSYS"),
])
def test_guest_errors_are_reported_clearly(program: str, expected: str) -> None:
    """What went wrong and where (pc, bytes, asm), once, on stderr; never a Python traceback."""
    result = tcg2wasm_run("wasm", str(GUESTS / "bin" / program))
    stderr = result.stderr.decode()
    assert re.search(expected, stderr), stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
