"""Helpers for the capture tests (imported by name: tests/capture has no __init__.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastfeed import MarketFeed, Quote
from feed_helpers import FAST

TOKEN = "capture-test-token-7f3c9a1e"
KEYS = ["NSE_EQ|INE002A01018", "NSE_INDEX|Nifty 50", "NSE_FO|43919", "NSE_EQ|INE467B01029",
        "BSE_EQ|INE002A01018"]


def wait(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time: {what}")
        time.sleep(0.01)


@dataclass
class Recording:
    path: Path
    quotes: dict[str, Quote]
    stats: dict[str, Any]
    updates: int
    frames: int


def record_session(sim: Any, path: Path, *, updates: int = 3000, mode: str = "full",
                   during: Callable[[MarketFeed], None] | None = None, **kwargs: Any) -> Recording:
    """Run a MarketFeed against `sim` with ``record=path`` until `updates` updates arrived (and
    `during(feed)` ran), stop it; the live quotes at the end."""
    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS, mode=mode, reconnect=FAST,
                      record=path, **kwargs)
    feed.start(timeout=20)
    try:
        if during is not None:
            during(feed)
        wait(lambda: feed.decoder.updates >= updates, what=f"{updates} updates")
    finally:
        feed.stop()
    stats = feed.stats()
    return Recording(path, {k: feed.quote(k) for k in feed.instruments}, stats,
                     feed.decoder.updates, feed.decoder.frames)
