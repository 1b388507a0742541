"""``tcg2wasm run [OPTIONS] PROG [ARGS...]``: run a static x86-64 Linux program, as qemu-x86_64 does.

Options are qemu-user's where qemu has one (``-E``, ``-U``, ``-0``, ``-strace``, ``-D``). Everything
after PROG goes to the guest untouched (``--`` included); the guest's environment is the one
tcg2wasm was started with (byte for byte, in its order, without the ``LC_CTYPE`` that Python's
locale coercion adds), changed by ``-E``/``-U`` in command-line order.

Exit status: the guest's own, passed through. A guest killed by a signal (SIGSEGV for a fault,
SIGPIPE writing to a closed pipe, SIGINT on Ctrl-C) kills tcg2wasm with the same signal, so a
shell sees 128 + N as for the native program. tcg2wasm's own failures use the statuses env(1)
and timeout(1) use for the same purpose: 125 (usage error or tcg2wasm failure), 126 (PROG cannot
be run: not a static x86-64 executable), 127 (PROG not found); the message on stderr starts with
``tcg2wasm run:``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tcg2wasm.cli.common import ENGINES, ExitStatus
from tcg2wasm.errors import Tcg2WasmError

EXIT_TCG2WASM, EXIT_CANNOT_RUN, EXIT_NOT_FOUND = 125, 126, 127
#: Values Python's locale coercion (PEP 538) puts in LC_CTYPE when the locale is C or POSIX.
COERCED_LC_CTYPE = (b"C.UTF-8", b"C.utf8", b"UTF-8")

EPILOG = """exit status:
  N    the guest's own exit status (0-255), passed through
  128+N  the guest was killed by signal N (tcg2wasm dies by the same signal, as qemu-user does)
  125  tcg2wasm failed: bad usage or an internal error (message starts with "tcg2wasm run:")
  126  PROG cannot be run: not a static x86-64 Linux executable
  127  PROG not found"""


class RunError(Tcg2WasmError):
    """A failure of ``run`` itself; ``status`` is 125, 126 or 127."""

    def __init__(self, message: str, status: int = EXIT_TCG2WASM) -> None:
        super().__init__(message)
        self.status = status


def _env_set(text: str) -> tuple[str, str]:
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError(f"expected VAR=VALUE, got {text!r}")
    return ("set", text)


def _env_unset(text: str) -> tuple[str, str]:
    if not text or "=" in text:
        raise argparse.ArgumentTypeError(f"expected a variable name, got {text!r}")
    return ("unset", text)


#: The options of ``run``, as (flags, argparse keywords). The guest's arguments start at the first
#: word that is neither one of these nor the value of one (tcg2wasm.cli.run.split_run_argv).
def _log_items(text: str) -> frozenset[str]:
    from tcg2wasm.runtime.translation_log import parse_items

    try:
        return parse_items(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


RUN_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--engine",), {"choices": ENGINES, "default": "wasm", "help": "executor (default: wasm)"}),
    (("-E",), {"dest": "env_ops", "action": "append", "type": _env_set, "metavar": "VAR=VALUE", "default": [],
               "help": "set an environment variable for the guest (repeatable)"}),
    (("-U",), {"dest": "env_ops", "action": "append", "type": _env_unset, "metavar": "VAR", "default": [],
               "help": "remove an environment variable from the guest's environment (repeatable)"}),
    (("-0",), {"dest": "argv0", "metavar": "ARGV0", "help": "argv[0] for the guest (default: PROG as given)"}),
    (("--strace", "-strace"), {"action": "store_true",
                               "help": "log every system call with decoded arguments and result, as "
                               "qemu-x86_64 -strace does (to stderr, or to the -D file)"}),
    (("-d",), {"dest": "log_items", "type": _log_items, "metavar": "ITEMS",
               "help": "log what the translator does, as qemu's -d: a comma list of in_asm (guest code of each "
               "block), op (its ops), op_opt (optimized ops), out_asm (each region's wasm text)"}),
    (("-D",), {"dest": "log_file", "metavar": "FILE",
               "help": "write the --strace and -d logs to FILE instead of stderr"}),
    (("--stats-json",), {"metavar": "FILE", "help": "write execution statistics (guest_insns, ...) as JSON"}),
]

_NO_VALUE_ACTIONS = ("store_true", "store_false", "count", "help", "version")


def _takes_value(flag: str) -> bool:
    for flags, kwargs in RUN_OPTIONS:
        if flag in flags:
            return kwargs.get("action") not in _NO_VALUE_ACTIONS
    return False  # unknown: argparse reports it


def _option_words(word: str) -> int:
    """How many words the option ``word`` takes up: 2 when its value is the next word."""
    if word.startswith("--"):
        return 1 if "=" in word or not _takes_value(word) else 2
    if len(word) > 2 and _takes_value(word[:2]):  # -EVAR=VALUE, -0NAME
        return 1
    return 2 if _takes_value(word) else 1


def split_run_argv(tokens: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(tcg2wasm's options, PROG, the guest's arguments exactly as given) from the words after ``run``.

    The options end at PROG, the first word that is not an option (or the word after ``--``).
    """
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word == "--":
            if i + 1 < len(tokens):
                return tokens[:i], tokens[i + 1], tokens[i + 2 :]
            return tokens[:i], None, []
        if not word.startswith("-") or word == "-":
            return tokens[:i], word, tokens[i + 1 :]
        i += _option_words(word)
    return tokens, None, []


