"""Benchmark mode: the frame pool, the exact frame count, bounded memory under backpressure."""
from __future__ import annotations

import asyncio

import pytest
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

from fastfeed.sim import Simulator
from fastfeed.sim.bench import measure_push_rate
from fastfeed.sim.market import _BLOB_BYTES

from sim_helpers import TOKEN, connect, request, run, stalled_market_client, wait_until


def test_bench_mode_sends_exactly_n_frames_then_closes_1000() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], bench=True, bench_frames=5000,
                             instruments_per_frame=2) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", sim.instruments[:20], "full"))
                got = []
                try:
                    while True:
                        got.append(await asyncio.wait_for(ws.recv(), 5))
                except Exception as exc:  # ConnectionClosedOK
                    assert exc.rcvd.code == 1000
        assert len(got) == 5000
        kinds = [up.FeedResponse.FromString(f).type for f in got]
        assert kinds[:2] == [up.market_info, up.initial_feed]
        assert set(kinds[2:]) == {up.live_feed}
        assert all(len(up.FeedResponse.FromString(f).feeds) == 2 for f in got[2:50])
    run(main())


def test_bench_push_is_bounded_by_backpressure() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], bench=True, ping_interval=None) as sim:
            sock = await asyncio.to_thread(stalled_market_client, sim, sim.instruments[:50])
            await wait_until(lambda: sim.market_sessions and sim.market_sessions[0].paused)
            session = sim.market_sessions[0]
            sent_when_paused = session.counters.bytes_sent
            await asyncio.sleep(0.2)
            assert session.paused and session.counters.bytes_sent == sent_when_paused
            buffered = session.transport.underlying_transport.get_write_buffer_size()
            assert buffered <= 4 * _BLOB_BYTES + len(session._pool.blob)
            sock.close()
    run(main())


def test_measure_push_rate_reports_what_it_pushed() -> None:
    result = measure_push_rate(frames=20_000, in_process=True)
    assert result["frames"] == 20_000 and result["bytes"] > 20_000 * 100
    assert result["frames_per_s"] > 0


def test_paced_bench_mode_sends_the_pool_at_the_rate_and_exactly_n_frames() -> None:
    # 300 frames at 1000/s cannot arrive in much under 0.3 s, however idle the machine; a
    # lower bound only, so a loaded machine cannot make it fail.
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], bench=True, bench_frames=302, bench_rate=1000.0,
                             instruments_per_frame=3, ping_interval=None) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", sim.instruments[:20], "full"))
                got = []
                loop = asyncio.get_running_loop()
                try:
                    while True:
                        got.append(await asyncio.wait_for(ws.recv(), 10))
                        if len(got) == 3:
                            t0 = loop.time()
                except Exception as exc:  # ConnectionClosedOK
                    assert exc.rcvd.code == 1000
                elapsed = loop.time() - t0
        assert len(got) == 302
        feeds = [up.FeedResponse.FromString(f) for f in got[2:]]
        assert {f.type for f in feeds} == {up.live_feed}
        assert all(len(f.feeds) == 3 for f in feeds)
        assert elapsed >= 0.2
    run(main())


def test_bench_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bench_rate"):
        Simulator(tokens=[TOKEN], bench=True, bench_rate=0)
