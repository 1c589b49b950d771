"""How an access token may appear anywhere: as a fingerprint, never itself.

One scrubber for the whole package: the client's logs and errors, the portfolio decoder's errors
and the simulator's logs all go through `scrub`, so a credential is hidden the same way wherever
it turns up.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

_FINGERPRINT = re.compile(r"tok-[0-9a-f]{8}")
# `Bearer <token>`, also URL-encoded (`bearer%20...`, `bearer+...`).
_BEARER = re.compile(r"(?i)\b(bearer)(?:\s+|%20|\+)([A-Za-z0-9\-._~+/=%]+)")
# Upstox access tokens are JWTs.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# An Authorization header or key: its whole value, whatever the scheme. picows logs the raw upgrade
# request as a bytes repr, so a value also ends at the backslash of a `\r`, or at a quote.
_AUTHORIZATION = re.compile(r"(?i)(authorization[\"']?(?:\s*:\s*|=)[\"']?)([^\r\n\\\"'&]+)")
# The value of a credential key in JSON (`"code": ...`) or a query string (`code=...`, no spaces);
# prose ("close code: 1000") and source code in a traceback (`token = ...`) are left alone, and
# `instrument_token` is not `token`.
_KEYS = r"(?:access_token|extended_token|refresh_token|client_secret|api_secret|token|code)"
_SECRET_VALUE = re.compile(
    rf"""(?ix)
    (?<![\w])
    ( ["']{_KEYS}["']\s*:\s*["']? | {_KEYS}=["']? )
    ([^"'&\s,;}}]+)
    """
)
_TRIGGERS = ("bearer", "authorization", "eyj", "token", "code", "secret")


def fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for a token."""
    return "tok-" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _hidden(value: str) -> str:
    return value if _FINGERPRINT.fullmatch(value) else fingerprint(value)


def _bearer(match: re.Match[str]) -> str:
    return f"{match.group(1)} {_hidden(match.group(2))}"


def _keyed(match: re.Match[str]) -> str:
    value = match.group(2)
    kept = value.strip()
    if not kept:
        return match.group(0)
    scheme, _, rest = kept.partition(" ")
    if scheme.lower() == "bearer" and _FINGERPRINT.fullmatch(rest.strip()):
        return match.group(0)  # already scrubbed by _BEARER
    return match.group(1) + _hidden(kept) + value[len(value.rstrip()):]


def scrub(text: str | bytes | bytearray | memoryview, secrets: Iterable[str | bytes] = (), *,
          patterns: bool = True) -> str:
    """`text` as a str with every credential in it replaced by its `fingerprint`.

    Hides every string in `secrets` (the longest first) and, with `patterns`, what looks like a
    credential: `Bearer <token>` (also URL-encoded), JWT-shaped strings, the whole value of an
    Authorization header whatever its scheme, and the values of keys such as `access_token`,
    `token` and `code` in JSON or query strings. Without `patterns`, text that holds none of
    `secrets` comes back unchanged: for a caller that knows every token it must hide.
    """
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    for secret in sorted({s.decode("utf-8", "replace") if isinstance(s, (bytes, bytearray)) else s
                          for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, fingerprint(secret))
    if not patterns:
        return text
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    text = _BEARER.sub(_bearer, text)
    text = _JWT.sub(lambda m: fingerprint(m.group(0)), text)
    text = _AUTHORIZATION.sub(_keyed, text)
    return _SECRET_VALUE.sub(_keyed, text)


class Scrubber:
    """`scrub` of the tokens one feed has used (the newest `keep` of them). The feed knows them
    all, so no pattern is applied: a message comes back unchanged unless it holds one, which
    is how the transport tells a cause that must not be chained (`attempt_error`)."""

    def __init__(self, keep: int = 4) -> None:
        self._tokens: tuple[str, ...] = ()
        self._keep = keep

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens scrubbed, newest first (an immutable tuple, replaced on every add)."""
        return self._tokens

    def add(self, token: str) -> None:
        if token and token not in self._tokens:
            self._tokens = (token, *self._tokens)[: self._keep]

    def __call__(self, text: str) -> str:
        return scrub(text, self._tokens, patterns=False)
