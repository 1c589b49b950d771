"""Helpers for the PortfolioFeed tests (imported by name: tests/portfolio has no __init__.py).

Everything runs over real sockets against the simulator on 127.0.0.1; nothing is mocked."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from fastfeed import PortfolioFeed, ReconnectPolicy

T = TypeVar("T")
TOKEN = "test-token-portfolio-0123456789"
ALL_TYPES = dict(order=True, position=True, holding=True, gtt=True)
TERMINAL = {"complete", "rejected", "cancelled"}
# Order statuses the simulator moves through, as Upstox's do.
NEXT = {"put order req received": {"open", "rejected"}, "open": {"open", "complete", "cancelled"}}
# Quick retries, so reconnect tests take fractions of a second.
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, multiplier=2.0, jitter=0.1, max_attempts=20)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached in time: {what}")
        await asyncio.sleep(0.01)


def feed_for(sim: Any, token: str = TOKEN, **kwargs: Any) -> PortfolioFeed:
    kwargs.setdefault("reconnect", FAST)
    kwargs.setdefault("connect_timeout", 5.0)
    if sim.tls:
        kwargs.setdefault("ssl", sim.client_ssl_context())
    return PortfolioFeed(token, url=sim.portfolio_url, **kwargs)


def newest(sim: Any) -> Any:
    return max(sim.portfolio_sessions, key=lambda s: s.serial)


class Recorder:
    """Collects every event a feed emits, in order."""

    def __init__(self, feed: PortfolioFeed) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        for name in feed.EVENTS:
            feed.on(name, lambda *args, name=name: self.events.append((name, args)))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]
