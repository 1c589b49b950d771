"""Subscriptions over real sockets, and the caps the feed checks before Upstox would drop keys."""
from __future__ import annotations

import json

import pytest

from fastfeed import MarketFeed, SubscriptionLimitError
from fastfeed.sim import Simulator
from fastfeed.transport import SubscriptionBook, requests

from market_helpers import KEYS, PLUS, TOKEN, feed_for, run, wait_until


def newest(sim):
    return max(sim.market_sessions, key=lambda s: s.serial)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_subscribe_unsubscribe_and_change_mode(tls: bool) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, tls=tls, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:3], mode="full")
            async with feed:
                for key in KEYS[:3]:
                    quote = await feed.wait_for(key, timeout=5)
                    assert quote.key == key and quote.ltp > 0
                assert newest(sim).subscriptions == {k: "full" for k in KEYS[:3]}
                assert feed.quote(KEYS[0]).mode == "full" and len(feed.quote(KEYS[0]).bids) == 5

                feed.subscribe([KEYS[3]], "ltpc")
                assert (await feed.wait_for(KEYS[3], timeout=5)).mode == "ltpc"
                feed.change_mode([KEYS[0]], "option_greeks")
                await wait_until(lambda: feed.quote(KEYS[0]).mode == "option_greeks", what="mode")
                feed.unsubscribe([KEYS[1]])
                await wait_until(lambda: KEYS[1] not in newest(sim).subscriptions, what="unsub")
                assert newest(sim).subscriptions == {KEYS[0]: "option_greeks", KEYS[2]: "full",
                                                     KEYS[3]: "ltpc"}
                assert feed.subscriptions == newest(sim).subscriptions
                # every request was the documented JSON in a binary frame
                assert sim.counters.requests >= 4 and sim.counters.requests_malformed == 0
                assert feed.stats()["decode_errors"] == 0
    run(main())


def test_subscriptions_made_before_the_connection_are_sent_on_open() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100, ping_interval=None) as sim:
            feed = feed_for(sim)
            feed.subscribe(KEYS[:2], "ltpc")
            feed.subscribe(KEYS[2:4], "full")
            async with feed:
                await wait_until(lambda: len(newest(sim).subscriptions) == 4, what="4 keys")
                assert newest(sim).subscriptions == {KEYS[0]: "ltpc", KEYS[1]: "ltpc",
                                                     KEYS[2]: "full", KEYS[3]: "full"}
    run(main())


def test_a_thousand_instruments_in_chunked_requests() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], instruments=1000, rate=200, instruments_per_frame=50,
                             ping_interval=None) as sim:
            feed = feed_for(sim, instruments=sim.instruments, mode="ltpc", request_chunk=300)
            async with feed:
                await wait_until(lambda: len(feed.store) == 1000, what="1000 rows")
                assert len(newest(sim).subscriptions) == 1000
                assert sim.counters.requests == 4  # 300 + 300 + 300 + 100
                assert set(feed.instruments) == set(sim.instruments)
                assert (feed.snapshot["ltp"] > 0).all()
                assert feed.stats()["decode_errors"] == 0
    run(main())


def test_request_frames_are_chunked_json() -> None:
    frames = list(requests("sub", [f"NSE_FO|{i}" for i in range(2500)], "full", chunk=1000))
    assert len(frames) == 3
    first = json.loads(frames[0])
    assert first["method"] == "sub" and first["data"]["mode"] == "full"
    assert len(first["data"]["instrumentKeys"]) == 1000 and first["guid"]
    unsub = json.loads(next(requests("unsub", ["NSE_EQ|X"])))
    assert "mode" not in unsub["data"]
    assert len({json.loads(f)["guid"] for f in frames}) == 3


def test_single_mode_caps_raise_naming_the_cap() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9", max_instruments=8192)
    feed.subscribe([f"NSE_FO|{i}" for i in range(5000)], "ltpc")
    with pytest.raises(SubscriptionLimitError, match=r"ltpc \(single mode\).*5001 > 5000") as info:
        feed.subscribe(["NSE_FO|x"], "ltpc")
    assert info.value.cap == "ltpc (single mode)" and info.value.limit == 5000
    assert len(feed.subscriptions) == 5000  # nothing changed
    with pytest.raises(SubscriptionLimitError, match="full"):
        MarketFeed(TOKEN, url="ws://127.0.0.1:9", instruments=[f"NSE_FO|{i}" for i in range(2001)],
                   mode="full")


def test_mixed_mode_caps() -> None:
    book = SubscriptionBook()
    book.subscribe([f"NSE_FO|{i}" for i in range(2000)], "ltpc")
    book.subscribe([f"NSE_EQ|{i}" for i in range(1500)], "full")
    with pytest.raises(SubscriptionLimitError, match=r"full \(modes mixed\).*1501 > 1500"):
        book.subscribe(["NSE_EQ|x"], "full")
    with pytest.raises(SubscriptionLimitError, match=r"ltpc \(modes mixed\)"):
        book.subscribe(["NSE_FO|x"], "ltpc")
    book.unsubscribe([f"NSE_EQ|{i}" for i in range(1500)])
    book.subscribe(["NSE_FO|x"], "ltpc")  # a single mode again: 5000 allowed
    assert book.counts() == {"ltpc": 2001}


