"""NATS subjects for instrument keys, reversibly.

A subject token may not hold ``.``, ``*``, ``>`` or whitespace, and instrument keys hold ``|``
and spaces (``NSE_INDEX|Nifty 50``). A key becomes a token by percent-encoding, as in URLs, every
byte of its UTF-8 outside ``A-Z a-z 0-9 _ -`` (``%`` itself included), with upper-case hex:

    NSE_EQ|INE002A01018  ->  NSE_EQ%7CINE002A01018
    NSE_INDEX|Nifty 50   ->  NSE_INDEX%7CNifty%2050

Every key has exactly one token and every token decodes to exactly one key
(``key_of(token_of(k)) == k``); a token that is not in this canonical form is refused.

Subjects, under a prefix (``upstox`` unless told otherwise):

- ``<prefix>.<token>.<parts>``: one instrument's updates. ``<parts>`` names what the update
  carried, one letter each in this order: ``l`` ltpc, ``d`` depth, ``g`` greeks, ``o`` ohlc,
  ``s`` stats (atp, vtt, oi, ...), ``i`` an initial_feed snapshot. Upstox leaves parts out of live
  ticks now and then, so the last message per subject of every ``<prefix>.<token>.*`` together
  rebuilds the instrument exactly; ``<prefix>.<token>.*`` follows one instrument.
- ``<prefix>.market_status``: the market status (segment, CAS and pre-open maps).
"""
from __future__ import annotations

import re

MARKET_STATUS = "market_status"
# Bit order of the store's PART_* flags (LTPC=1, DEPTH=2, GREEKS=4, OHLC=8, STATS=16, SNAPSHOT=32).
PART_LETTERS = "ldgosi"

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TOKEN = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def token_of(key: str) -> str:
    """The subject token of instrument `key` (see the module's docstring)."""
    if not isinstance(key, str) or not key:
        raise ValueError("an instrument key is a non-empty string")
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in key.encode("utf-8"))


def key_of(token: str) -> str:
    """The instrument key of subject token `token`; ValueError for a token token_of never makes."""
    if not isinstance(token, str) or _TOKEN.fullmatch(token) is None:
        raise ValueError(f"not an instrument token: {token!r}")
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            b = int(token[i + 1:i + 3], 16)
            if b in _SAFE:
                raise ValueError(f"not an instrument token (needless escape): {token!r}")
            raw.append(b)
            i += 3
        else:
            raw.append(ord(token[i]))
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"not an instrument token (not UTF-8): {token!r}") from None


def check_prefix(prefix: str) -> str:
    """`prefix` if it is one or more dot-separated tokens of ``A-Z a-z 0-9 _ -``."""
    if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"subject prefix must be dot-separated tokens of A-Z a-z 0-9 _ -: {prefix!r}")
    return prefix


def parts_token(parts: int) -> str:
    """The ``<parts>`` token for a store PART_* bit set."""
    return "".join(letter for bit, letter in enumerate(PART_LETTERS) if parts >> bit & 1) or "_"


def instrument_subject(prefix: str, key: str, parts: int) -> str:
    return f"{prefix}.{token_of(key)}.{parts_token(parts)}"


def instrument_filter(prefix: str, key: str) -> str:
    """The subject filter of every message of one instrument."""
    return f"{prefix}.{token_of(key)}.*"


def status_subject(prefix: str) -> str:
    return f"{prefix}.{MARKET_STATUS}"


def stream_name(prefix: str) -> str:
    """The JetStream stream holding `prefix`'s subjects (stream names allow no dots)."""
    return "FASTFEED_" + check_prefix(prefix).replace(".", "_").upper()
