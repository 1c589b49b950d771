"""Keeping access tokens out of the simulator's logs: a filter that passes every record (message,
arguments, exception text) through `fastfeed.tokens.scrub`, and the logger picows is given for the
simulator's connections."""
from __future__ import annotations

import logging
from typing import Any

from fastfeed.tokens import scrub


class RedactTokens(logging.Filter):
    """Rewrites a record so that no token survives in it, whatever the level or the format."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep its parts, scrubbed, rather than drop it
            message = f"{record.msg!s} {record.args!r}"
        record.msg = scrub(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


REDACT = RedactTokens()


def redacting_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with the token filter attached (once)."""
    logger = logging.getLogger(name)
    if REDACT not in logger.filters:
        logger.addFilter(REDACT)
    return logger


def picows_logger(name: str = "picows.fastfeed.sim") -> logging.LoggerAdapter[Any]:
    """The logger to hand to picows for the simulator's connections.

    picows logs the raw upgrade request, Authorization header included, below DEBUG. Given a
    `logging.Logger`, it logs through a child logger per connection, and a logger's filters do not
    apply to records propagated from its children; given an adapter it logs through the adapter,
    so every record goes through the filter on `name`.
    """
    return logging.LoggerAdapter(redacting_logger(name), {})
