"""PortfolioFeed against the simulator's portfolio stream: typed records, the book before the
callbacks, an order's lifecycle, reconnects that keep the update types, bad frames, 401, TLS,
the background thread, the bounded updates() queue, and the token kept out of logs and reprs."""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from fastfeed import (AuthenticationError, FeedConnectionError, PortfolioFeed, ReconnectPolicy,
                      ReconnectStoppedError)
from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio import (GttUpdate, HoldingUpdate, OrderUpdate, PortfolioUpdate,
                                PositionUpdate)
from fastfeed.sim import Faults, Simulator, SimulatorThread
from fastfeed.tokens import fingerprint
from fastfeed.transport.connection import authorize_url_for

from portfolio_helpers import (ALL_TYPES, FAST, NEXT, TERMINAL, TOKEN, Recorder, count_until_end,
                               feed_for, newest, run, wait_until)

TYPES = {"order": OrderUpdate, "position": PositionUpdate, "holding": HoldingUpdate,
         "gtt_order": GttUpdate}


def key_of(record: PortfolioUpdate) -> Any:
    if isinstance(record, OrderUpdate):
        return record.order_id
    if isinstance(record, PositionUpdate):
        return (record.instrument_token, record.product)
    if isinstance(record, HoldingUpdate):
        return record.instrument_token
    return record.gtt_order_id


def view_of(feed: PortfolioFeed, record: PortfolioUpdate) -> Any:
    return {"order": feed.orders, "position": feed.positions, "holding": feed.holdings,
            "gtt_order": feed.gtt_orders}[record.update_type]


def test_the_url_carries_the_update_types_of_the_flags() -> None:
    base = "wss://api.upstox.com/v2/feed/portfolio-stream-feed"
    assert PortfolioFeed(TOKEN).url == base + "?update_types=order"  # the SDK's default
    everything = PortfolioFeed(TOKEN, **ALL_TYPES)
    assert everything.url == base + "?update_types=order%2Cposition%2Cholding%2Cgtt_order"
    assert everything.update_types == ("order", "position", "holding", "gtt_order")
    some = PortfolioFeed(TOKEN, order=False, holding=True, gtt=True)
    assert some.url == base + "?update_types=holding%2Cgtt_order"
    # the authorize step asks for the same types
    assert authorize_url_for(some.url) == (
        "https://api.upstox.com/v2/feed/portfolio-stream-feed/authorize?update_types=holding%2Cgtt_order")
    # a URL of one's own keeps its other parameters; the flags decide the types
    own = PortfolioFeed(TOKEN, position=True, url="ws://127.0.0.1:9/feed?x=1&update_types=holding")
    assert own.url == "ws://127.0.0.1:9/feed?x=1&update_types=order%2Cposition"
    with pytest.raises(ValueError, match="at least one"):
        PortfolioFeed(TOKEN, order=False)
    with pytest.raises(ValueError):
        PortfolioFeed(TOKEN, queue_size=0)
    with pytest.raises(ValueError):
        everything.updates(queue_size=0)
    assert TOKEN not in repr(everything) and "update_types=order,position" in repr(everything)


def test_every_update_type_arrives_typed_and_the_book_has_it_before_any_callback() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None) as sim:
            feed = feed_for(sim, **ALL_TYPES)
            every: list[PortfolioUpdate] = []
            by_type: dict[str, list[PortfolioUpdate]] = defaultdict(list)
            not_in_book: list[PortfolioUpdate] = []

            def on_update(record: PortfolioUpdate) -> None:
                if view_of(feed, record).get(key_of(record)) is not record:
                    not_in_book.append(record)
                every.append(record)

            raised = []

            def raises_once(record: PortfolioUpdate) -> None:
                if not raised:
                    raised.append(record)
                    raise RuntimeError("a user's callback failed")

            feed.on_update(raises_once)
            feed.on_update(on_update)
            for name in TYPES:
                feed.on(name, lambda r, name=name: by_type[name].append(r))
            async with feed:
                await wait_until(lambda: set(by_type) == set(TYPES) and len(every) >= 40,
                                 what="every update type")
                assert not not_in_book
                for name, cls in TYPES.items():
                    assert by_type[name] == [r for r in every if type(r) is cls]
                    assert all(r.update_type == name for r in by_type[name])
                    latest = by_type[name][-1]
                    assert view_of(feed, latest)[key_of(latest)] is latest
                record = by_type["order"][0]
                with pytest.raises(AttributeError):
                    record.status = "complete"  # type: ignore[misc]
                assert isinstance(record.raw, bytes) and json.loads(record.raw)["order_id"] == record.order_id
                assert all(isinstance(rule.status, str) for rule in by_type["gtt_order"][0].rules)
                stats = feed.stats()
                assert stats["updates"] >= len(every) and stats["decode_errors"] == 0
                assert stats["callback_errors"] == 1 and raised[0] is every[0]  # the rest went on
                assert newest(sim).update_types == ("order", "position", "holding", "gtt_order")
    run(main())


