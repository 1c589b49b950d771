"""busy_poll on MarketFeed and PortfolioFeed, against the simulator over real sockets: data still
arrives, the loop keeps turning while it waits, and busy_poll=<seconds> goes back to sleeping
after that long without a message and wakes at the next one (told by the spinner's counters)."""
from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np
import pytest

from fastfeed import MarketFeed, PortfolioFeed
from fastfeed.sim import Simulator, SimulatorThread
from fastfeed.transport.busy_poll import BusyPoll

from feed_helpers import client_for, run, wait_until

TOKEN = "test-token-busy-poll-0123456789"
KEY = "NSE_EQ|INE002A01018"


def market(sim: Any, **kwargs: Any) -> MarketFeed:
    return client_for(MarketFeed, sim, sim.market_url, TOKEN, ping_interval=None, **kwargs)


def spinner(feed: Any) -> dict[str, Any]:
    return feed.stats()["busy_poll"]


def test_busy_poll_option_values() -> None:
    assert BusyPoll.from_option(False) is None and BusyPoll.from_option(None) is None
    assert BusyPoll.from_option(True).spin_seconds is None  # type: ignore[union-attr]
    assert BusyPoll.from_option(math.inf).spin_seconds is None  # type: ignore[union-attr]
    assert BusyPoll.from_option(0.25).spin_seconds == 0.25  # type: ignore[union-attr]
    for bad in (0, -1.0, math.nan):
        with pytest.raises(ValueError):
            MarketFeed(TOKEN, busy_poll=bad)
    with pytest.raises(TypeError):
        PortfolioFeed(TOKEN, busy_poll="yes")  # type: ignore[arg-type]
    feed = MarketFeed(TOKEN, busy_poll=0.5)
    assert feed.busy_poll == 0.5 and spinner(feed)["spinning"] is False
    assert MarketFeed(TOKEN).stats()["busy_poll"] is None


def test_market_feed_busy_poll_gets_data_and_keeps_the_loop_turning() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
            feed = market(sim, instruments=[KEY], mode="full", busy_poll=True)
            seen: list[tuple[float, float]] = []

            def on_update(records: Any) -> None:
                row = feed.snapshot[records["row"][-1]]
                seen.append((float(records["ltp"][-1]), float(row["ltp"])))

            feed.on_update(on_update)
            async with feed:
                await wait_until(lambda: len(seen) >= 20, what="updates while busy-polling")
                first = spinner(feed)["spins"]
                # The spinner is a callback of this very loop: it turns while we wait here.
                await wait_until(lambda: spinner(feed)["spins"] > first + 100, what="spins")
                state = spinner(feed)
                assert state["spinning"] and state["sleeps"] == 0 and state["spin_seconds"] is None
            assert all(a == b for a, b in seen)
            assert feed.quote(KEY).ltp == seen[-1][0]  # type: ignore[union-attr]
            assert spinner(feed)["spinning"] is False  # closed: the loop sleeps normally again
    run(main())


def test_busy_poll_keeps_a_decoder_of_its_own_warm_and_the_feed_never_sees_it() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
            feed = market(sim, instruments=[KEY], mode="full", busy_poll=True)
            calls: list[int] = []
            feed.on_update(lambda records: calls.append(len(records)))
            async with feed:
                await wait_until(lambda: spinner(feed)["warmups"] > 1000, what="warm-ups")
                listener = feed._listener
                warm = feed._poller._warm  # type: ignore[union-attr]
                # A recent frame of the feed's, decoded again and again into the spinner's
                # decoder: the feed's decoder has each frame once, its callbacks each update once.
                assert listener.sample is not None and warm.errors == 0
                assert warm.frames >= spinner(feed)["warmups"] > 1000
                assert feed.decoder.frames <= listener.frames < 1000
                assert sum(calls) <= feed.decoder.updates
                assert warm.quote(KEY) is not None
                assert warm.store is not feed.decoder.store
    run(main())


def test_busy_poll_seconds_sleeps_when_quiet_and_wakes_at_the_next_frame() -> None:
    async def main() -> None:
        # No subscription: after the market_info frame at open, nothing comes until we subscribe.
        async with Simulator(tokens=[TOKEN], rate=2, ping_interval=None) as sim:
            feed = market(sim, busy_poll=0.05)
            async with feed:
                await wait_until(lambda: feed.decoder.market_info_frames >= 1 and
                                 spinner(feed)["sleeps"] >= 1 and not spinner(feed)["spinning"],
                                 what="the spinner going to sleep after the market_info frame")
                asleep = spinner(feed)
                await asyncio.sleep(0.2)  # nothing arrives: it stays asleep and does not spin
                assert spinner(feed)["spins"] == asleep["spins"] and not spinner(feed)["spinning"]
                frames = feed.decoder.frames
                feed.subscribe([KEY], "ltpc")
                await wait_until(lambda: feed.decoder.frames > frames, what="the snapshot frame")
                await wait_until(lambda: spinner(feed)["wakeups"] > asleep["wakeups"],
                                 what="a wakeup by the frame")
                assert spinner(feed)["spins"] > asleep["spins"]
                # two ticks a second: it spins after each, then sleeps again in between
                await wait_until(lambda: spinner(feed)["sleeps"] >= asleep["sleeps"] + 2,
                                 what="sleeping again")
                assert spinner(feed)["wakeups"] >= spinner(feed)["sleeps"] - 1
    run(main())