# -- the guest's environment and arguments ---------------------------------------------------------


def _startup_environ() -> dict[bytes, bytes] | None:
    """The environment this process was started with (/proc/self/environ), before Python changed it."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    return dict(entry.partition(b"=")[::2] for entry in raw.split(b"\0") if entry)


def host_environment() -> list[bytes]:
    """The environment to pass on: os.environb, less an LC_CTYPE that Python's locale coercion added."""
    env = dict(os.environb)
    value = env.get(b"LC_CTYPE")
    if value in COERCED_LC_CTYPE:
        startup = _startup_environ()
        if startup is not None and startup.get(b"LC_CTYPE") != value:
            if b"LC_CTYPE" in startup:
                env[b"LC_CTYPE"] = startup[b"LC_CTYPE"]
            else:
                del env[b"LC_CTYPE"]
    return [k + b"=" + v for k, v in env.items()]


def guest_environment(base: list[bytes], ops: list[tuple[str, str]]) -> list[bytes]:
    """``base`` changed by -E (replace in place, else append) and -U, in order."""
    env = dict(entry.partition(b"=")[::2] for entry in base)
    for op, text in ops:
        name, _, value = os.fsencode(text).partition(b"=")
        if op == "set":
            env[name] = value
        else:
            env.pop(name, None)
    return [k + b"=" + v for k, v in env.items()]


# -- signals -------------------------------------------------------------------------------------


@contextlib.contextmanager
def native_signals() -> Iterator[None]:
    """SIGPIPE and SIGINT at their default action while the guest runs, as for a native process.

    Python ignores SIGPIPE and turns SIGINT into KeyboardInterrupt; a guest writing into a closed
    pipe must die of SIGPIPE (a shell sees 141) and Ctrl-C must end it with SIGINT (130).
    """
    saved = {sig: signal.signal(sig, signal.SIG_DFL) for sig in (signal.SIGPIPE, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# -- the command -----------------------------------------------------------------------------------


def _check_program(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise RunError(f"{path}: no such file", EXIT_NOT_FOUND)
    if p.is_dir():
        raise RunError(f"{path}: is a directory", EXIT_CANNOT_RUN)


def _open_log(path: str | None) -> IO[str]:
    if path is None:
        return sys.stderr
    try:
        return open(path, "w", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115 - closed after the run
    except OSError as e:
        raise RunError(f"{path}: cannot write the log: {e.strerror}") from None


def _make_process(args: argparse.Namespace) -> Any:
    from tcg2wasm.linux.elf import ElfLoadError
    from tcg2wasm.linux.process import Process

    _check_program(args.program)
    argv = [args.argv0 if args.argv0 is not None else args.program, *args.args]
    # str with surrogate escapes: the start-up stack encodes them back to the exact bytes (os.fsencode)
    env = [os.fsdecode(entry) for entry in guest_environment(host_environment(), args.env_ops)]
    try:
        return Process(args.program, argv, env=env, engine=args.engine)
    except ElfLoadError as e:
        raise RunError(str(e), EXIT_CANNOT_RUN) from None
    except ValueError as e:  # arguments and environment too large for the start-up stack
        raise RunError(f"{args.program}: {e}", EXIT_CANNOT_RUN) from None


def cmd_run(args: argparse.Namespace) -> int:
    if args.program is None:
        args.parser.error("missing PROG: the static x86-64 Linux program to run")
    process = _make_process(args)
    log = _open_log(args.log_file) if args.strace or args.log_items else None
    if log is not None and args.strace:
        from tcg2wasm.linux import strace

        strace.attach(process, log)
    if log is not None and args.log_items and hasattr(process.cpu, "set_translation_log"):
        from tcg2wasm.runtime.translation_log import TranslationLog

        process.cpu.set_translation_log(TranslationLog(args.log_items, log))
    sys.stdout.flush()
    with native_signals():
        result = process.run()
    if log is not None and log is not sys.stderr:
        log.close()
    if result.message:
        print(f"tcg2wasm run: {result.message}", file=sys.stderr)
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(result.stats, indent=2, sort_keys=True) + "\n")
    return ExitStatus(result.status, result.status - 128 if result.message else None)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a static x86-64 Linux program; exits with the guest's status",
                       usage="tcg2wasm run [OPTIONS] PROG [ARGS...]", usage_status=EXIT_TCG2WASM,
                       description=__doc__.split("\n\n", 1)[1].rsplit("\n\nExit status", 1)[0].replace("``", ""),
                       epilog=EPILOG)
    for flags, kwargs in RUN_OPTIONS:
        p.add_argument(*flags, **kwargs)
    p.add_argument("program", nargs="?", metavar="PROG", help="a static x86-64 Linux executable")
    p.add_argument("args", nargs="*", metavar="ARGS", help="its arguments, passed exactly as given (-- included)")
    p.set_defaults(func=cmd_run, parser=p)
