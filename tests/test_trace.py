"""Trace record/replay: the committed corpus replays; altered traces diverge; bad files are refused (exit 2)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tcg2wasm.trace import format as tf
from tcg2wasm.trace.record import record_program
from tcg2wasm.trace.replay import replay
from tcg2wasm.trace.ucrun import decode

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"
CORPUS = sorted(p.name for p in TRACES.glob("*.t2wt"))
HELLO = ROOT / "guests" / "bin" / "hello.musl"


def forbid_host_syscalls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any host system call by the guest (the syscall layer, or a write to a host fd) fail the test."""
    from tcg2wasm.linux import syscalls

    def no_host(*_args: object, **_kw: object) -> None:
        raise AssertionError("replay asked the host")

    monkeypatch.setattr(syscalls.LinuxSyscalls, "handle", no_host)
    monkeypatch.setattr(os, "write", no_host)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcg2wasm.trace", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def hello_trace() -> tf.Trace:
    return tf.load(TRACES / "hello.musl.t2wt")


def test_corpus_is_present() -> None:
    assert {"hello.musl.t2wt", "busybox-echo.t2wt"} <= set(CORPUS)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_replays_without_host_syscalls(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tf.load(TRACES / name)
    forbid_host_syscalls(monkeypatch)
    result = replay(trace)
    assert result.ok, result.report
    assert result.icount == trace.icount
    assert trace.end.kind == "exit" and trace.end.status == 0


def test_version_2_trace_still_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    """A format 2 recording (no block counts) loads, and replays with the run's own profiling."""
    trace = tf.load(TRACES / "v2" / "hello.musl.t2wt")
    assert all(b.count == 0 for b in trace.blocks)
    forbid_host_syscalls(monkeypatch)
    result = replay(trace)
    assert result.ok, result.report


def test_memory_digest_sees_one_byte_anywhere() -> None:
    """The version 3 digest leaves zero pages out; any byte written anywhere still changes it."""
    from tcg2wasm import Machine

    m = Machine()
    m.mem_map(0x10000, 0x4000, "rw")
    m.mem_map(0x7F000000, 0x200000, "rw")
    m.mem_write(0x10000, b"\x01" * 100)
    digests = {tf.memory_digest(m)}
    for addr, value in ((0x7F1FFFFF, b"\x01"), (0x7F000000, b"\x02"), (0x10000, b"\x00"), (0x13FFF, b"\x09")):
        m.mem_write(addr, value)
        digests.add(tf.memory_digest(m))
    assert len(digests) == 5
    m.mem_map(0x20000, 0x1000, "r")  # a new zero mapping changes the layout, hence the digest
    assert tf.memory_digest(m) not in digests
    assert tf.memory_digest(m, version=2) != tf.memory_digest(m, version=3)


def test_block_counts_are_the_sequence(hello_trace: tf.Trace) -> None:
    counts = [0] * len(hello_trace.blocks)
    for index in hello_trace.block_seq:
        counts[index] += 1
    assert [b.count for b in hello_trace.blocks] == counts


def test_replay_profile_skips_interpreting_hot_code() -> None:
    """With the recorded counts, hot blocks are compiled at their first miss instead of first interpreted."""
    with_profile = replay(tf.load(TRACES / "strings.musl.t2wt"))
    without_profile = replay(tf.load(TRACES / "strings.musl.t2wt"), profile=False)
    assert with_profile.ok and without_profile.ok
    assert with_profile.icount == without_profile.icount
    assert with_profile.stats["blocks_interpreted"] < without_profile.stats["blocks_interpreted"]


def test_record_then_replay_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "hello.t2wt"
    proc = _cli("record", "-o", str(out), "--every", "100", "--argv0", "hello", str(HELLO), "x")
    assert proc.returncode == 0, proc.stderr
    assert "hello from a guest with 1 argument(s)" in proc.stdout
    trace = tf.load(out)
    assert [c.kind for c in trace.checkpoints].count("blocks") >= 10
    assert trace.syscalls[-1].name == "exit_group" and trace.syscalls[-1].exit_status == 0
    assert sum(trace.blocks[i].n_insns for i in trace.block_seq) == trace.icount
    proc = _cli("replay", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{trace.icount} instructions" in proc.stdout
    assert "hello from a guest" not in proc.stdout  # replay does not write to the host


def test_recording_is_reproducible() -> None:
    a = record_program(HELLO, ["hello"], every=300)
    b = record_program(HELLO, ["hello"], every=300)
    assert a.icount == b.icount and list(a.block_seq) == list(b.block_seq)
    assert [c.regs for c in a.checkpoints] == [c.regs for c in b.checkpoints]


def test_altered_checkpoint_names_an_instruction(tmp_path: Path, hello_trace: tf.Trace) -> None:
    cp = [c for c in hello_trace.checkpoints if c.kind == "blocks"][2]
    cp.regs["r12"] ^= 0x40
    bad = tmp_path / "bad_cp.t2wt"
    tf.save(hello_trace, bad)
    proc = _cli("replay", str(bad))
    assert proc.returncode == 1
    assert f"checkpoint at icount {cp.icount}: r12" in proc.stdout
    assert "first divergent instruction" in proc.stdout and "lifted ops" in proc.stdout


def _alter_code_byte(trace: tf.Trace) -> int:
    """Change the displacement of a ``mov reg, [rsp+disp8]`` executed mid-run; returns its pc."""
    for index in trace.block_seq[len(trace.block_seq) // 3 :]:
        block = trace.blocks[index]
        for insn in decode(block.raw, block.pc):
            if insn.mnemonic == "mov" and "[rsp+" in insn.asm and insn.asm.count(",") == 1 \
                    and insn.asm.split(",")[1].startswith("[") and insn.raw[-1] in (8, 0x10, 0x18):
                for region in trace.regions:
                    if region.addr <= insn.pc < region.addr + region.size:
                        at = insn.pc + len(insn.raw) - 1 - region.addr
                        page = bytearray(region.pages[at & ~0xFFF])
                        page[at & 0xFFF] ^= 0x08
                        region.pages[at & ~0xFFF] = bytes(page)
                        return insn.pc
    raise AssertionError("no suitable instruction in the trace")


def test_altered_code_bytes_name_the_instruction(tmp_path: Path) -> None:
    trace = tf.load(TRACES / "hello.musl.t2wt")
    pc = _alter_code_byte(trace)
    bad = tmp_path / "bad_code.t2wt"
    tf.save(trace, bad)
    proc = _cli("replay", str(bad))
    assert proc.returncode == 1
    assert f"first divergent instruction: pc {pc:#x}" in proc.stdout
    assert "the code differs from the recording" in proc.stdout


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    return (TRACES / "hello.musl.t2wt").read_bytes()


def _refused(tmp_path: Path, data: bytes, expect: str) -> None:
    path = tmp_path / "t.t2wt"
    path.write_bytes(data)
    proc = _cli("replay", str(path))
    assert proc.returncode == 2
    assert expect in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_truncated_trace_is_refused(tmp_path: Path, good_bytes: bytes) -> None:
    _refused(tmp_path, good_bytes[: len(good_bytes) - 100], "truncated trace")
    _refused(tmp_path, good_bytes[:20], "truncated trace")
    _refused(tmp_path, good_bytes[:5], "file too short")


def test_corrupted_trace_is_refused(tmp_path: Path, good_bytes: bytes) -> None:
    data = bytearray(good_bytes)
    data[len(data) // 2] ^= 0xFF
    _refused(tmp_path, bytes(data), "sha256")
    _refused(tmp_path, b"GARBAGE!" + good_bytes[8:], "bad magic")


def test_wrong_version_is_refused(tmp_path: Path, good_bytes: bytes) -> None:
    data = bytearray(good_bytes)
    struct.pack_into("<H", data, 8, tf.FORMAT_VERSION + 1)
    _refused(tmp_path, bytes(data), f"format version {tf.FORMAT_VERSION + 1}")


def test_missing_trace_and_bad_usage_exit_2(tmp_path: Path) -> None:
    _refused_path = _cli("replay", str(tmp_path / "nope.t2wt"))
    assert _refused_path.returncode == 2 and "cannot read trace" in _refused_path.stderr
    proc = _cli("record", "-o", str(tmp_path / "x.t2wt"), str(tmp_path / "missing-prog"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_record_case(tmp_path: Path) -> None:
    import json

    code = bytes.fromhex("48c7c105000000" "f3aa" "4801c8" "90")  # mov rcx,5; rep stosb; add rax,rcx; nop
    case = {"name": "rep", "initial": {"regs": {"rip": 0x10000, "rdi": 0x11000, "rax": 7},
                                       "memory": [{"addr": 0x10000, "size": 0x2000, "perms": "rwx",
                                                   "data": code.hex()}]},
            "stop": {"count": 8}}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    out = tmp_path / "case.t2wt"
    proc = _cli("record", "-o", str(out), "--case", str(path))
    assert proc.returncode == 0, proc.stderr
    trace = tf.load(out)
    assert trace.icount == 8  # mov, 5 rep iterations, add, nop: Machine counting
    assert replay(trace).ok


# Every program of the user-mode corpus records and replays (compute.* is the 10^8-instruction benchmark
# program: `tools/trace_bench.py` records and replays it, outside the default test run).
USER_CORPUS = sorted(p.name for p in (ROOT / "guests" / "bin").iterdir() if not p.name.startswith("compute."))


@pytest.mark.parametrize("program", USER_CORPUS)
def test_user_corpus_program_records_and_replays(program: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = record_program(ROOT / "guests" / "bin" / program, [program, "one", "two"], every=50_000)
    forbid_host_syscalls(monkeypatch)
    result = replay(trace)
    assert result.ok, result.report
    assert result.icount == trace.icount


BUSYBOX_APPLETS = [["sha256sum", "{file}"], ["sort", "{file}"], ["gzip", "-c", "{file}"], ["wc", "{file}"]]


@pytest.mark.usefixtures("busybox")
@pytest.mark.parametrize("applet", BUSYBOX_APPLETS, ids=lambda a: a[0])
def test_busybox_applet_records_and_replays(applet: list[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    text = tmp_path / "in.txt"
    text.write_text("".join(f"{(i * 37) % 101} line {i}\n" for i in range(400)))
    argv = ["busybox", *(a.replace("{file}", str(text)) for a in applet)]
    trace = record_program(Path("/bin/busybox"), argv, every=20_000)
    text.unlink()  # replay must not need the host's files either
    forbid_host_syscalls(monkeypatch)
    result = replay(trace)
    assert result.ok, result.report
