"""Helpers shared by the feed and simulator tests: real sockets on 127.0.0.1, nothing mocked."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from fastfeed import ReconnectPolicy

T = TypeVar("T")
# Quick retries, so reconnect tests take fractions of a second.
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, multiplier=2.0, jitter=0.1, max_attempts=20)


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
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


def client_for(cls: Any, sim: Any, url: str, token: str, **kwargs: Any) -> Any:
    """A feed client of `cls` pointed at the simulator, with quick retries and its CA trusted."""
    kwargs.setdefault("reconnect", FAST)
    kwargs.setdefault("connect_timeout", 5.0)
    if sim.tls:
        kwargs.setdefault("ssl", sim.client_ssl_context())
    return cls(token, url=url, **kwargs)


class Recorder:
    """Collects every event a feed emits, in order."""

    def __init__(self, feed: Any) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        for name in feed.EVENTS:
            feed.on(name, lambda *args, name=name: self.events.append((name, args)))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]
