"""`tcg2wasm run` as qemu-x86_64 runs a program: arguments, environment, exit status, signals, usage errors.

Also the other commands' usage errors (record), show PROG, trace-summary, --version and --help.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcg2wasm.cli import main
from tcg2wasm.cli.run import guest_environment, host_environment, split_run_argv

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests" / "bin"
BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not Path(BUSYBOX).exists(), reason="busybox-static missing (make test installs it)")


def tcg2wasm(*argv: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tcg2wasm", *argv], capture_output=True, text=True, timeout=300,
                          env=env, **kw)  # type: ignore[call-overload]


def test_split_keeps_the_guest_words_exactly() -> None:
    assert split_run_argv(["-E", "A=1", "--strace", "prog", "--", "-E", "x"]) == (
        ["-E", "A=1", "--strace"], "prog", ["--", "-E", "x"])
    assert split_run_argv(["--engine=interp", "-0", "name", "--", "-prog", "a"]) == (
        ["--engine=interp", "-0", "name"], "-prog", ["a"])
    assert split_run_argv(["-EA=1", "-strace", "p"]) == (["-EA=1", "-strace"], "p", [])
    assert split_run_argv(["--strace"]) == (["--strace"], None, [])


def test_environment_edits_in_order() -> None:
    base = [b"A=1", b"B=2", b"C=3"]
    ops = [("set", "B=9"), ("set", "D=4"), ("unset", "A"), ("set", "A=5"), ("unset", "C")]
    assert guest_environment(base, ops) == [b"B=9", b"D=4", b"A=5"]


def test_python_locale_coercion_does_not_reach_the_guest() -> None:
    env = {"PATH": os.environ["PATH"], "ONLY": "this", "PYTHONPATH": str(ROOT)}
    probe = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('LC_CTYPE'))"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "C.UTF-8"  # Python coerced its own environment...
    code = "from tcg2wasm.cli.run import host_environment as h; print(sorted(h()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "LC_CTYPE" not in out and "ONLY=this" in out  # ...but passes on what it was given
    assert all(b"=" in e for e in host_environment())


@needs_busybox
def test_guest_sees_arguments_environment_and_argv0_exactly() -> None:
    env = {"PATH": "/bin:/usr/bin", "KEEP": "k", "DROP": "d", "PYTHONPATH": str(ROOT)}
    result = tcg2wasm("run", "-E", "NEW=a b", "-U", "DROP", "-U", "PYTHONPATH", "-0", "env", BUSYBOX, env=env)
    assert result.returncode == 0
    assert sorted(result.stdout.split("\n")) == ["", "KEEP=k", "NEW=a b", "PATH=/bin:/usr/bin"]
    result = tcg2wasm("run", BUSYBOX, "sh", "-c", 'echo "$0|$#|$*"', "zero", "--", "-U", "x y")
    assert result.stdout == "zero|3|-- -U x y\n"


@needs_busybox
def test_big_argument_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    big = "v" * (100 << 10)
    env = dict(os.environ, BIG=big)
    result = tcg2wasm("run", BUSYBOX, "sh", "-c", 'echo ${#BIG} ${#1}', "sh", big, env=env)
    assert result.returncode == 0 and result.stdout == "102400 102400\n", result.stderr
    # over the kernel's 128 KiB per string (in-process: the host's execve would refuse it first)
    assert main(["run", BUSYBOX, "true", "x" * (200 << 10)]) == 126
    err = capsys.readouterr().err
    assert "argument list too long" in err and err.count("\n") == 1


@needs_busybox
def test_exit_status_is_the_guests() -> None:
    for status in (0, 1, 2, 3, 125, 255):
        assert tcg2wasm("run", BUSYBOX, "sh", "-c", f"exit {status}").returncode == status


def test_crash_is_a_death_by_signal_with_one_line() -> None:
    result = tcg2wasm("run", str(GUESTS / "crash_segv.musl"))
    assert result.returncode == -signal.SIGSEGV
    assert result.stderr.startswith("tcg2wasm run: READ_UNMAPPED") and result.stderr.count("\n") == 1
    shell = subprocess.run(["bash", "-c", f'"{sys.executable}" -m tcg2wasm run {GUESTS / "crash_ud.musl"}; echo $?'],
                           capture_output=True, text=True, timeout=120)
    assert shell.stdout.strip().splitlines()[-1] == str(128 + signal.SIGILL)


@needs_busybox
def test_sigpipe_as_the_shell_sees_it() -> None:
    script = f'"{sys.executable}" -m tcg2wasm run {BUSYBOX} yes | head -2; echo "${{PIPESTATUS[0]}}"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout == "y\ny\n141\n" and "Traceback" not in result.stderr, result.stderr


@needs_busybox
def test_ctrl_c_is_sigint_without_traceback() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tcg2wasm", "run", BUSYBOX, "yes"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT and err == ""


def test_tcg2wasm_errors_are_125_126_127() -> None:
    result = tcg2wasm("run")
    assert result.returncode == 125 and "missing PROG" in result.stderr and "Traceback" not in result.stderr
    assert tcg2wasm("run", "--no-such-option", "x").returncode == 125
    result = tcg2wasm("run", "/nonexistent/prog")
    assert result.returncode == 127 and result.stderr == "tcg2wasm run: error: /nonexistent/prog: no such file\n"
    result = tcg2wasm("run", str(ROOT / "README.md"))
    assert result.returncode == 126 and "not an ELF" in result.stderr
    assert tcg2wasm("run", "-E", "novalue", "x").returncode == 125


def test_help_lists_exit_statuses() -> None:
    assert "125" in tcg2wasm("run", "--help").stdout and "127" in tcg2wasm("run", "--help").stdout
    for command in ("exec", "show", "diff", "record", "replay", "trace-summary", "demo"):
        out = tcg2wasm(command, "--help").stdout
        assert "exit status:" in out and "  2 " in out, command


def test_version_names_the_libraries() -> None:
    result = tcg2wasm("--version")
    assert result.returncode == 0 and result.stdout.startswith("tcg2wasm 0.")
    assert all(lib in result.stdout for lib in ("wasmtime", "binaryen", "unicorn", "iced-x86", "pyelftools"))


def test_record_usage_errors_come_before_recording(tmp_path: Path) -> None:
    result = tcg2wasm("record", "-o", str(tmp_path / "x"))
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == (
        "tcg2wasm record: error: missing PROG [ARGS...] (or --case CASE.json): what to record")
    t0 = time.perf_counter()
    result = tcg2wasm("record", "-o", str(tmp_path / "no" / "dir" / "x"), str(GUESTS / "hello.musl"))
    assert result.returncode == 2 and result.stdout == "" and "cannot write the trace" in result.stderr
    assert time.perf_counter() - t0 < 30  # nothing was recorded (a recording of hello takes longer)
    result = tcg2wasm("record", "-o", str(tmp_path / "t"), str(GUESTS / "crash_segv.musl"), "--case", "x")
    assert result.returncode == 0 or "not both" in result.stderr  # PROG's own words are the guest's


def test_show_a_program_at_its_entry_and_at_a_pc(capsys: pytest.CaptureFixture[str]) -> None:
    prog = str(GUESTS / "hello.musl")
    assert main(["show", "--max-blocks", "2", prog]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"# program {prog}: region at 0x")
    assert "(module" in out and "-- ops after optimization" in out
    entry = int(first.split("region at ")[1].split(",")[0], 16)
    assert main(["show", "--no-wat", "--max-blocks", "1", "--pc", hex(entry + 2), prog]) == 0
    assert capsys.readouterr().out.startswith(f"# program {prog}: region at 0x{entry + 2:x}, 1 blocks")
    assert main(["show", "--pc", "0x10", prog]) == 2
    assert "0x10" in capsys.readouterr().err


def test_trace_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace-summary", "--top", "2", str(ROOT / "traces" / "busybox-echo.t2wt")]) == 0
    out = capsys.readouterr().out
    assert "hot blocks" in out and "syscalls:" in out and "write" in out and "instruction mix, top 2:" in out
    assert main(["trace-summary", str(ROOT / "README.md")]) == 2
    assert "not a tcg2wasm trace" in capsys.readouterr().err


def test_d_logs_guest_code_ops_and_wasm(tmp_path: Path) -> None:
    """-d in_asm,op,op_opt,out_asm -D FILE: each block lifted, its ops, the optimized ops, each region's wat."""
    log = tmp_path / "d.log"
    env = os.environ | {"TCG2WASM_CACHE": "0", "TCG2WASM_COLD_TIER": "interp"}
    cmd = [sys.executable, "-m", "tcg2wasm", "run", "-d", "in_asm,op,op_opt,out_asm", "-D", str(log),
           str(GUESTS / "compute.musl")]
    result = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith(b"primes="), result.stderr[-2000:]
    text = log.read_text()
    assert text.count("IN:\n0x") > 20 and text.count("\nOP:\n") == text.count("IN:\n")
    assert "OP after optimization and liveness analysis:" in text
    assert "OUT: [region 0x" in text and "(func $region" in text


def test_d_rejects_an_unknown_item() -> None:
    result = subprocess.run([sys.executable, "-m", "tcg2wasm", "run", "-d", "in_asm,nonsense",
                             str(GUESTS / "hello.musl")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 125 and "unknown log item nonsense" in result.stderr
