"""One child process, timed: wall and CPU seconds and peak RSS from its own rusage (os.wait4).

``resource.getrusage(RUSAGE_CHILDREN)`` gives the largest RSS of *any* child waited for so far, so
a small run after a big one would inherit the big one's figure; os.wait4 returns the rusage of
the one child it reaps. But Linux keeps a process's peak RSS across exec, and a forked (or
vforked) child starts with its parent's: every child of the harness would report at least the
harness's own peak (35 MiB measured). So the program is started by a minimal launcher (``python
-I -S``, LAUNCHER below) that forks it, reaps it with os.wait4 and writes its exit status and
rusage to a file: the floor is then the launcher's RSS (about 6 MiB measured), not the
harness's; it also times the program from fork to reaping, so its own start-up is not counted.
The launcher runs in a session of its own so that a timeout kills it, the program
and anything the program started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChildResult:
    wall_seconds: float
    cpu_seconds: float  # user + system of the child (and of descendants it waited for)
    max_rss_kib: int
    status: int | None  # exit status, -N for signal N, None when it was killed at the timeout
    stdout: bytes
    stderr: bytes

    @property
    def timed_out(self) -> bool:
        return self.status is None


def _kill_group(pid: int, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(pid, signal.SIGKILL)


# argv[1]: where the status and rusage go; argv[2:]: the program. Exit 127 if it cannot be started.
LAUNCHER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        os.write(2, f"cannot run {sys.argv[2]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {wall}")
"""


def _launched(report: Path) -> tuple[int, int, float, float] | None:
    """(exit status, peak RSS KiB, CPU seconds, wall seconds from fork to reaping) the launcher
    wrote, or None (it was killed)."""
    try:
        status, rss, cpu, wall = report.read_text().split()
        return int(status), int(rss), float(cpu), float(wall)
    except (OSError, ValueError):
        return None


def run_child(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300.0) -> ChildResult:
    """Run ``argv`` to its end (or kill it after ``timeout`` seconds) with stdin from /dev/null."""
    with tempfile.TemporaryDirectory(prefix="tcg2wasm-child-") as tmp, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        report = Path(tmp) / "rusage"
        fired = threading.Event()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, str(report), *argv],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, (proc.pid, fired))
        timer.start()
        try:
            _, wait_status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: take the child down with us
            _kill_group(proc.pid, fired)
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(wait_status)  # reaped here, not by Popen
        launched = _launched(report)
        out.seek(0)
        err.seek(0)
        if launched is None:  # the launcher itself was killed (the timeout) or failed
            status, rss, cpu = proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        else:  # the program's own figures: the launcher's start-up (~20 ms) is not the program's
            status, rss, cpu, wall = launched
        return ChildResult(wall_seconds=wall, cpu_seconds=cpu, max_rss_kib=rss,
                           status=None if fired.is_set() else status, stdout=out.read(), stderr=err.read())
