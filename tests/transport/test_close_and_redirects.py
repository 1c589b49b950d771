"""How a connection's end is reported: a CLOSE frame without a status code (reply 1000, report
1005), one with a code no endpoint may send (reply 1002, report 1002 with a reason naming the code), a close()
right after the open; and where the Authorization header may go on a redirect: the original host,
or a host under its registered domain."""
from __future__ import annotations

import asyncio
import json
import re
import struct
from typing import Any

import pytest

from fastfeed import MarketFeed, PortfolioFeed, ReconnectPolicy
from fastfeed.events import CONNECTION_EVENTS
from fastfeed.transport.connection import may_carry_token
from fastfeed.sim import Simulator
from feed_helpers import Recorder, run, wait_until
from raw_servers import Connection, RawServer, answering, feed_url

TOKEN = "test-token-redirects-0123456789"
ONCE = ReconnectPolicy.disabled()


FEEDS = [MarketFeed, PortfolioFeed]


@pytest.mark.parametrize("feed_cls", FEEDS)
@pytest.mark.parametrize("payload,code,reason,reply", [
    (b"", 1005, "", 1000),  # 1005 must never be sent
    (struct.pack("!H", 1001) + b"bye", 1001, "bye", 1001),
    (struct.pack("!H", 0) + b"huh", 1002, "invalid close code 0 received: huh", 1002),
    (struct.pack("!H", 0), 1002, "invalid close code 0 received", 1002),
    (struct.pack("!H", 1006), 1002, "invalid close code 1006 received", 1002),
    (struct.pack("!H", 5000) + b"x", 1002, "invalid close code 5000 received: x", 1002),
    # refused by picows itself, which says why
    (struct.pack("!H", 1005), 1002, ".*invalid close code.* 1005", 1002),
], ids=["no-code", "with-code", "code-0", "code-0-no-reason", "code-1006", "code-5000", "code-1005"])
def test_a_close_frame_is_answered_and_reported(feed_cls: Any, payload: bytes, code: int,
                                                reason: str, reply: int) -> None:
    replies: list[tuple[int, bytes]] = []

    async def closing(conn: Connection) -> None:
        await conn.read_request()
        await conn.accept_websocket()
        await conn.send(bytes([0x88, len(payload)]) + payload)  # CLOSE, unmasked from a server
        while True:
            opcode, data = await conn.read_frame()
            if opcode == 0x8:
                replies.append((opcode, data))
                return

    async def main() -> None:
        async with RawServer(closing) as server:
            feed = feed_cls(TOKEN, url=feed_url(feed_cls, server), reconnect=ONCE, ping_interval=None)
            rec = Recorder(feed)
            await feed.connect(timeout=10)
            await wait_until(lambda: rec.named("close"), what="close event")
            [(got_code, got_reason)] = rec.named("close")
            assert got_code == code and re.fullmatch(reason, got_reason), got_reason
            await wait_until(lambda: replies, what="the client's CLOSE")
            [(_, data)] = replies
            assert struct.unpack("!H", data[:2])[0] == reply
            await feed.close()
    run(main())


@pytest.mark.parametrize("feed_cls", FEEDS)
def test_a_close_right_after_the_open_is_reported(feed_cls: Any) -> None:
    """stop() from the open event: the feed is closing before it serves the connection, which
    did open, so its close is reported too."""
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None) as sim:
            url = sim.market_url if feed_cls is MarketFeed else sim.portfolio_url
            feed = feed_cls(TOKEN, url=url, reconnect=ONCE, ping_interval=None)
            rec = Recorder(feed)
            feed.on("open", feed.stop)
            await feed.connect(timeout=10)
            await asyncio.wait_for(feed.wait_closed(), 10)
            assert [n for n in rec.names() if n in CONNECTION_EVENTS] == ["open", "close"]
            [(code, _)] = rec.named("close")
            assert code == 1000 and feed.state == "stopped" and feed.error is None
    run(main())


# -- the Authorization header on redirects --------------------------------------------------------
@pytest.mark.parametrize("origin,target,allowed", [
    ("api.upstox.com", "wsfeeder-api.upstox.com", True),
    ("api.upstox.com", "api.upstox.com", True),
    ("API.Upstox.com.", "wsfeeder-api.upstox.com", True),
    ("api.upstox.com", "upstox.com", True),
    ("api.upstox.com", "upstox.com.evil.example", False),
    ("api.upstox.com", "evilupstox.com", False),
    ("api.upstox.com", "wsfeeder.example.com", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("127.0.0.1", "localhost", False),
    ("localhost", "localhost", True),
    ("localhost", "evil.localhost", False),
    ("::1", "::1", True),
    ("[::1]", "::1", True),
    ("10.0.0.1", "0.1", False),
])
def test_which_hosts_may_get_the_token(origin: str, target: str, allowed: bool) -> None:
    assert may_carry_token(origin, target) is allowed


def test_a_redirect_elsewhere_goes_without_the_token() -> None:
    async def main() -> None:
        async with RawServer(answering(404, "Not Found")) as elsewhere:
            target = elsewhere.url("/feeds?code=abc", host="localhost")  # another host name
            async with RawServer(answering(302, "Found", Location=target)) as origin:
                feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, origin), reconnect=ONCE)
                with pytest.raises(Exception, match="HTTP 404"):
                    await asyncio.wait_for(feed.connect(), 5)
                [first] = origin.requests
                assert first.headers["authorization"] == f"Bearer {TOKEN}"
            [followed] = elsewhere.requests
            assert followed.path == "/feeds?code=abc"
            assert "authorization" not in followed.headers
    run(main())


def test_an_authorized_uri_elsewhere_goes_without_the_token() -> None:
    async def main() -> None:
        async with RawServer(answering(404, "Not Found")) as elsewhere:
            uri = elsewhere.url("/feeds?code=abc", host="localhost")
            body = json.dumps({"status": "success", "data": {"authorized_redirect_uri": uri}}).encode()
            async with RawServer(answering(200, "OK", body, Content_Type="application/json")) as origin:
                feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, origin), authorize=True, reconnect=ONCE)
                with pytest.raises(Exception, match="HTTP 404"):
                    await asyncio.wait_for(feed.connect(), 5)
                [asked] = origin.requests
                assert asked.path.endswith("/authorize") and asked.headers["authorization"] == f"Bearer {TOKEN}"
            [followed] = elsewhere.requests
            assert "authorization" not in followed.headers
    run(main())


def test_a_redirect_to_the_same_host_keeps_the_token() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None) as sim:
            async with RawServer(answering(307, "Temporary Redirect", Location=sim.market_url)) as origin:
                feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, origin), reconnect=ONCE,
                                  instruments=sim.instruments[:1])
                async with feed:
                    await feed.wait_for(sim.instruments[0], timeout=5)
                # the simulator gave its redirect only because the token came along
                assert sim.counters.redirects == 1 and len(origin.requests) == 1
    run(main())


def test_redirects_are_bounded() -> None:
    async def loop_forever(conn: Connection) -> None:
        await conn.read_request()
        await conn.answer(302, "Found", Location=conn.server.url("/again"))

    async def main() -> None:
        async with RawServer(loop_forever) as server:
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server), reconnect=ONCE)
            with pytest.raises(Exception, match="redirect"):
                await asyncio.wait_for(feed.connect(), 5)
            assert server.connections == 6  # the first request and 5 redirects
    run(main())
