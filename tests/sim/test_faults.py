"""Each fault switch, shown to happen on a real connection."""
from __future__ import annotations

import asyncio

import pytest
import websockets
from google.protobuf.message import DecodeError
from picows import WSMsgType
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

from fastfeed.sim import Faults, Simulator

from sim_helpers import TOKEN, RawFrames, connect, recv_feed, request, run, wait_until

KEYS = ["NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_INDEX|Nifty 50"]


async def drain(ws, limit: int = 10_000) -> tuple[list[bytes], websockets.exceptions.ConnectionClosed]:
    """Every frame until the connection ends, and how it ended."""
    got: list[bytes] = []
    try:
        while len(got) < limit:
            got.append(await asyncio.wait_for(ws.recv(), 5))
    except websockets.exceptions.ConnectionClosed as exc:
        return got, exc
    raise AssertionError("the connection did not end")


@pytest.mark.parametrize("code", [1000, 1011])
def test_close_after_frames(code: int) -> None:
    async def main() -> None:
        faults = Faults(close_after_frames=10, close_code=code)
        async with Simulator(tokens=[TOKEN], rate=500, faults=faults) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "full"))
                got, closed = await drain(ws)
                assert len(got) == 10 and closed.rcvd is not None and closed.rcvd.code == code
            assert sim.counters.faults["close_after_frames"] == 1
    run(main())


def test_abort_after_frames_sends_no_close_frame() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=500, faults=Faults(abort_after_frames=7)) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "ltpc"))
                got, closed = await drain(ws)
                assert len(got) == 7 and closed.rcvd is None
    run(main())


@pytest.mark.parametrize("switch", ["abort_after_seconds", "close_after_seconds"])
def test_time_based_endings(switch: str) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, faults=Faults(**{switch: 60})) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "ltpc"))
                # not before its time: live frames flow, the switch has not fired
                for _ in range(5):
                    await recv_feed(ws)
                session = sim.market_sessions[0]
                assert sim.counters.faults[switch] == 0 and not session.closing
                # brought within the connection's age, it fires on this live connection
                setattr(session.faults, switch, 0.2)
                _, closed = await drain(ws)
                if switch == "abort_after_seconds":
                    assert closed.rcvd is None
                else:
                    assert closed.rcvd is not None and closed.rcvd.code == 1011
            assert sim.counters.faults[switch] == 1
    run(main())


def test_malformed_every_n_frames_is_rejected_by_protobuf() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=1000, faults=Faults(malformed_every=4)) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "full"))
                bad = []
                for i in range(40):
                    raw = await ws.recv()
                    try:
                        up.FeedResponse.FromString(raw)
                    except DecodeError:
                        bad.append(i)
                # one malformed frame goes before every 4th good one: positions 3, 8, 13, ...
                assert bad == list(range(3, 40, 5))
    run(main())


def test_fragmented_frames_arrive_as_continuations() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, faults=Faults(fragment_size=100)) as sim:
            client = await RawFrames().connect(sim.market_url)
            client.transport.send(WSMsgType.BINARY, request("sub", KEYS, "full"))
            await wait_until(lambda: len(client.frames) > 60)
            client.transport.disconnect()
        frames = [f for f in client.frames if f[0] != WSMsgType.PING]
        assert any(t == WSMsgType.CONTINUATION for t, _, _ in frames)
        # reassembled, every message is a valid FeedResponse
        message, parsed = b"", 0
        for msg_type, fin, payload in frames:
            assert (msg_type == WSMsgType.CONTINUATION) == bool(message) or msg_type == WSMsgType.CONTINUATION
            message += payload
            assert len(payload) <= 100
            if fin:
                up.FeedResponse.FromString(message)
                message, parsed = b"", parsed + 1
        assert parsed > 3
    run(main())