def test_an_order_lifecycle_end_to_end() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None, seed=3) as sim:
            feed = feed_for(sim)  # order only, as the SDK by default
            stream = feed.updates()  # before connect: no update is missed
            history: dict[str, list[OrderUpdate]] = defaultdict(list)
            async with feed:
                done = None
                async for update in stream:
                    assert isinstance(update, OrderUpdate)
                    steps = history[update.order_id]
                    steps.append(update)
                    if update.status == "complete" and steps[0].status == "put order req received":
                        done = update.order_id
                        break
                assert done is not None
                steps = history[done]
                for before, after in zip(steps, steps[1:]):
                    assert after.status in NEXT[before.status]
                    assert after.filled_quantity >= before.filled_quantity
                assert [s.status for s in steps].count("open") >= 1
                last = steps[-1]
                assert last.status in TERMINAL
                assert last.filled_quantity == last.quantity and last.pending_quantity == 0
                assert last.average_price > 0 and last.exchange_order_id
                assert feed.orders[done] is last  # the book shows the latest state
                assert feed.stats()["by_type"]["position"] == 0  # not asked for
    run(main())


@pytest.mark.parametrize("authorize", [False, True], ids=["redirect", "authorize"])
def test_reconnect_after_an_abort_asks_for_the_same_update_types(authorize: bool) -> None:
    wanted = ("position", "holding", "gtt_order")

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None) as sim:
            feed = feed_for(sim, order=False, position=True, holding=True, gtt=True,
                            authorize=authorize)
            rec = Recorder(feed)
            async with feed:
                await wait_until(lambda: len(feed.gtt_orders) >= 2 and len(feed.positions) >= 1,
                                 what="first updates")
                first = newest(sim)
                assert first.update_types == wanted
                gtts_before = set(feed.gtt_orders)
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="reconnect")
                await wait_until(lambda: sim.portfolio_sessions and newest(sim) is not first,
                                 what="a new session")
                assert newest(sim).update_types == wanted
                applied = feed.updates_applied
                await wait_until(lambda: feed.updates_applied >= applied + 10, what="updates again")
                assert gtts_before <= set(feed.gtt_orders)  # the book outlives the connection
                names = rec.names()
                assert names.index("close") < names.index("reconnecting") < names.index("gap")
                assert rec.named("gap")[0][0].attempts >= 1
                stats = feed.stats()
                assert stats["by_type"]["order"] == 0 and stats["decode_errors"] == 0
                assert stats["connections"] == 2 and stats["gaps"] == 1
                assert {type(args[0]).__name__ for args in rec.named("update")} <= {
                    "PositionUpdate", "HoldingUpdate", "GttUpdate"}
            if authorize:
                assert sim.counters.authorize_calls == 2 and sim.counters.redirects == 0
            else:
                assert sim.counters.redirects == 2 and sim.counters.authorize_calls == 0
    run(main())