def test_full_d30_needs_plus_and_has_its_own_cap() -> None:
    with pytest.raises(SubscriptionLimitError, match="Plus"):
        MarketFeed(TOKEN, url="ws://127.0.0.1:9", instruments=KEYS[:1], mode="full_d30")
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9", plus=True)
    feed.subscribe([f"NSE_FO|{i}" for i in range(50)], "full_d30")
    with pytest.raises(SubscriptionLimitError, match="full_d30"):
        feed.subscribe(["NSE_FO|x"], "full_d30")


def test_max_instruments_is_a_cap_too() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9", max_instruments=10)
    feed.subscribe([f"NSE_FO|{i}" for i in range(10)], "ltpc")
    with pytest.raises(SubscriptionLimitError, match="max_instruments"):
        feed.subscribe(["NSE_FO|x"], "ltpc")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        MarketFeed(TOKEN, url="ws://127.0.0.1:9", mode="full_d6")
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9")
    with pytest.raises(ValueError, match="instrument key"):
        feed.subscribe(["RELIANCE"], "ltpc")
    with pytest.raises(ValueError, match="not subscribed"):
        feed.change_mode(KEYS[:1], "full")
    with pytest.raises(ValueError, match="token"):
        MarketFeed(url="ws://127.0.0.1:9")


def test_full_d30_with_plus_over_the_wire() -> None:
    async def main() -> None:
        async with Simulator(tokens={TOKEN: False, PLUS: True}, rate=100, ping_interval=None) as sim:
            feed = feed_for(sim, PLUS, plus=True, instruments=KEYS[:2], mode="full_d30")
            async with feed:
                quote = await feed.wait_for(KEYS[0], timeout=5)
                await wait_until(lambda: len(feed.quote(KEYS[0]).bids) > 5, what="30 levels")
                assert quote.mode == "full_d30"
    run(main())


def test_thousands_of_single_key_subscribes_keep_every_cap() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9", max_instruments=5000)
    keys = [f"NSE_FO|{i}" for i in range(5000)]
    for key in keys:
        feed.subscribe(key, "ltpc")
    assert list(feed.subscriptions) == keys and set(feed.subscriptions.values()) == {"ltpc"}
    with pytest.raises(SubscriptionLimitError, match=r"ltpc \(single mode\).*5001 > 5000"):
        feed.subscribe("NSE_FO|x", "ltpc")
    for key in keys[:4000]:
        feed.unsubscribe(key)
    for key in keys[4000:4500]:
        feed.change_mode(key, "full")
    assert feed._book.counts() == {"ltpc": 500, "full": 500}
    with pytest.raises(SubscriptionLimitError, match=r"full \(modes mixed\).*1501 > 1500"):
        feed.subscribe([f"NSE_EQ|{i}" for i in range(1001)], "full")
    assert len(feed.subscriptions) == 1000  # nothing changed

    small = MarketFeed(TOKEN, url="ws://127.0.0.1:9", max_instruments=3000)
    for key in keys[:3000]:
        small.subscribe(key, "ltpc")
    with pytest.raises(SubscriptionLimitError, match=r"max_instruments.*3001 > 3000"):
        small.subscribe("NSE_FO|x", "ltpc")
    small.subscribe(keys[0], "ltpc")  # already wanted: no new row
    small.unsubscribe(keys[0])
    small.subscribe("NSE_FO|x", "ltpc")
    assert len(small.subscriptions) == 3000


def test_max_instruments_counts_rows_the_decoder_has_and_rows_still_to_come() -> None:
    known: set[str] = set()
    book = SubscriptionBook(max_instruments=10)

    def sub(keys: list[str]) -> None:
        book.subscribe(keys, "ltpc", known=len(known), is_known=known.__contains__)

    sub([f"NSE_FO|{i}" for i in range(10)])  # no rows yet, ten to come
    known.update(f"NSE_FO|{i}" for i in range(5))  # five arrived: five rows, five to come
    with pytest.raises(SubscriptionLimitError, match=r"max_instruments.*11 > 10"):
        sub(["NSE_FO|new"])
    book.unsubscribe(["NSE_FO|9"])  # one fewer to come
    sub(["NSE_FO|new"])
    book.unsubscribe([f"NSE_FO|{i}" for i in range(5)])  # rows stay in the decoder
    with pytest.raises(SubscriptionLimitError, match=r"max_instruments.*11 > 10"):
        sub(["NSE_FO|newer"])
    sub(["NSE_FO|0"])  # a key the decoder knows takes no new row
    assert len(book) == 6