def test_stall_keeps_the_socket_open_and_silent() -> None:
    async def main() -> None:
        # A stall far longer than the test, which the test ends itself: no race with the clock.
        faults = Faults(stall_seconds=600, stall_after_frames=5)
        async with Simulator(tokens=[TOKEN], rate=1000, faults=faults) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "ltpc"))
                for _ in range(5):
                    await recv_feed(ws)
                session = sim.market_sessions[0]
                # The 5th frame went out and the stall began at once, on this same loop.
                assert sim.counters.faults["stall_seconds"] == 1
                assert not session.can_send() and session.stall_until > 0
                # open, and control frames still flow: a ping is answered mid-stall ...
                await asyncio.wait_for(await ws.ping(), 10)
                assert session.counters.pongs_sent == 1
                # ... while no data frame has gone out since the 5th
                assert session.data_frames == 5 and not session.closing
                session.stall_until = 0.0  # end the stall
                for _ in range(25):
                    await recv_feed(ws, timeout=10)
                assert session.data_frames >= 30
                assert sim.counters.faults["stall_seconds"] == 1  # once per connection
    run(main())


def test_oversized_frame() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100, faults=Faults(oversized_every=5)) as sim:
            async with connect(sim.market_url) as ws:
                await ws.send(request("sub", KEYS, "ltpc"))
                sizes = []
                for _ in range(8):
                    raw = await ws.recv()
                    frame = up.FeedResponse.FromString(raw)
                    sizes.append((len(frame.feeds), len(raw)))
                big = [s for s in sizes if s[0] == 2000]
                assert len(big) == 1 and big[0][1] > 150_000
    run(main())


def test_ignore_pongs_gets_the_client_closed_after_the_ping_timeout() -> None:
    async def main() -> None:
        # Healthy: a reply timeout generous enough that a loaded machine never misses it.
        async with Simulator(tokens=[TOKEN], rate=0, ping_interval=1.0, ping_timeout=1.0) as sim:
            async with connect(sim.market_url) as healthy:
                await recv_feed(healthy)
                await wait_until(lambda: sim.counters.pongs_received >= 2, timeout=10)
                assert healthy.state is websockets.protocol.State.OPEN
                assert not sim.counters.faults["ignore_pongs"]
        # Pongs ignored: a tight timeout, which can only make the close come sooner.
        async with Simulator(tokens=[TOKEN], rate=0, ping_interval=0.2, ping_timeout=0.1,
                             faults=Faults(ignore_pongs=True)) as sim:
            async with connect(sim.market_url) as ws:
                _, closed = await drain(ws)
                assert closed.rcvd is not None and closed.rcvd.code == 1001
            assert sim.counters.faults["ignore_pongs"] >= 1
    run(main())


def test_ignore_pings_leaves_client_pings_unanswered() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=0, ping_interval=None) as sim:
            async with connect(sim.market_url) as ws:
                await recv_feed(ws)
                await asyncio.wait_for(await ws.ping(), 5)  # answered
                sim.market_sessions[0].faults.ignore_pings = True  # this connection only
                waiter = await ws.ping()
                await wait_until(lambda: sim.counters.faults["ignore_pings"] == 1)
                await asyncio.sleep(0.2)
                assert not waiter.done()
                assert sim.counters.pings_received == 2 and sim.counters.pongs_sent == 1
    run(main())


def test_per_connection_switch_and_counters() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=300) as sim:
            async with connect(sim.market_url) as a, connect(sim.market_url) as b:
                await a.send(request("sub", KEYS, "ltpc"))
                await b.send(request("sub", KEYS, "ltpc"))
                await wait_until(lambda: len(sim.market_sessions) == 2)
                target = max(sim.market_sessions, key=lambda s: s.serial)
                target.faults.close_after_frames = target.data_frames + 3
                _, closed = await drain(b)  # b connected second: it has the larger serial
                assert closed.rcvd.code == 1011
                assert a.state is websockets.protocol.State.OPEN
                assert target.counters.faults["close_after_frames"] == 1
                assert target.counters.requests == 1 and target.counters.frames_sent > 3
                assert sim.counters.frames_sent >= target.counters.frames_sent
    run(main())
