"""wait_for() on a feed that is not running raises at once (FeedClosedError) instead of hanging."""
from __future__ import annotations

import asyncio

import pytest

from fastfeed import FeedClosedError, MarketFeed
from fastfeed.sim import Simulator

from market_helpers import KEYS, TOKEN, feed_for, run


def test_wait_for_on_a_feed_never_started_raises() -> None:
    async def main() -> None:
        feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9/v3/feed/market-data-feed", instruments=KEYS[:1])
        with pytest.raises(FeedClosedError, match="not running"):
            await asyncio.wait_for(feed.wait_for(KEYS[0]), 5)
    run(main())


def test_wait_for_on_a_closed_feed_raises_and_a_quote_that_came_is_still_given() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:1])
            async with feed:
                await feed.wait_for(KEYS[0], timeout=5)
            assert (await asyncio.wait_for(feed.wait_for(KEYS[0]), 5)).key == KEYS[0]
            with pytest.raises(FeedClosedError, match="closed"):
                await asyncio.wait_for(feed.wait_for("NSE_EQ|NEVER"), 5)
    run(main())


def test_a_waiter_is_failed_when_the_feed_closes() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:1])
            await feed.connect()
            waiting = asyncio.ensure_future(feed.wait_for("NSE_EQ|NEVER"))
            await asyncio.sleep(0)  # it has registered
            await feed.close()
            with pytest.raises(FeedClosedError):
                await asyncio.wait_for(waiting, 5)
    run(main())


def test_wait_for_from_a_thread_on_a_stopped_background_feed_raises() -> None:
    from fastfeed.sim import SimulatorThread
    with SimulatorThread(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
        with MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:1]) as feed:
            pass
        with pytest.raises(FeedClosedError):
            asyncio.run(asyncio.wait_for(feed.wait_for("NSE_EQ|NEVER"), 5))
