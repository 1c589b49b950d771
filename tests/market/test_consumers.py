"""How users read the feed: callbacks, async iteration, wait_for, a background thread."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import numpy as np
import pytest

from fastfeed import RECORD_DTYPE, MarketFeed, ReconnectStoppedError
from fastfeed.sim import Faults, Simulator, SimulatorThread

from market_helpers import KEYS, TOKEN, feed_for, run, wait_until


def test_on_update_gets_each_frames_records_after_the_snapshot() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, instruments_per_frame=3, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:4], mode="full")
            batches: list[np.ndarray] = []
            consistent: list[bool] = []

            def on_update(records: np.ndarray) -> None:
                assert records.dtype == RECORD_DTYPE
                batches.append(records.copy())
                # the snapshot already holds what this frame carried
                for rec in records:
                    row = feed.snapshot[rec["row"]]
                    consistent.append(row["ltp"] == rec["ltp"] and row["seq"] % 2 == 0)

            feed.on_update(on_update)
            async with feed:
                await wait_until(lambda: sum(map(len, batches)) >= 50, what="updates")
            assert all(consistent)
            assert sum(map(len, batches)) == feed.decoder.updates
            assert len(batches) == feed.decoder.initial_frames + feed.decoder.live_frames
            seqs = np.concatenate(batches)["seq"]
            assert (np.diff(seqs) == 1).all()  # every update exactly once, in order
            lat = feed.stats()["latency"]
            assert lat["frame_to_callback_us"]["count"] == len(batches)
            assert lat["recv_minus_server_ms"]["count"] > 0
    run(main())


def test_on_quote_is_called_per_instrument() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:3], mode="ltpc")
            got: dict[str, list[Any]] = {KEYS[0]: [], KEYS[1]: []}
            feed.on_quote(KEYS[0], got[KEYS[0]].append)
            async with feed:
                await wait_until(lambda: len(got[KEYS[0]]) >= 3, what="quotes")
                feed.on_quote(KEYS[1], got[KEYS[1]].append)  # registered while running
                await wait_until(lambda: len(got[KEYS[1]]) >= 3, what="quotes of the second key")
            assert {q.key for q in got[KEYS[0]]} == {KEYS[0]}
            updates = [q.updates for q in got[KEYS[0]]]
            assert updates == sorted(updates) and len(set(updates)) == len(updates)
    run(main())


def test_callbacks_that_raise_are_logged_counted_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("user bug")

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2], mode="ltpc")
            feed.on_update(boom)
            feed.on_quote(KEYS[0], boom)
            feed.on("open", boom)
            feed.on("market_status", boom)
            ok: list[Any] = []
            feed.on_update(ok.append)  # a later callback still runs
            async with feed:
                await wait_until(lambda: len(ok) >= 20, what="updates despite the raising callbacks")
                stats = feed.stats()
                # open + market_status + one per frame + one per update of KEYS[0]
                assert len(ok) + 2 < stats["callback_errors"] <= len(ok) + 2 + feed.quote(KEYS[0]).updates
                assert stats["connections"] == 1 and feed.connected
    run(main())
    assert any("user bug" in (r.exc_text or "") or "RuntimeError" in r.getMessage() or r.exc_info
               for r in caplog.records if r.levelno >= logging.ERROR)


def test_slow_async_consumer_loses_the_oldest_and_is_told() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=1000, instruments_per_frame=5, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=sim.instruments[:20], mode="ltpc", ring_capacity=64)
            async with feed:
                missed = 0
                seen = 0
                async for batch in feed.updates():
                    assert len(batch) <= 64  # never more than the ring holds
                    missed += batch.missed
                    seen += len(batch)
                    if missed and seen > 200:
                        break
                    await asyncio.sleep(0.15)  # a slow consumer
                assert feed.stats()["ring_overruns"] == missed > 0
                # a fast consumer beside it sees the stream without loss from its own cursor
                fast = 0
                async for batch in feed.updates():
                    assert batch.missed == 0
                    fast += len(batch)
                    if fast >= 100:
                        break
    run(main())


def test_updates_iteration_ends_when_the_feed_closes() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100, ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2])
            await feed.connect()
            batches = 0

            async def consume() -> None:
                nonlocal batches
                async for _ in feed.updates():
                    batches += 1

            task = asyncio.ensure_future(consume())
            await wait_until(lambda: batches >= 3, what="batches")
            await feed.close()
            await asyncio.wait_for(task, 5)  # ends quietly, no exception
    run(main())


def test_background_thread_any_thread_reads_and_stop_from_another_thread() -> None:
    with SimulatorThread(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
        feed = MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:3], mode="full")
        feed.start(timeout=10)
        assert feed.running and feed._thread is not None and feed._thread.is_alive()
        loop_name = type(feed.loop).__module__
        deadline = time.monotonic() + 10
        while not all(feed.quote(k) for k in KEYS[:3]) and time.monotonic() < deadline:
            time.sleep(0.01)
        q = feed.quote(KEYS[0])
        assert q is not None and q.ltp > 0
        snap = feed.snapshot  # a numpy view, readable from this thread while the feed writes
        assert len(snap) == 3 and (snap["ltp"] > 0).all()
        feed.subscribe([KEYS[3]], "ltpc")  # from a foreign thread: sent on the feed's loop
        while feed.quote(KEYS[3]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert feed.quote(KEYS[3]) is not None
        thread = feed._thread
        stopper = threading.Thread(target=feed.stop)
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive() and not thread.is_alive()
        assert not feed.running
        assert loop_name.startswith("uvloop")  # fastfeed owns this loop, so it is uvloop
        deadline = time.monotonic() + 5
        while sim.market_sessions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not sim.market_sessions  # the server saw the connection close


def test_context_manager_and_a_users_own_loop_is_kept() -> None:
    with SimulatorThread(tokens=[TOKEN], rate=100, ping_interval=None) as sim:
        with MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:1]) as feed:
            assert feed.connected
        assert not feed.running

        async def main() -> None:
            loop = asyncio.get_running_loop()
            async with MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:1]) as feed:
                assert feed.loop is loop  # the user's loop, not replaced
                await feed.wait_for(KEYS[0], timeout=5)
        asyncio.run(main())


def test_continuation_frames_are_reassembled() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, faults=Faults(fragment_size=37),
                             ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:4], mode="full")
            async with feed:
                await wait_until(lambda: feed.stats()["live_feed"] >= 20, what="frames")
                stats = feed.stats()
                assert stats["decode_errors"] == 0 and stats["fragments"] > 40
                assert sim.counters.faults["fragment_size"] > 20
                assert len(feed.quote(KEYS[0]).bids) == 5 and feed.quote(KEYS[0]).ohlc
    run(main())


def test_stop_before_open_and_repr_is_safe() -> None:
    feed = MarketFeed(TOKEN, url="ws://127.0.0.1:9")
    feed.stop()
    assert "MarketFeed" in repr(feed) and TOKEN not in repr(feed)


def test_wait_for_and_updates_from_another_event_loop() -> None:
    """A feed running in its own thread (start()); the caller awaits on its own loop. The loop
    runs in debug mode, where asyncio refuses a future resolved from a foreign thread."""
    with SimulatorThread(tokens=[TOKEN], rate=200, ping_interval=None) as sim:
        feed = MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:1], mode="ltpc")
        feed.start(timeout=10)
        try:
            async def main() -> None:
                assert asyncio.get_running_loop() is not feed.loop
                feed.subscribe([KEYS[1]], "ltpc")  # not arrived yet: wait_for has to wait
                quote = await feed.wait_for(KEYS[1], timeout=10)
                assert quote.key == KEYS[1] and quote.updates > 0
                assert (await feed.wait_for(KEYS[1], timeout=10)).updates > 0  # already there
                with pytest.raises(RuntimeError, match="feed's event loop"):
                    async for _ in feed.updates():
                        pass
                # A waiter on this loop is failed, thread-safely, when the feed stops.
                waiting = asyncio.ensure_future(feed.wait_for("NSE_EQ|NEVER", timeout=10))
                await asyncio.sleep(0)  # it has registered
                await asyncio.get_running_loop().run_in_executor(None, feed.stop)
                with pytest.raises(ReconnectStoppedError):
                    await waiting

            asyncio.run(main(), debug=True)
        finally:
            feed.stop()
        assert feed.events.callback_errors == 0
