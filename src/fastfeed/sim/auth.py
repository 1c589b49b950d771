"""Who may connect: access tokens, one-time redirect codes and per-token connection caps."""
from __future__ import annotations

import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Mapping

from fastfeed.tokens import fingerprint

# Upstox: 2 connections per user on a standard plan, 5 with Upstox Plus.
STANDARD_CONNECTIONS = 2
PLUS_CONNECTIONS = 5

MARKET = "market"
PORTFOLIO = "portfolio"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when absent or not Bearer."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True)
class Grant:
    """What a valid token may do."""

    fingerprint: str
    plus: bool

    @property
    def max_connections(self) -> int:
        return PLUS_CONNECTIONS if self.plus else STANDARD_CONNECTIONS


class TokenBook:
    """The configured tokens (standard or Plus) and the ones marked expired.

    With no token configured, any non-empty token is accepted as standard, so the simulator works
    out of the box with whatever a user has in UPSTOX_ACCESS_TOKEN.
    """

    def __init__(self, tokens: Iterable[str] | Mapping[str, bool] | None = None,
                 plus_tokens: Iterable[str] = ()) -> None:
        self._plus: dict[str, bool] = {}
        if isinstance(tokens, Mapping):
            for token, plus in tokens.items():
                self.add(token, plus=bool(plus))
        else:
            for token in tokens or ():
                self.add(token)
        for token in plus_tokens:
            self.add(token, plus=True)
        self._expired: set[str] = set()

    def add(self, token: str, *, plus: bool = False) -> None:
        if not token:
            raise ValueError("a token must be a non-empty string")
        self._plus[token] = plus

    def expire(self, token: str) -> None:
        """Mark a token expired: every later handshake with it gets 401, as after Upstox's rollover."""
        self._expired.add(token)

    @property
    def open_to_any(self) -> bool:
        return not self._plus

    def grant(self, token: str | None) -> Grant | None:
        """The grant of a token, or None when it must get 401."""
        if not token or token in self._expired:
            return None
        if self.open_to_any:
            return Grant(fingerprint(token), plus=False)
        plus = self._plus.get(token)
        if plus is None:
            return None
        return Grant(fingerprint(token), plus=plus)

    def __repr__(self) -> str:  # never show the tokens themselves
        return f"TokenBook({len(self._plus)} token(s), {len(self._expired)} expired)"


@dataclass
class OneTimeCode:
    code: str
    request_id: str
    kind: str
    token: str
    update_types: tuple[str, ...]
    issued_at: float

    def __repr__(self) -> str:
        return f"OneTimeCode({self.kind}, {self.request_id}, {fingerprint(self.token)})"


class CodeBook:
    """One-time redirect codes: each is honoured once, within `ttl` seconds.

    Bounded: at most `max_codes` outstanding codes are kept, the oldest forgotten first (a forgotten
    code then gets 403, as an expired one does).
    """

    def __init__(self, ttl: float = 60.0, max_codes: int = 10_000) -> None:
        self.ttl = ttl
        self.max_codes = max_codes
        self._codes: OrderedDict[str, OneTimeCode] = OrderedDict()

    def issue(self, kind: str, token: str, update_types: tuple[str, ...] = ()) -> OneTimeCode:
        code = OneTimeCode(code=secrets.token_hex(16), request_id=str(uuid.uuid4()), kind=kind,
                           token=token, update_types=update_types, issued_at=time.monotonic())
        self._codes[code.code] = code
        while len(self._codes) > self.max_codes:
            self._codes.popitem(last=False)
        return code

    def redeem(self, code: str | None, request_id: str | None, kind: str) -> OneTimeCode | None:
        """The code's record, consumed; None when unknown, used, expired or for another feed."""
        if not code:
            return None
        record = self._codes.pop(code, None)
        if record is None or record.kind != kind or record.request_id != request_id:
            return None
        if time.monotonic() - record.issued_at > self.ttl:
            return None
        return record

    def __len__(self) -> int:
        return len(self._codes)


class ConnectionCaps:
    """Open connections per (token, feed). A connection beyond the cap is refused (429)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], int] = {}

    def try_acquire(self, grant: Grant, kind: str) -> bool:
        key = (grant.fingerprint, kind)
        count = self._open.get(key, 0)
        if count >= grant.max_connections:
            return False
        self._open[key] = count + 1
        return True

    def release(self, grant: Grant, kind: str) -> None:
        key = (grant.fingerprint, kind)
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)
