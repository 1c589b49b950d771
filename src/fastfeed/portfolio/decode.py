"""Portfolio Stream Feed frames to typed records, in one pass of msgspec's JSON decoder.

The four record types form a msgspec tagged union on `update_type`, so one `Decoder` both picks
the type and fills the record in C. The only Python run per frame is `OrderUpdate.__post_init__`
(deprecated duplicates) and one store that keeps the frame on the record: `record.raw`, and the
unknown keys `record.extra`, which are parsed from it only when first asked for. Measured on the
simulator's frames (noisy 2-vCPU VM) that store costs about 100-150 ns, 10-20 % of a decode; a
second, eager dict pass to find unknown keys up front would add 150-250 %, so it is not done.

Anything wrong with a frame raises `PortfolioDecodeError` with the frame's text scrubbed of
anything that looks like a token (`fastfeed.tokens.scrub`).
"""
from __future__ import annotations

from typing import Iterable

import msgspec

from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio.records import GttUpdate, PortfolioUpdate
from fastfeed.tokens import scrub

__all__ = ["decode_update", "scrub"]

_decode = msgspec.json.Decoder(PortfolioUpdate).decode

_MAX_ERROR_TEXT = 2000  # characters of the (scrubbed) frame kept on a PortfolioDecodeError


def decode_update(raw: str | bytes, secrets: Iterable[str | bytes] = ()) -> PortfolioUpdate:
    """One Portfolio Stream Feed frame (a JSON text frame, as str or bytes) as its typed record:
    `OrderUpdate`, `PositionUpdate`, `HoldingUpdate` or `GttUpdate`.

    Raises `PortfolioDecodeError` for malformed JSON, a missing or unknown `update_type`, a missing
    required field or a value of the wrong type; its text is scrubbed of tokens and of `secrets`.
    Keys the record type does not declare are kept (`record.extra`), never fatal.
    """
    if type(raw) is not str and type(raw) is not bytes:
        raw = bytes(raw)  # a memoryview or bytearray may be reused by its owner: keep a copy
    try:
        if type(raw) is bytes and not raw.isascii():
            # msgspec skips keys a record does not declare without checking their UTF-8 (found by
            # fuzz/portfolio.py); `record.extra` would then fail. isascii() costs next to nothing.
            raw.decode("utf-8")
        record = _decode(raw)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:  # see below
        # ValidationError is a DecodeError; bad UTF-8 in a string raises UnicodeDecodeError, and an
        # unknown key nested thousands deep RecursionError.
        error = _error(exc, raw, secrets)
    else:
        record.__dict__["_raw"] = raw
        if type(record) is GttUpdate:  # rare: let each rule find its own unknown keys later
            for index, rule in enumerate(record.rules):
                d = rule.__dict__
                d["_raw"] = raw
                d["_index"] = index
        return record
    raise error  # outside the except block: the msgspec error (and its text) is not chained


def _error(exc: Exception, raw: str | bytes, secrets: Iterable[str | bytes]
           ) -> PortfolioDecodeError:
    secrets = tuple(secrets)
    reason = scrub(str(exc), secrets)
    if not isinstance(exc, msgspec.ValidationError):
        kind = "json"  # not JSON, or not UTF-8
    elif "`$.update_type`" in reason or "field `update_type`" in reason:
        kind = "update_type"
    elif reason.startswith("Object missing required field"):
        kind = "missing"
    else:
        kind = "type"
    text = scrub(raw, secrets)
    if len(text) > _MAX_ERROR_TEXT:
        text = f"{text[:_MAX_ERROR_TEXT]}... ({len(text) - _MAX_ERROR_TEXT} more characters)"
    return PortfolioDecodeError(kind, reason, text)
