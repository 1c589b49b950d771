"""Hub -> NATS -> NatsFeed against a real nats-server, with the simulator upstream."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from fastfeed.errors import FeedConnectionError

from fastfeed.nats import Bridge, NatsFeed
from feed_helpers import run
from nats_helpers import hub_for, mismatches, settle, stop_data, wait_until

SPACED = "NSE_INDEX|Nifty 50"


def test_late_reader_holds_every_latest_state_equal_to_the_hub(sim, nats_server):
    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="late") as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: len(hub.instruments) == len(sim.instruments)
                             and hub.decoder.live_frames > 100, 20, "hub has live data")
            await settle(sim, hub, bridge)
            stats = bridge.stats()
            # Every update was sent or, replaced by a newer one of its subject before it could
            # be, counted as dropped.
            assert stats["updates"] == stats["published"] + stats["dropped"] + stats["refused"]
            assert stats["waiting"] == 0 and stats["refused"] == 0
            async with NatsFeed(nats_server.url, prefix="late") as reader:
                assert sorted(reader.instruments) == sorted(hub.instruments)
                assert mismatches(hub, reader) == []
                # Fewer messages than the hub sent: the stream kept the last one per subject.
                assert reader.stats()["messages"] < bridge.published
                assert reader.market_status == hub.market_status != {}
    run(main(), 90)


def test_reader_joining_while_updates_flow_ends_equal_to_the_hub(sim, nats_server):
    # Joins mid-stream: live messages come while the stream's state is read; the live ones are
    # held back and per subject only what is newer is applied, so nothing older overwrites.
    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="mid") as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: bridge.stored > 2 * len(sim.instruments), 20, "state stored")
            async with NatsFeed(nats_server.url, prefix="mid") as reader:
                seen = reader.stats()["live_messages"]
                await wait_until(lambda: reader.stats()["live"], 20, "reader follows live")
                await wait_until(lambda: reader.stats()["live_messages"] > seen + 500, 20,
                                 "live updates flowing")
                await stop_data(sim, hub)
                await bridge.flush()
                await wait_until(lambda: not mismatches(hub, reader), 20, "reader equals hub")
                stats = reader.stats()
                # The stream's copies of what came live were skipped, not applied twice.
                assert stats["stale"] > 0 and stats["decode_errors"] == 0
                assert reader.market_status == hub.market_status
    run(main(), 90)


def test_live_updates_flow_and_callbacks_fire(sim, nats_server):
    key = sim.instruments[0]

    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="live") as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: hub.quote(key) is not None, 20, "first quote at the hub")
            async with NatsFeed(nats_server.url, prefix="live") as reader:
                seen: list = []
                batches: list = []
                reader.on_quote(key, seen.append)
                reader.on_update(lambda records: batches.append(len(records)))
                start = reader.decoder.updates
                got = await reader.wait_for(key, timeout=20)
                assert got.key == key
                async for batch in reader.updates():
                    if reader.decoder.updates > start + 200:
                        break
                await wait_until(lambda: seen and batches, 20, "callbacks")
                assert all(q.key == key for q in seen)
                lat = reader.stats()["hub_to_quote_us"]
                assert lat["count"] > 0 and lat["p50"] > 0
            await settle(sim, hub, bridge)
    run(main(), 90)


def test_nats_restart_hub_lives_on_bridge_reconnects_new_reader_gets_state(sim, nats_server):
    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="rs") as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: bridge.published > 200, 20, "bridge publishing")
            early = await NatsFeed(nats_server.url, prefix="rs").start()  # lives through it
            nats_server.kill()
            await wait_until(lambda: not bridge.connected, 20, "bridge saw the loss")
            during = hub.decoder.updates
            await wait_until(lambda: hub.decoder.updates > during + 200, 20, "hub lives on")
            assert hub.connected
            await stop_data(sim, hub)   # what changed while NATS was down waits in the outbox
            await asyncio.get_running_loop().run_in_executor(None, nats_server.start)
            await bridge.wait_connected(30)
            stats = bridge.stats()
            assert stats["connects"] >= 2 and stats["resent"] >= len(hub.instruments)
            await bridge.flush()
            async with NatsFeed(nats_server.url, prefix="rs") as reader:
                # JetStream stores asynchronously: the last resent messages may come live.
                await wait_until(lambda: not mismatches(hub, reader), 20, "reader equals hub")
            try:
                await wait_until(lambda: not mismatches(hub, early), 20, "early reader equals hub")
                assert early.stats()["disconnects"] >= 1
            finally:
                await early.close()
    run(main(), 120)


def test_stalled_nats_never_stalls_the_feed_and_drops_are_counted(sim, nats_server):
    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="slow",
                                               buffer_bytes=4096, max_pending_bytes=4096) as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: bridge.published > 100, 20, "bridge publishing")
            nats_server.pause()
            try:
                before = hub.decoder.updates
                # The hub keeps decoding at the simulator's pace while NATS reads nothing.
                await wait_until(lambda: hub.decoder.updates > before + 2000, 30, "hub goes on")
                await wait_until(lambda: bridge.stats()["dropped"] > 0, 30, "drops counted")
                stats = bridge.stats()
                # One slot per subject however long NATS stalls: memory does not grow.
                assert stats["waiting"] <= stats["subjects"] <= 16 * len(hub.instruments) + 1
                assert hub.stats()["ring_overruns"] == 0
            finally:
                nats_server.resume()
            published = bridge.published
            await wait_until(lambda: bridge.published > published + 100, 30, "flowing again")
    run(main(), 120)


def test_a_key_with_spaces_survives_the_subject_mapping(sim, nats_server):
    assert SPACED in sim.instruments

    async def main() -> None:
        async with hub_for(sim, [SPACED], mode="full") as hub, \
                Bridge(hub, nats_server.url, prefix="sp") as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: hub.quote(SPACED) is not None, 20, "hub quote")
            await settle(sim, hub, bridge)
            async with NatsFeed(nats_server.url, prefix="sp", instruments=[SPACED]) as reader:
                assert reader.instruments == [SPACED]
                assert mismatches(hub, reader) == []
    run(main(), 90)


def test_sync_hub_with_a_bridge(sim, nats_server):
    # The feed on its own thread (`with feed:`); the bridge runs on that feed's loop.
    with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="sync") as bridge:
        deadline = time.monotonic() + 20
        while bridge.published < 50:
            assert time.monotonic() < deadline, "nothing published"
            time.sleep(0.01)
    assert not bridge.connected


def test_bad_input_is_refused_with_clear_errors(sim):
    hub = hub_for(sim)
    for bad in ([], [""], ""):
        with pytest.raises(ValueError):
            Bridge(hub, bad)
    with pytest.raises(ValueError):
        Bridge(hub, "nats://127.0.0.1:1", prefix="a b")
    with pytest.raises(ValueError, match="max_state_rate"):
        Bridge(hub, "nats://127.0.0.1:1", max_state_rate=0)
    with pytest.raises(ValueError):
        NatsFeed("nats://127.0.0.1:1", prefix="a.*")

    async def unreachable() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(FeedConnectionError) as err:
            await NatsFeed(f"nats://user:secret@127.0.0.1:{port}", connect_timeout=0.5).start()
        assert "secret" not in str(err.value)
        assert "secret" not in repr(Bridge(hub, f"nats://user:secret@127.0.0.1:{port}"))
    run(unreachable(), 30)


def test_state_passes_are_spaced_out_past_max_state_rate(sim, nats_server):
    # Passes every 20 ms would store most of the updates; capped at 10 stored messages per
    # second, a pass of N subjects makes the next wait N / 10 s. An upper bound, over a window
    # that ends on a count of updates: a slower machine only makes fewer passes. The stream
    # still ends with the hub's state.
    async def main() -> None:
        async with hub_for(sim) as hub, Bridge(hub, nats_server.url, prefix="capped",
                                               state_interval=0.02, max_state_rate=10) as bridge:
            await bridge.wait_connected(20)
            await wait_until(lambda: bridge.stored >= len(sim.instruments), 20, "first pass")
            loop = asyncio.get_running_loop()
            stored, updates, t0 = bridge.stored, hub.decoder.updates, loop.time()
            subjects = bridge.stats()["subjects"]
            await wait_until(lambda: hub.decoder.updates > updates + 6 * subjects, 30, "updates")
            elapsed = loop.time() - t0
            assert bridge.stored - stored <= 10 * elapsed + 2 * subjects
            await settle(sim, hub, bridge)
            async with NatsFeed(nats_server.url, prefix="capped") as reader:
                assert mismatches(hub, reader) == []
    run(main(), 90)