def test_busy_poll_in_the_background_thread() -> None:
    with SimulatorThread(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
        feed = market(sim, instruments=[KEY], mode="ltpc", busy_poll=True)
        got: list[Any] = []
        feed.on_quote(KEY, got.append)
        with feed:
            limit = time.monotonic() + 30
            while len(got) < 200 and time.monotonic() < limit:  # quotes come on the feed's thread
                time.sleep(0.01)
            assert len(got) >= 200
            state = spinner(feed)
            assert state["spinning"] and state["spins"] > 0
        assert [q.key for q in got[:5]] == [KEY] * 5
        assert got[-1].updates >= 200
        assert spinner(feed)["spinning"] is False


def test_portfolio_feed_busy_poll_gets_records_and_sleeps_when_quiet() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=100, ping_interval=None) as sim:
            feed = client_for(PortfolioFeed, sim, sim.portfolio_url, TOKEN, ping_interval=None,
                              busy_poll=True)
            records: list[Any] = []
            feed.on_update(records.append)
            async with feed:
                await wait_until(lambda: len(records) >= 20, what="portfolio records")
                assert spinner(feed)["spinning"] and spinner(feed)["spins"] > 0
                assert spinner(feed)["warmups"] == 0  # no decoder to warm on a JSON feed
            assert all(r.update_type == "order" for r in records)
            assert len(feed.orders) > 0
        async with Simulator(tokens=[TOKEN], portfolio_rate=2, ping_interval=None) as sim:
            feed = client_for(PortfolioFeed, sim, sim.portfolio_url, TOKEN, ping_interval=None,
                              busy_poll=0.05)
            async with feed:
                await wait_until(lambda: spinner(feed)["sleeps"] >= 1 and spinner(feed)["wakeups"] >= 1,
                                 what="sleeping between records and waking at the next")
    run(main())


def test_the_compat_streamers_take_busy_poll() -> None:
    from fastfeed.compat import MarketDataStreamerV3, PortfolioDataStreamer

    with SimulatorThread(tokens=[TOKEN], rate=200, portfolio_rate=100, ping_interval=None) as sim:
        market = MarketDataStreamerV3(TOKEN, [KEY], "ltpc", url=sim.market_url, busy_poll=True)
        portfolio = PortfolioDataStreamer(TOKEN, url=sim.portfolio_url, busy_poll=0.5)
        got: dict[str, list[Any]] = {"market": [], "portfolio": []}
        market.on("message", got["market"].append)
        portfolio.on("message", got["portfolio"].append)
        market.connect()
        portfolio.connect()
        try:
            limit = time.monotonic() + 30
            while min(map(len, got.values())) < 5 and time.monotonic() < limit:
                time.sleep(0.01)
            assert min(map(len, got.values())) >= 5
            assert spinner(market.feed)["spin_seconds"] is None and spinner(market.feed)["spins"] > 0
            assert spinner(portfolio.feed)["spin_seconds"] == 0.5
        finally:
            market.disconnect()
            portfolio.disconnect()
        assert any(KEY in m.get("feeds", {}) for m in got["market"])


@pytest.mark.parametrize("mode", ["ltpc", "full", "full_d30"])
def test_touch_changes_nothing_a_feed_holds(mode: str) -> None:
    # What busy polling's prefetch between frames may not do: change a row, the ring, a count,
    # the next frame's result, or the callbacks' view and latency samples.
    from fastfeed.benchmark.frames import frame, instrument_keys

    feed, twin = MarketFeed(TOKEN, url="ws://127.0.0.1:9"), MarketFeed(TOKEN, url="ws://127.0.0.1:9")
    seen: dict[str, list[Any]] = {"feed": [], "twin": []}
    feed.on_update(lambda records: seen["feed"].append(records.copy()))
    twin.on_update(lambda records: seen["twin"].append(records.copy()))
    quotes: dict[str, list[Any]] = {"feed": [], "twin": []}
    feed.on_quote(instrument_keys(1)[0], quotes["feed"].append)   # touch() builds its Quote too
    twin.on_quote(instrument_keys(1)[0], quotes["twin"].append)
    listener, other = feed._make_listener(), twin._make_listener()
    empty = MarketFeed(TOKEN, url="ws://127.0.0.1:9")._make_listener()
    empty.touch()  # nothing decoded yet: nothing to warm, and no error
    keys = instrument_keys(70)  # more than the 64 rows touch() warms
    for n in range(6):
        payload = frame(keys[: 1 + 13 * n], mode, seed=n, live=n > 0)
        listener.feed_frame(payload)
        other.feed_frame(payload)
        before = (feed.store.ring.copy(), [feed.store.row_copy(r) for r in range(len(feed.store))],
                  feed.decoder.stats(), listener.stats(), feed._callbacks.samples_ns("on_update"))
        for _ in range(3):
            listener.touch()
        after = (feed.store.ring.copy(), [feed.store.row_copy(r) for r in range(len(feed.store))],
                 feed.decoder.stats(), listener.stats(), feed._callbacks.samples_ns("on_update"))
        assert before[0].tobytes() == after[0].tobytes()
        assert [r.tobytes() for r in before[1]] == [r.tobytes() for r in after[1]]
        assert before[2:4] == after[2:4] and np.array_equal(before[4], after[4])
    assert len(seen["feed"]) == len(seen["twin"]) == 6
    assert len(quotes["feed"]) == len(quotes["twin"]) == 6
    for a, b in zip(quotes["feed"], quotes["twin"]):
        assert (a.key, a.ltp, a.updates, a.bids) == (b.key, b.ltp, b.updates, b.bids)
        assert a.ohlc == b.ohlc
    for a, b in zip(seen["feed"], seen["twin"]):
        fields = ["row", "parts", "ltp", "bid_p", "vtt"]
        assert np.array_equal(a[fields], b[fields])
    for r in range(len(feed.store)):
        x, y = feed.store.row_copy(r), twin.store.row_copy(r)
        for field in ("ltp", "updates", "n_levels"):
            assert x[field] == y[field]
