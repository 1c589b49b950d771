"""Keeping access tokens out of the logs: a filter that rewrites every `Authorization` header value
and every `Bearer <token>` in a record (message, arguments, exception text) to the token's
fingerprint, and the logger picows is given for the simulator's connections."""
from __future__ import annotations

import logging
import re
from typing import Any

from fastfeed.tokens import fingerprint

# picows logs the raw upgrade request (bytes, shown with their repr) below DEBUG, so a header ends
# at a real CR/LF or at the `\r` of a repr, and a token at whitespace, a quote or a backslash.
_AUTHORIZATION = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)([^\r\n\\\"']*)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([^\s\\\"',;]+)")


def _bearer(match: re.Match[str]) -> str:
    return match.group(1) + fingerprint(match.group(2))


def _header(match: re.Match[str]) -> str:
    value = match.group(2)
    if not value.strip() or _FINGERPRINTED.match(value):
        return match.group(0)
    return match.group(1) + "<redacted>"  # a scheme other than Bearer: nothing of it is kept


_FINGERPRINTED = re.compile(r"(?i)\s*bearer\s+tok-[0-9a-f]{8}\s*$")


def scrub(text: str) -> str:
    """`text` with every Bearer token replaced by its fingerprint, and any other Authorization
    value by `<redacted>`."""
    lowered = text.lower()
    if "bearer" not in lowered and "authorization" not in lowered:
        return text
    return _AUTHORIZATION.sub(_header, _BEARER.sub(_bearer, text))


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
