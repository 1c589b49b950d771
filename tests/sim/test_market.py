"""The market-data feed: market_info, snapshots, live ticks, modes, caps, seeds."""
from __future__ import annotations


from google.protobuf.message import Message
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

from fastfeed.sim import Simulator
from fastfeed.sim.prices import SEGMENTS, universe

from sim_helpers import PLUS, TOKEN, connect, recv_feed, request, run, wait_until

INITIAL, LIVE, INFO = up.initial_feed, up.live_feed, up.market_info


def test_market_info_then_snapshot_then_live_ticks(keys: list[str]) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200) as sim:
            async with connect(sim.market_url) as ws:
                first = await recv_feed(ws)
                assert first.type == INFO
                assert set(first.marketInfo.segmentStatus) == set(SEGMENTS)
                assert first.marketInfo.casMarketStatus and first.marketInfo.preOpenSessionStatus
                await ws.send(request("sub", keys, "ltpc"))
                snap = await recv_feed(ws)
                assert snap.type == INITIAL and set(snap.feeds) == set(keys)
                for _ in range(20):
                    live = await recv_feed(ws)
                    assert live.type == LIVE and live.currentTs > 1_600_000_000_000
                    assert 1 <= len(live.feeds) and set(live.feeds) <= set(keys)
                    for feed in live.feeds.values():
                        assert feed.WhichOneof("FeedUnion") == "ltpc" and feed.ltpc.ltp > 0
    run(main())


def test_modes_build_the_right_messages(keys: list[str]) -> None:
    async def main() -> None:
        async with Simulator(plus_tokens=[PLUS], rate=0) as sim:
            async with connect(sim.market_url, PLUS) as ws:
                await recv_feed(ws)
                await ws.send(request("sub", keys, "full"))
                snap = await recv_feed(ws)
                index = snap.feeds["NSE_INDEX|Nifty 50"]
                assert index.requestMode == up.full_d5
                assert index.fullFeed.WhichOneof("FullFeedUnion") == "indexFF"
                assert index.fullFeed.indexFF.ltpc.ltp > 20_000
                assert {o.interval for o in index.fullFeed.indexFF.marketOHLC.ohlc} == {"1d", "I1"}
                eq = snap.feeds["NSE_EQ|INE002A01018"].fullFeed.marketFF
                assert len(eq.marketLevel.bidAskQuote) == 5 and 100 <= eq.ltpc.ltp <= 5000
                for q in eq.marketLevel.bidAskQuote:
                    assert 0 < q.bidP < q.askP and q.bidQ > 0 and q.askQ > 0
                bids = [q.bidP for q in eq.marketLevel.bidAskQuote]
                asks = [q.askP for q in eq.marketLevel.bidAskQuote]
                assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
                await ws.send(request("change_mode", keys[:3], "option_greeks"))
                snap = await recv_feed(ws)
                assert set(snap.feeds) == set(keys[:3])
                fo = snap.feeds["NSE_FO|43919"]
                assert fo.requestMode == up.option_greeks
                assert fo.WhichOneof("FeedUnion") == "firstLevelWithGreeks"
                assert fo.firstLevelWithGreeks.firstDepth.askP > fo.firstLevelWithGreeks.firstDepth.bidP
                await ws.send(request("sub", keys[1:2], "full_d30"))
                snap = await recv_feed(ws)
                d30 = snap.feeds["NSE_EQ|INE002A01018"]
                assert d30.requestMode == up.full_d30
                assert len(d30.fullFeed.marketFF.marketLevel.bidAskQuote) == 30
                await ws.send(request("unsub", keys))
                await wait_until(lambda: not sim.market_sessions[0].subscriptions)
    run(main())


def test_full_d30_is_silently_ignored_without_plus(keys: list[str]) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50) as sim:
            async with connect(sim.market_url) as ws:
                await recv_feed(ws)
                await ws.send(request("sub", keys, "full_d30"))
                await ws.send(request("sub", keys[:1], "ltpc"))
                snap = await recv_feed(ws)  # the ltpc snapshot comes first: d30 got nothing
                assert snap.type == INITIAL and list(snap.feeds) == keys[:1]
                assert snap.feeds[keys[0]].WhichOneof("FeedUnion") == "ltpc"
                assert sim.counters.keys_dropped == len(keys)
    run(main())