def test_bad_frames_are_error_events_with_scrubbed_text_and_the_feed_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None,
                             faults=Faults(malformed_every=4)) as sim:
            feed = feed_for(sim, **ALL_TYPES)
            errors: list[BaseException] = []
            feed.on("error", errors.append)
            async with feed:
                await wait_until(lambda: len(errors) >= 5 and feed.updates_applied >= 20,
                                 what="malformed frames and updates")
                assert all(isinstance(e, PortfolioDecodeError) and e.kind == "json" for e in errors)
                for e in errors:  # the simulator's: a valid update cut short of its closing brace
                    assert e.text.startswith('{"update_type": "') and not e.text.endswith("}")
                # Frames no fault switch makes, handed to the live connection's listener (the path
                # a frame off the socket takes): an unknown update_type and a missing order_id,
                # each carrying the token where no pattern would find it.
                listener = feed._live_listener()
                listener.feed_frame(json.dumps({"update_type": "margin", "echo": TOKEN}).encode(), True)
                listener.feed_frame(json.dumps({"update_type": "order", "status": "open",
                                                "instrument_token": "NSE_EQ|X", "echo": TOKEN}).encode(),
                                    True)
                unknown, missing = errors[-2:]
                assert unknown.kind == "update_type" and missing.kind == "missing"
                assert "order_id" in missing.reason
                for e in (unknown, missing):
                    assert f'"echo": "{fingerprint(TOKEN)}"' in e.text
                    assert TOKEN not in e.text + str(e) + repr(e)
                applied = feed.updates_applied
                await wait_until(lambda: feed.updates_applied >= applied + 10, what="the feed goes on")
                stats = feed.stats()
                assert stats["decode_errors"] == len(errors)
                assert stats["errors_by_kind"]["update_type"] == stats["errors_by_kind"]["missing"] == 1
                assert stats["errors_by_kind"]["json"] <= sim.counters.faults["malformed_every"]
                assert stats["connections"] == 1 and feed.connected
    run(main())
    assert TOKEN not in caplog.text and "bad portfolio frame" in caplog.text


def test_an_expired_token_stops_the_feed_with_the_auth_error() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None) as sim:
            feed = feed_for(sim, **ALL_TYPES)
            rec = Recorder(feed)
            async with feed:
                stream = feed.updates()

                consumer = asyncio.ensure_future(count_until_end(stream))
                await wait_until(lambda: feed.updates_applied >= 5, what="updates")
                sim.expire_token(TOKEN)
                sim.abort_all()
                with pytest.raises(AuthenticationError) as info:
                    await asyncio.wait_for(feed.wait_closed(), 5)
                assert info.value.status == 401
                with pytest.raises(AuthenticationError):
                    await asyncio.wait_for(consumer, 5)  # the consumer is told, not left waiting
                assert not feed.running and feed.orders  # the book stays readable
                assert "401" in rec.named("autoReconnectStopped")[0][0]
                assert isinstance(rec.named("error")[-1][0], AuthenticationError)
            refused = sim.counters.http_status[401]
            again = feed_for(sim)
            with pytest.raises(AuthenticationError):
                await again.connect()
            assert sim.counters.http_status[401] == refused + 1  # not retried
    run(main())


def test_background_thread_start_any_thread_reads_and_stop() -> None:
    with SimulatorThread(tokens=[TOKEN], portfolio_rate=500, ping_interval=None) as sim:
        feed = PortfolioFeed(TOKEN, url=sim.portfolio_url, reconnect=FAST, **ALL_TYPES)
        threads: set[str] = set()
        feed.on_update(lambda r: threads.add(threading.current_thread().name))
        feed.start(timeout=10)
        thread = feed._thread
        assert feed.running and thread is not None and thread.is_alive()
        deadline = time.monotonic() + 10
        while len(feed.orders) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        reads = 0
        while reads < 50 or len(feed.gtt_orders) == 0:  # read while the feed thread writes
            assert time.monotonic() < deadline, "no GTT orders arrived"
            snap = feed.snapshot()
            assert all(o.order_id == oid for oid, o in snap.orders.items())
            assert all(g.gtt_order_id == gid for gid, g in feed.gtt_orders.items())
            reads += 1
            time.sleep(0.002)
        assert threads == {thread.name}  # callbacks ran on the feed's thread
        stopper = threading.Thread(target=feed.stop)
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive() and not thread.is_alive() and not feed.running
        while sim.portfolio_sessions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not sim.portfolio_sessions  # the server saw the connection close
        with PortfolioFeed(TOKEN, url=sim.portfolio_url, position=True) as again:
            assert again.connected
        assert not again.running


