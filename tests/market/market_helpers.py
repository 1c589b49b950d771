"""Helpers for the MarketFeed tests (imported by name: tests/market has no __init__.py).

Everything runs over real sockets against the simulator on 127.0.0.1; nothing is mocked."""
from __future__ import annotations

from typing import Any

from fastfeed import MarketFeed
from feed_helpers import FAST, Recorder, client_for, run, wait_until  # noqa: F401 (re-exported)

TOKEN = "test-token-standard-0123456789"
OTHER = "test-token-rolled-over-9876543210"
PLUS = "test-token-plus-5555555555"
KEYS = ["NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_INDEX|Nifty 50", "MCX_FO|434855",
        "BSE_EQ|INE467B01029"]


def feed_for(sim: Any, token: str = TOKEN, **kwargs: Any) -> MarketFeed:
    return client_for(MarketFeed, sim, sim.market_url, token, **kwargs)
