"""Helpers for the PortfolioFeed tests (imported by name: tests/portfolio has no __init__.py).

Everything runs over real sockets against the simulator on 127.0.0.1; nothing is mocked."""
from __future__ import annotations

from typing import Any

from fastfeed import PortfolioFeed
from feed_helpers import FAST, Recorder, client_for, run, wait_until  # noqa: F401 (re-exported)

TOKEN = "test-token-portfolio-0123456789"
ALL_TYPES = dict(order=True, position=True, holding=True, gtt=True)
TERMINAL = {"complete", "rejected", "cancelled"}
# Order statuses the simulator moves through, as Upstox's do.
NEXT = {"put order req received": {"open", "rejected"}, "open": {"open", "complete", "cancelled"}}


def feed_for(sim: Any, token: str = TOKEN, **kwargs: Any) -> PortfolioFeed:
    return client_for(PortfolioFeed, sim, sim.portfolio_url, token, **kwargs)


def newest(sim: Any) -> Any:
    return max(sim.portfolio_sessions, key=lambda s: s.serial)


async def count_until_end(stream: Any) -> int:
    """Iterate an updates() stream to its end; how many records it gave."""
    n = 0
    async for _ in stream:
        n += 1
    return n
