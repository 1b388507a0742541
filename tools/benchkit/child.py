"""One child process, timed: wall and CPU seconds and peak RSS from its own rusage (os.wait4).

``resource.getrusage(RUSAGE_CHILDREN)`` gives the largest RSS of *any* child waited for so far, so
a small run after a big one would inherit the big one's figure; os.wait4 returns the rusage of
the one child it reaps. The child runs in a session of its own so that a timeout kills it and
anything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


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


def run_child(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300.0) -> ChildResult:
    """Run ``argv`` to its end (or kill it after ``timeout`` seconds) with stdin from /dev/null."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        fired = threading.Event()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True)
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
        out.seek(0)
        err.seek(0)
        return ChildResult(wall_seconds=wall, cpu_seconds=usage.ru_utime + usage.ru_stime,
                           max_rss_kib=usage.ru_maxrss, status=None if fired.is_set() else proc.returncode,
                           stdout=out.read(), stderr=err.read())
