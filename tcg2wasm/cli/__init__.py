"""The ``tcg2wasm`` command: one module per subcommand, each with a ``register(subparsers)``.

- ``exec``  run state cases on an engine, check them against their ``final`` state (execute.py)
- ``show``  a region of a case or a program: guest asm, ops before/after optimization, wat (show.py)
- ``diff``  lockstep comparison of the Machine with Unicorn, first divergence (diff.py)
- ``run``   run a static x86-64 Linux program with qemu-user's options (run.py)
- ``record``/``replay``/``trace-summary``  traces of guest runs (trace.py)
- ``fuzz``  fuzz campaigns: instruction streams against the CPU, blobs, control flow, damaged files (fuzz.py)
- ``demo``  run the bundled example programs (demo.py)

A new subcommand is a module with ``register`` added to ``COMMANDS``. Exit statuses are in
``tcg2wasm.cli.common`` (``run`` has its own: ``tcg2wasm.cli.run``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
from types import ModuleType, TracebackType

from tcg2wasm.cli import demo, diff, execute, fuzz, run, show, trace
from tcg2wasm.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ExitStatus, Parser, UsageError
from tcg2wasm.cli.show import show_text
from tcg2wasm.errors import Tcg2WasmError
from tcg2wasm.gctune import tune_for_commands

#: The subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (execute, show, diff, run, trace, fuzz, demo)
#: Commands whose words after the options go to a guest verbatim: name -> (splitter, usage-error status).
VERBATIM_TAILS = {"run": (run.split_run_argv, run.EXIT_TCG2WASM)}
#: What needs Unicorn, by the tcg2wasm module that imported it.
UNICORN_USERS = (("tcg2wasm.runtime", "the fallback for an instruction the translator does not lift yet"),
                 ("tcg2wasm.trace", "recording (it runs the guest in Unicorn)"),
                 ("tcg2wasm.oracle", "the unicorn engine and the oracle"))

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "entry", "main", "show_text"]


class _VersionAction(argparse.Action):
    """``--version``, its text made only when asked for (reading package metadata costs ~30 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the versions of tcg2wasm and its libraries and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from tcg2wasm.cli.version import version_text

        print(version_text())
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(prog="tcg2wasm", description="x86-64 to WebAssembly dynamic binary translator",
                    epilog="`tcg2wasm COMMAND --help` describes each command and its exit status.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """argparse, except that a guest's arguments (after ``run PROG``) are taken exactly as given."""
    parser = build_parser()
    k = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    verbatim = VERBATIM_TAILS.get(argv[k]) if k is not None else None
    if k is None or verbatim is None:
        return parser.parse_args(argv)
    split, parser.usage_status = verbatim  # an unknown option is reported by the top-level parser
    options, program, tail = split(argv[k + 1 :])
    args = parser.parse_args(argv[: k + 1] + options + ([] if program is None else ["--", program]))
    args.args = tail
    return args


def _unicorn_user(tb: TracebackType | None) -> str:
    """What asked for Unicorn: the outermost tcg2wasm module of UNICORN_USERS in the traceback."""
    names = [frame.f_globals.get("__name__", "") for frame, _ in traceback.walk_tb(tb)]
    for name in names:
        for prefix, what in UNICORN_USERS:
            if name.startswith(prefix):
                return what
    return "this command"


def _failure_status(args: argparse.Namespace, e: BaseException) -> int:
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return status
    return run.EXIT_TCG2WASM if args.command == "run" else EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (128 + N when the guest died by signal N)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tune_for_commands()
    where = f"tcg2wasm {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return ExitStatus(128 + signal.SIGINT, signal.SIGINT)
    except BrokenPipeError:  # our own output piped into `head` (an OSError: caught first)
        sys.stderr.close()
        return ExitStatus(128 + signal.SIGPIPE, signal.SIGPIPE) if args.command == "run" else EXIT_OK
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("unicorn"):
            raise
        print(f"{where}: error: Unicorn is not installed; {_unicorn_user(e.__traceback__)} needs it "
              "(pip install 'unicorn>=2.1.4,<2.2')", file=sys.stderr)
        return _failure_status(args, e)
    except (Tcg2WasmError, OSError) as e:
        print(f"{where}: error: {e}", file=sys.stderr)
        return _failure_status(args, e)


def die_like(status: int) -> None:
    """Leave as a process killed by ``status.signal`` would (what a shell then reports), if it has one."""
    sig = getattr(status, "signal", None)
    if not sig:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(ImportError, ValueError, OSError):  # no core file, as qemu-user makes sure
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)


def entry() -> None:
    """The installed ``tcg2wasm`` command (and ``python -m tcg2wasm``)."""
    status = main()
    die_like(status)
    sys.exit(int(status))


if __name__ == "__main__":
    entry()
