"""What every subcommand shares: exit statuses, the argument parser class, small argument types.

Exit status of every command but ``run``: 0 success; 1 a mismatch, a divergence or a guest fault;
2 bad usage or bad input (one line naming the file or option, never a traceback). ``run`` passes the
guest's own status through and keeps 125-127 for its own errors (``tcg2wasm.cli.run``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from tcg2wasm.errors import Tcg2WasmError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ENGINES = ("wasm", "interp", "unicorn")

EXIT_CODES_EPILOG = """exit status:
  0  success
  1  a mismatch, a divergence or a guest fault
  2  bad usage or bad input (one line on stderr naming the file or option)"""


class UsageError(Tcg2WasmError):
    """Bad command-line input that argparse cannot see (a missing example, a bad address)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with ``usage_status`` (``run`` keeps 2 for its guests)."""

    def __init__(self, *args: Any, usage_status: int = EXIT_USAGE, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.usage_status = usage_status

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_status, f"{self.prog}: error: {message}\n")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer (decimal or 0x hex) no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r} (use decimal or 0x hex)") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text}")
        return value

    return parse


address = int_at_least(0)


class ExitStatus(int):
    """A command's exit status; ``signal`` set when the guest died by that signal (status 128 + signal).

    ``main()`` returns it as a plain number (what a shell would report); the installed command
    re-raises the signal on itself so that its parent sees a death by signal, as with the native
    program (``tcg2wasm.cli.entry``).
    """

    signal: int | None

    def __new__(cls, status: int, signal: int | None = None) -> ExitStatus:
        obj = super().__new__(cls, status)
        obj.signal = signal
        return obj
