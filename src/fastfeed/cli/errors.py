"""How a command fails: one line for the user and an exit status, never a traceback."""
from __future__ import annotations

import errno


class CommandError(Exception):
    """A failure the command has already put into words; `status` is the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, for an exception no command put into words."""
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"the address is already in use ({exc.strerror}): pick another --port, or 0 for a free one"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (OSError, TimeoutError)) and type(exc).__name__ not in text:
        text = f"{type(exc).__name__}: {text}"
    return text
