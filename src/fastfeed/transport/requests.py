"""Request frames of the market-data feed: JSON, UTF-8, sent as BINARY frames (Upstox requires
binary), split into chunks so that no request frame grows without bound."""
from __future__ import annotations

import json
import uuid
from typing import Iterator, Sequence

from fastfeed.schema import METHODS

# Keys per request frame. Upstox documents no limit; a chunk keeps each frame a few tens of KB.
DEFAULT_CHUNK = 1000


def request(method: str, keys: Sequence[str], mode: str | None = None) -> bytes:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    data: dict[str, object] = {"instrumentKeys": list(keys)}
    if method != "unsub":
        if mode is None:
            raise ValueError(f"{method} needs a mode")
        data["mode"] = mode
    body = {"guid": uuid.uuid4().hex, "method": method, "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def requests(method: str, keys: Sequence[str], mode: str | None = None,
             chunk: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """One request frame per `chunk` keys (none for no keys)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    for start in range(0, len(keys), chunk):
        yield request(method, keys[start:start + chunk], mode)
