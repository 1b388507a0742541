"""``UcError``: Unicorn's exception, with Unicorn's error numbers and texts.

``str(e)`` is exactly what Unicorn's ``UcError`` prints (scripts print it), so
the explanation of what went wrong -- which call, which address -- is a note
(PEP 678): a traceback shows it under the error line, ``e.__notes__`` holds it.
"""

from __future__ import annotations

from tcg2wasm.unicorn.strerror import STRERROR

__all__ = ["UcError", "hook_handle_error"]


class UcError(Exception):
    """A Unicorn error: ``errno`` is a ``UC_ERR_*`` number; ``args`` are as Unicorn gives them."""

    def __init__(self, errno: int, *args: object, detail: str | None = None) -> None:
        super().__init__(*args)
        self.errno = errno
        if detail:
            self.add_note(f"tcg2wasm.unicorn: {detail}")

    def __str__(self) -> str:
        return STRERROR.get(self.errno, "Unknown error code")

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.errno, self.args, getattr(self, "__notes__", [])))


def _rebuild(cls: type[UcError], errno: int, args: tuple, notes: list[str]) -> UcError:
    error = cls(errno, *args)
    for note in notes:
        error.add_note(note)
    return error


def hook_handle_error(handle: object) -> KeyError:
    """``hook_del`` of a handle that is not a live hook: a ``KeyError``, as Unicorn's binding raises there.

    (Unicorn's C ``uc_hook_del`` accepts any handle; the binding then fails to find its callback.)
    """
    error = KeyError(handle)
    error.add_note(f"tcg2wasm.unicorn: hook_del: {handle!r} is not the handle of a live hook")
    return error
