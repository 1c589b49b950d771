"""A server that accepts and then closes at once: the attempt count only restarts after a
connection has lived ``ReconnectPolicy.stable_after`` seconds or delivered data, so backoff grows
and ``max_attempts`` ends it. And a connection whose ``_on_open`` failed is not an open one."""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from fastfeed import MarketFeed, PortfolioFeed, ReconnectPolicy, ReconnectStoppedError
from fastfeed.errors import FeedConnectionError
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.sim import Faults, Simulator
from fastfeed.sim.frames import market_info
from feed_helpers import Recorder, run, wait_until
from raw_servers import Connection, RawServer, feed_url

TOKEN = "test-token-flapping-0123456789"
FEEDS = [MarketFeed, PortfolioFeed]


def flapping(hold: float = 0.0) -> Any:
    """Completes the WebSocket upgrade, sends nothing, and drops the connection after `hold` s."""
    async def handler(conn: Connection) -> None:
        await conn.read_request()
        await conn.accept_websocket()
        if hold:
            await asyncio.sleep(hold)
        conn.close()
    return handler


def attempts(rec: Recorder) -> list[int]:
    return [int(re.match(r"Auto reconnect attempt (\d+)/", m).group(1))  # type: ignore[union-attr]
            for (m,) in rec.named("reconnecting")]


@pytest.mark.parametrize("feed_cls", FEEDS)
def test_a_flapping_server_backs_off_and_exhausts_max_attempts(
        feed_cls: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastfeed.transport.client")
    policy = ReconnectPolicy(initial_delay=0.02, multiplier=2.0, max_delay=1.0, jitter=0,
                             max_attempts=4)

    async def main() -> None:
        async with RawServer(flapping()) as server:
            feed = feed_cls(TOKEN, url=feed_url(feed_cls, server), reconnect=policy,
                            ping_interval=None)
            rec = Recorder(feed)
            await feed.connect(timeout=10)  # the first connection did open
            with pytest.raises(ReconnectStoppedError, match="retryCount of 4 exhausted") as info:
                await asyncio.wait_for(feed.wait_closed(), 10)
            assert server.connections == 5
            assert attempts(rec) == [1, 2, 3, 4]  # the count was never reset
            assert rec.named("autoReconnectStopped") == [("retryCount of 4 exhausted.",)]
            # The last connection's short life is the error connect() and wait_closed() report.
            cause = info.value.__cause__
            assert isinstance(cause, FeedConnectionError) and "closed" in str(cause)
    run(main())
    delays = [float(m) for m in re.findall(r"reconnect attempt \d+ in ([\d.]+) s", caplog.text)]
    assert delays == [0.02, 0.04, 0.08, 0.16]  # backoff grows


def test_a_connection_that_lived_long_enough_restarts_the_count() -> None:
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, jitter=0, max_attempts=1,
                             stable_after=0.1)

    async def main() -> None:
        async with RawServer(flapping(hold=0.8)) as server:  # a wide margin over stable_after
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server), reconnect=policy,
                              ping_interval=None)
            rec = Recorder(feed)
            async with feed:
                await wait_until(lambda: server.connections >= 3, what="three connections")
                assert feed.running and attempts(rec)[:2] == [1, 1]
    run(main())


def test_a_connection_that_delivered_data_restarts_the_count() -> None:
    """Each connection delivers quotes and is then cut: a healthy feed, so it goes on past
    max_attempts reconnects, each one attempt 1 again."""
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=200, ping_interval=None,
                             faults=Faults(abort_after_frames=3)) as sim:
            policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, jitter=0, max_attempts=1)
            feed = MarketFeed(TOKEN, url=sim.market_url, reconnect=policy, ping_interval=None,
                              instruments=sim.instruments[:3])
            rec = Recorder(feed)
            async with feed:
                await wait_until(lambda: feed.reconnects >= 3, what="three reconnects")
                assert feed.running and set(attempts(rec)) == {1}
    run(main())


class FailingOpen(MarketFeed):
    """A feed whose first `failures` connections fail in _on_open (a subclass hook)."""

    failures = 1

    def _on_open(self, listener: Any, attempts: int) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("could not send the subscriptions")
        super()._on_open(listener, attempts)


def test_open_and_connect_wait_for_an_on_open_that_succeeded() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = FailingOpen(TOKEN, url=sim.market_url, instruments=sim.instruments[:1],
                               reconnect=ReconnectPolicy(initial_delay=0.01, jitter=0, max_attempts=3))
            rec = Recorder(feed)
            async with feed:
                assert feed.connected and feed.failures == 0
                assert rec.names()[:3] == ["error", "reconnecting", "open"]
                assert rec.names().count("open") == 1 and not rec.named("close")
                [error] = [a[0] for a in rec.named("error")]
                assert isinstance(error, FeedConnectionError)
                assert isinstance(error.__cause__, RuntimeError)
                assert feed.connections == 1 and feed.failed_attempts == 1
                await feed.wait_for(sim.instruments[0], timeout=5)
    run(main())


def test_a_feed_whose_on_open_always_fails_never_opens() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
            feed = FailingOpen(TOKEN, url=sim.market_url,
                               reconnect=ReconnectPolicy(initial_delay=0.01, jitter=0, max_attempts=2))
            feed.failures = 100
            rec = Recorder(feed)
            with pytest.raises(ReconnectStoppedError, match="could not send the subscriptions"):
                await feed.connect(timeout=10)
            assert not rec.named("open") and not feed.connected and feed.connections == 0
    run(main())


def test_frames_that_came_with_a_failed_open_reach_nothing() -> None:
    """Frames read with the upgrade, behind a connection whose _on_open failed, are counted and
    dropped: the store, the market status and the events never see them."""
    key = "NSE_EQ|INE000A01011"
    update = pb.FeedResponse(type=pb.live_feed, feeds={key: pb.Feed(ltpc=pb.LTPC(ltp=101.5))})
    frames = [update.SerializeToString(), market_info(1_700_000_000_000)]

    async def upgrade_and_data(conn: Connection) -> None:
        await conn.read_request()
        await conn.accept_websocket(*frames)
        while (await conn.read_frame())[0] != 0x8:
            pass

    async def main() -> None:
        async with RawServer(upgrade_and_data) as server:
            feed = FailingOpen(TOKEN, url=feed_url(MarketFeed, server), ping_interval=None,
                               reconnect=ReconnectPolicy.disabled())
            feed.failures = 100
            rec = Recorder(feed)
            updates: list[Any] = []
            feed.on_update(updates.append)
            with pytest.raises(ReconnectStoppedError, match="could not send the subscriptions"):
                await feed.connect(timeout=10)
            assert feed._listener_totals()["frames"] == len(frames)  # they did arrive
            assert feed.quote(key) is None and feed.instruments == [] and not updates
            assert feed.stats()["frames"] == 0 and feed.stats()["market_info"] == 0
            assert set(rec.names()) == {"error", "autoReconnectStopped"}
    run(main())
