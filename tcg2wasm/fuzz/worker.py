"""A campaign worker process: ``python -m tcg2wasm.fuzz.worker KIND OPTIONS_JSON``.

Reads shards (``LO HI`` lines) on the descriptor it was given as stdin and writes one JSON line
per case, in seed order, then ``{"done": HI}``, on the one it was given as stdout; the code under
test sees /dev/null as stdin and stderr as stdout, so that a guest program can neither read the
shards nor garble the results. The supervisor
(``tcg2wasm.fuzz.campaign.Supervisor``) watches it: if the process dies or stops answering, the
seed it was on is a crash or a hang.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys

from tcg2wasm.fuzz.kinds import make_worker, traceback_failure

PR_SET_PDEATHSIG = 1


def serve(kind: str, options: dict, out: int, inp: int) -> None:
    worker = make_worker(kind, options)
    channel = os.fdopen(out, "w", buffering=1)
    try:
        for line in os.fdopen(inp, "r"):
            lo, hi = (int(x) for x in line.split())
            for seed in range(lo, hi):
                try:
                    result = worker.run(seed)
                except Exception as e:  # the worker itself failed: report it, go on with a fresh one
                    result = traceback_failure(seed, e, f"{kind} worker")
                    worker.close()
                    worker = make_worker(kind, options)
                channel.write(json.dumps(result) + "\n")
            channel.write(json.dumps({"done": hi}) + "\n")
    finally:
        worker.close()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when its supervisor dies (no orphan left running a shard)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main() -> None:
    _die_with_parent()
    kind, options = sys.argv[1], json.loads(sys.argv[2])
    out, inp = os.dup(1), os.dup(0)
    os.dup2(2, 1)  # the code under test prints to what it thinks is stdout: send that to stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # and a guest reading its stdin must not read the shards
    sys.stdout, sys.stdin = sys.stderr, os.fdopen(devnull, "r")
    if options.get("nice"):
        os.nice(int(options["nice"]))
    from tcg2wasm.gctune import tune_for_commands

    tune_for_commands()
    serve(kind, options, out, inp)


if __name__ == "__main__":
    main()