def test_tls_with_verification_on() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], tls=True, portfolio_rate=500, ping_interval=None) as sim:
            ctx = sim.client_ssl_context()
            assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
            feed = feed_for(sim, ssl=ctx, gtt=True, authorize=True)
            assert feed.url.startswith("wss://")
            kinds = set()
            async with feed:
                async for update in feed.updates():
                    kinds.add(update.update_type)
                    if kinds == {"order", "gtt_order"}:
                        break
            assert sim.counters.authorize_calls == 1
            # No ssl= argument: the default context verifies, and does not trust the private CA.
            plain = PortfolioFeed(TOKEN, url=sim.portfolio_url, reconnect=ReconnectPolicy.disabled())
            rec = Recorder(plain)
            with pytest.raises(ReconnectStoppedError):
                await plain.connect()
            error = rec.named("error")[0][0]
            assert isinstance(error, FeedConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(error)
    run(main())


def test_a_slow_consumer_loses_the_oldest_records_and_is_told() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], portfolio_rate=500, ping_interval=None) as sim:
            feed = feed_for(sim, queue_size=8, **ALL_TYPES)
            seen: list[PortfolioUpdate] = []
            feed.on_update(seen.append)
            async with feed:
                await wait_until(lambda: len(seen) >= 3, what="first updates")
                start = len(seen)
                stream = feed.updates()
                await wait_until(lambda: len(seen) >= start + 30, what="updates")
                # No await from here until the 8 are taken: no frame is handled in between.
                n = len(seen) - start
                assert stream.pending == 8 and stream.missed == n - 8
                assert feed.stats()["updates_missed"] == n - 8 and feed.stats()["streams"] == 1
                kept = []
                async for update in stream:
                    kept.append(update)
                    if len(kept) == 8:
                        break
                assert kept == seen[-8:] and all(a is b for a, b in zip(kept, seen[-8:]))

                consumer = asyncio.ensure_future(count_until_end(stream))
                await wait_until(lambda: len(seen) >= start + n + 5, what="more updates")
                await feed.close()
                assert await asyncio.wait_for(consumer, 5) >= 1  # ends quietly on close
    run(main())


def test_the_token_never_appears_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything, including picows's below-DEBUG upgrade request
    secret = "s3cr3t-portfolio-token-XYZ-0000"
    wrong = "wrong-s3cr3t-portfolio-QQQ-0000"
    seen: list[str] = []

    async def main() -> None:
        async with Simulator(tokens=[secret], portfolio_rate=500, ping_interval=None,
                             faults=Faults(malformed_every=5)) as sim:
            feed = feed_for(sim, secret, **ALL_TYPES)
            feed.on("error", lambda exc: seen.append(repr(exc) + str(exc)))
            async with feed:
                await wait_until(lambda: feed.decode_errors >= 2 and feed.updates_applied >= 10)
                feed._live_listener().feed_frame(f'{{"update_type": "order", "note": "{secret}"'.encode(), True)
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="reconnect")
                seen.append(repr(feed) + str(feed.stats()) + repr(vars(feed)) + repr(feed.book)
                            + repr(list(feed.orders.values())[:3]))
            bad = feed_for(sim, wrong, authorize=True)
            with pytest.raises(AuthenticationError) as info:
                await bad.connect()
            seen.append(repr(info.value) + str(info.value) + repr(vars(bad)) + repr(bad))

    run(main())
    # The simulator stands in for Upstox's server, whose own logs are not the client's business.
    client = [r for r in caplog.records if "fastfeed.sim" not in r.name]
    text = "".join(f"{r.name} {r.getMessage()}\n" for r in client) + "".join(seen)
    assert "Send upgrade request" in text and "Bearer tok-" in text  # the logging did happen
    assert "bad portfolio frame" in text and f'"note": "{fingerprint(secret)}"' in text
    assert secret not in text and wrong not in text
