"""The receive time the listener stamps: one clock read per socket read when no callback runs per
frame (the frames of one read arrived together), each frame's own when one does (its latency is
measured from it). A raw server over a real socket decides what one read holds: one write."""
from __future__ import annotations

import asyncio
from typing import Any

from fastfeed import MarketFeed, ReconnectPolicy
from fastfeed.benchmark.frames import frame, instrument_keys
from feed_helpers import run, wait_until
from raw_servers import Connection, RawServer, feed_url, server_frame

KEYS = instrument_keys(4)
PING = server_frame(b"", opcode=0x9)


def data(i: int) -> bytes:
    return server_frame(frame(KEYS[i:i + 1], "full", seed=i))


def stamps(with_callback: bool) -> dict[str, int]:
    """recv_ns per key after two reads: [k0, k1, PING] in one write, then [k2, k3] in another
    once the client has taken the first."""
    async def main() -> dict[str, int]:
        second = asyncio.Event()

        async def handler(conn: Connection) -> None:
            await conn.read_request()
            await conn.accept_websocket()
            await conn.send(data(0) + data(1) + PING)
            await second.wait()
            await conn.send(data(2) + data(3))
            await conn.reader.read()  # until the client goes

        async with RawServer(handler) as server:
            feed = MarketFeed("tok", url=feed_url(MarketFeed, server), ping_interval=None,
                              reconnect=ReconnectPolicy.disabled())
            seen: list[Any] = []
            if with_callback:
                feed.on_update(lambda records: seen.append(records.copy()))
            try:
                await feed.connect()
                listener = feed._live_listener()
                await wait_until(lambda: feed.decoder.frames >= 2 and listener.pings_received >= 1,
                                 what="the first read")
                second.set()
                await wait_until(lambda: feed.decoder.frames >= 4, what="the second read")
                return {k: feed.quote(k).recv_ns for k in KEYS}
            finally:
                await feed.close()

    return run(main())


def test_frames_of_one_read_share_its_time_and_the_next_read_gets_its_own() -> None:
    t = stamps(with_callback=False)
    assert t[KEYS[0]] == t[KEYS[1]] > 0
    # A control frame ended the first read: the clock is read again for the next one.
    assert t[KEYS[2]] == t[KEYS[3]] > t[KEYS[1]]


def test_with_a_callback_every_frame_gets_its_own_time() -> None:
    t = stamps(with_callback=True)
    assert 0 < t[KEYS[0]] < t[KEYS[1]] < t[KEYS[2]] < t[KEYS[3]]