def test_caps_are_enforced_silently_per_connection() -> None:
    many = universe(5001, seed=3)

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=0) as sim:
            async with connect(sim.market_url) as ws:
                await recv_feed(ws)
                await ws.send(request("sub", many, "ltpc"))
                snap = await recv_feed(ws)
                assert len(snap.feeds) == 5000 and many[-1] not in snap.feeds
                assert sim.counters.keys_dropped == 1
                # mixing modes: full is capped at 1500 (not 2000) once ltpc is in use
                await ws.send(request("unsub", many[:4000]))
                await ws.send(request("sub", many[:1600], "full"))
                snap = await recv_feed(ws, timeout=10)
                assert len(snap.feeds) == 1500
                assert sim.counters.keys_dropped == 1 + 100
                session = sim.market_sessions[0]
                assert len(session.subscriptions) == 1000 + 1500
    run(main())


def test_configured_caps_and_malformed_requests() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=0, caps={"full": (3, 2)}) as sim:
            async with connect(sim.market_url) as ws:
                await recv_feed(ws)
                for bad in (b"not json", b'{"method":"sub"}', request("sub", ["A|1"], "bogus"),
                            request("nope", ["NSE_EQ|X"], "full"), b"[]"):
                    await ws.send(bad)
                # a text frame is accepted too; malformed keys are skipped one by one
                await ws.send(request("sub", ["NSE_EQ|A", "no-bar", "NSE_EQ|B", "NSE_EQ|C",
                                              "NSE_EQ|D"], "full").decode())
                snap = await recv_feed(ws)
                assert sorted(snap.feeds) == ["NSE_EQ|A", "NSE_EQ|B", "NSE_EQ|C"]
                assert sim.counters.requests_malformed == 5 and sim.counters.requests == 1
                assert sim.counters.keys_dropped == 2
    run(main())


def _strip_times(frame: up.FeedResponse) -> bytes:
    frame.ClearField("currentTs")
    for feed in frame.feeds.values():
        for msg in _walk(feed):
            for name in ("ltt", "ts"):
                if name in msg.DESCRIPTOR.fields_by_name:
                    msg.ClearField(name)
    return frame.SerializeToString(deterministic=True)


def _walk(msg: Message):
    yield msg
    for field, value in msg.ListFields():
        if field.message_type is not None:
            if isinstance(value, Message):
                values = [value]
            elif hasattr(value, "values"):  # a map
                values = list(value.values())
            else:
                values = list(value)
            for v in values:
                if isinstance(v, Message):
                    yield from _walk(v)


def test_same_seed_same_stream(keys: list[str]) -> None:
    async def stream(seed: int) -> list[bytes]:
        async with Simulator(tokens=[TOKEN], rate=500, seed=seed, instruments_per_frame=3) as sim:
            async with connect(sim.market_url) as ws:
                await recv_feed(ws)
                await ws.send(request("sub", keys, "full"))
                return [_strip_times(await recv_feed(ws)) for _ in range(30)]

    a, b, c = run(stream(7)), run(stream(7)), run(stream(8))
    assert a == b
    assert a != c


def test_every_schema_field_is_used_somewhere_and_live_ticks_omit_parts(keys: list[str]) -> None:
    async def main() -> tuple[set[str], int]:
        seen: set[str] = set()
        depthless = 0
        async with Simulator(plus_tokens=[PLUS], rate=1000, phase="pre_open",
                             instruments_per_frame=6) as sim:
            async with connect(sim.market_url, PLUS) as ws:
                await ws.send(request("sub", keys, "full"))
                await ws.send(request("sub", ["NSE_EQ|INE848E01016", "NSE_FO|1"], "ltpc"))
                await ws.send(request("sub", ["NSE_FO|2", "NSE_FO|3", "NSE_FO|4"], "option_greeks"))
                await ws.send(request("sub", ["NSE_EQ|INE040A01034"], "full_d30"))
                for _ in range(300):
                    frame = await recv_feed(ws)
                    for msg in _walk(frame):
                        seen.update(f"{msg.DESCRIPTOR.name}.{f.name}" for f, _ in msg.ListFields())
                        if msg.DESCRIPTOR.name == "MarketFullFeed" and not msg.HasField("marketLevel"):
                            depthless += 1
        return seen, depthless

    seen, depthless = run(main())
    every = {f"{m.name}.{f.name}" for m in up.DESCRIPTOR.message_types_by_name.values()
             for f in m.fields}
    every = {name for name in every if not name.startswith("FeedResponse.type")}  # 0 is not sent
    missing = every - seen - {"Feed.requestMode"} | ({"Feed.requestMode"} - seen)
    assert not missing, missing
    assert depthless > 0
