"""The assembler's one exception, and where in the caller's program an instruction was written."""

from __future__ import annotations

import os
import sys

from tcg2wasm.errors import Tcg2WasmError

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

#: (file, line) of the Python statement that wrote an instruction; formatted only when an error needs it.
Where = tuple[str, int]


class AsmError(Tcg2WasmError, ValueError):
    """An instruction, operand, label or directive that cannot be assembled.

    The message starts with the Python file and line that wrote it (``where``), then the
    instruction as text, then what is wrong.
    """

    def __init__(self, message: str, where: Where | None = None) -> None:
        self.where = format_where(where) if where else ""
        super().__init__(f"{self.where}: {message}" if where else message)


def caller() -> Where:
    """The innermost frame outside this package: the line that wrote the instruction."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


def format_where(where: Where) -> str:
    """``file:line``, the file relative to the working directory when it lies under it."""
    path, line = where
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    return f"{path if rel.startswith('..') else rel}:{line}"
