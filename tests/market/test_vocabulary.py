"""One vocabulary: `Quote.mode` speaks `subscribe`'s words, `full_d5` is explained rather than
refused, and the small promises of issue 9 (a key must be a string; a refused change says nothing
was changed)."""
from __future__ import annotations

import logging

import pytest

from fastfeed import FeedDecoder, MarketFeed, SubscriptionLimitError
from fastfeed.schema import MODES
from fastfeed.sim import Simulator

from market_helpers import KEYS, TOKEN, feed_for, run, wait_until


@pytest.mark.parametrize("mode", MODES[:3])
def test_quote_mode_fed_back_to_subscribe_asks_for_the_same(mode: str) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
            async with feed_for(sim, instruments=KEYS[:1], mode=mode) as feed:
                quote = await feed.wait_for(KEYS[0], timeout=10)
                assert quote.mode == mode
                feed.subscribe(KEYS[1:2], quote.mode)
                assert feed.subscriptions[KEYS[1]] == mode
                second = await feed.wait_for(KEYS[1], timeout=10)
                assert second.mode == mode
                session = max(sim.market_sessions, key=lambda s: s.serial)
                await wait_until(lambda: session.subscriptions.get(KEYS[1]) == mode,
                                 what="the simulator got the same mode")

    run(main())


def test_full_d5_is_taken_for_full_and_the_log_says_why(caplog: pytest.LogCaptureFixture) -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9")
    with caplog.at_level(logging.INFO, logger="fastfeed"):
        feed.subscribe(KEYS[:2], "full_d5")
    assert feed.subscriptions == {KEYS[0]: "full", KEYS[1]: "full"}
    assert any("full_d5" in r.getMessage() and "'full'" in r.getMessage() for r in caplog.records)
    feed.change_mode(KEYS[:1], "full_d5")
    assert feed.subscriptions[KEYS[0]] == "full"
    with pytest.raises(ValueError, match="ltpc, full, option_greeks, full_d30"):
        feed.subscribe(KEYS[:1], "full_d7")


def test_quote_of_a_non_string_is_a_type_error() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9")
    decoder = FeedDecoder(max_instruments=4)
    for bad in (5, 5.0, None, ["NSE_EQ|X"]):
        with pytest.raises(TypeError, match="str"):
            feed.quote(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            decoder.quote(bad)  # type: ignore[arg-type]
    assert feed.quote("NSE_EQ|never") is None and decoder.quote(b"NSE_EQ|never") is None


def test_subscription_limit_error_says_nothing_was_changed() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9", max_instruments=8192)
    feed.subscribe([f"NSE_FO|{i}" for i in range(2000)], "full")
    before = feed.subscriptions
    with pytest.raises(SubscriptionLimitError, match="nothing was changed"):
        feed.subscribe(["NSE_FO|x"], "full")
    with pytest.raises(SubscriptionLimitError, match="Upstox ignores such keys without Plus"):
        feed.subscribe(["NSE_FO|y"], "full_d30")
    assert feed.subscriptions == before
