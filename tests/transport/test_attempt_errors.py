"""What a failed connection attempt does to a feed: any exception is a retryable
FeedConnectionError that keeps its cause; what retrying cannot cure (4xx, an untrusted
certificate, a URL that is no WebSocket endpoint, the retired v2 feed) stops at once and says
why; a connect() that fails carries the last attempt's error. Raw servers on 127.0.0.1."""
from __future__ import annotations

import asyncio
import http.client
from typing import Any

import pytest
from picows import WSHandshakeError

from fastfeed import (FeedConnectionError, MarketFeed, PermanentConnectionError, PortfolioFeed,
                      ReconnectPolicy, ReconnectStoppedError)
from fastfeed.sim import Simulator
from feed_helpers import Recorder, client_for, run, wait_until
from raw_servers import RawServer, answering, feed_url, sending, untrusted_tls

TOKEN = "test-token-attempts-0123456789"
FEEDS = [MarketFeed, PortfolioFeed]
QUICK = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, jitter=0, max_attempts=2)


def errors_of(rec: Recorder) -> list[BaseException]:
    return [args[0] for args in rec.named("error")]


# -- item 5: every exception in an attempt is retryable and keeps its cause ------------------------
# What a server sends instead of an HTTP answer, and what the client's HTTP code raises about it.
BINARY = b"\x00\xff\xfeSSH-2.0-not-http\r\n\r\n"
GARBAGE = {
    "direct-binary": (False, BINARY, WSHandshakeError),
    "direct-text": (False, b"hello, this is no HTTP\r\n\r\n", WSHandshakeError),
    "authorize-binary": (True, BINARY, http.client.BadStatusLine),
    "authorize-truncated": (True, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{"data"',
                            http.client.IncompleteRead),
}


@pytest.mark.parametrize("feed_cls", FEEDS)
@pytest.mark.parametrize("kind", list(GARBAGE))
def test_garbage_instead_of_http_is_retried_and_keeps_its_cause(feed_cls: Any, kind: str) -> None:
    authorize, data, expected = GARBAGE[kind]

    async def main() -> None:
        async with RawServer(sending(data)) as server:
            feed = feed_cls(TOKEN, url=feed_url(feed_cls, server), authorize=authorize, reconnect=QUICK)
            rec = Recorder(feed)
            with pytest.raises(ReconnectStoppedError, match="retryCount of 2 exhausted") as info:
                await feed.connect(timeout=10)
            assert server.connections == 3  # the first attempt and two retries
            errors = errors_of(rec)
            assert len(errors) == 3 and all(type(e) is FeedConnectionError for e in errors)
            assert all(isinstance(e.__cause__, expected) for e in errors), [e.__cause__ for e in errors]
            assert info.value.__cause__ is errors[-1]  # connect() says what the last attempt met
            assert str(errors[-1]) in str(info.value)
            assert TOKEN not in "".join(map(str, errors))
    run(main())


@pytest.mark.parametrize("feed_cls", FEEDS)
def test_a_token_provider_that_raises_once_is_retried(feed_cls: Any) -> None:
    calls = []

    def provider() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError("the token service hung up")
        return TOKEN

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None) as sim:
            url = sim.market_url if feed_cls is MarketFeed else sim.portfolio_url
            feed = feed_cls(token_provider=provider, url=url,
                            reconnect=ReconnectPolicy(initial_delay=0.01, jitter=0, max_attempts=3))
            rec = Recorder(feed)
            async with feed:
                assert feed.connected
            [error] = errors_of(rec)
            assert type(error) is FeedConnectionError and "token_provider" in str(error)
            assert isinstance(error.__cause__, ConnectionResetError)
            assert feed.failed_attempts == 1 and len(calls) == 2
            assert rec.names()[:3] == ["error", "reconnecting", "open"]
    run(main())


# -- item 9: what retrying cannot cure stops at once, within 5 s, and names the cause -------------
@pytest.mark.parametrize("feed_cls", FEEDS)
@pytest.mark.parametrize("path", ["/feed", None], ids=["other-path", "feed-path"])
def test_a_404_stops_at_once_and_names_the_right_path(feed_cls: Any, path: str | None) -> None:
    async def main() -> None:
        async with RawServer(answering(404, "Not Found", b'{"status":"error"}')) as server:
            feed = feed_cls(TOKEN, url=feed_url(feed_cls, server, path))  # the default: retry forever
            rec = Recorder(feed)
            with pytest.raises(PermanentConnectionError) as info:
                await asyncio.wait_for(feed.connect(), 5)
            message = str(info.value)
            assert "HTTP 404" in message and info.value.status == 404
            right = "/v3/feed/market-data-feed" if feed_cls is MarketFeed else "/v2/feed/portfolio-stream-feed"
            hint = f"the feed is at the path {right}"
            assert (hint in message) == (path is not None)  # the hint only where it helps
            assert isinstance(info.value, FeedConnectionError) and isinstance(info.value, ReconnectStoppedError)
            assert server.connections == 1 and not rec.named("reconnecting")
            assert errors_of(rec) == [info.value]
            assert rec.named("autoReconnectStopped") and "404" in rec.named("autoReconnectStopped")[0][0]
            assert not feed.running
    run(main())


@pytest.mark.parametrize("status", [400, 405, 410])
def test_other_4xx_at_the_handshake_stop_at_once(status: int) -> None:
    async def main() -> None:
        async with RawServer(answering(status, "No")) as server:
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server))
            with pytest.raises(PermanentConnectionError, match=f"HTTP {status}"):
                await asyncio.wait_for(feed.connect(), 5)
            assert server.connections == 1
    run(main())


@pytest.mark.parametrize("status", [429, 500, 503])
def test_statuses_that_may_pass_are_retried(status: int) -> None:
    async def main() -> None:
        async with RawServer(answering(status, "Later")) as server:
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server), reconnect=QUICK)
            with pytest.raises(ReconnectStoppedError) as info:
                await feed.connect(timeout=10)
            assert not isinstance(info.value, PermanentConnectionError)
            assert server.connections == 3
            cause = info.value.__cause__
            assert isinstance(cause, FeedConnectionError) and cause.status == status
            assert f"HTTP {status}" in str(info.value)
    run(main())


def test_the_retired_v2_market_feed_is_named() -> None:
    async def main() -> None:
        async with RawServer(answering(404, "Not Found")) as server:
            feed = MarketFeed(TOKEN, url=server.url("/v2/feed/market-data-feed"))
            with pytest.raises(PermanentConnectionError, match="2025-08-22") as info:
                await asyncio.wait_for(feed.connect(), 5)
            assert "/v3/feed/market-data-feed" in str(info.value)
            assert server.connections == 0  # known before asking
    run(main())


@pytest.mark.parametrize("feed_cls", FEEDS)
@pytest.mark.parametrize("authorize", [False, True], ids=["direct", "authorize"])
def test_an_untrusted_certificate_stops_at_once_and_says_so(feed_cls: Any, authorize: bool) -> None:
    async def main() -> None:
        async with RawServer(answering(404, "unused"), ssl_context=untrusted_tls()) as server:
            feed = feed_cls(TOKEN, url=feed_url(feed_cls, server, scheme="wss"), authorize=authorize)
            rec = Recorder(feed)
            with pytest.raises(PermanentConnectionError) as info:
                await asyncio.wait_for(feed.connect(), 5)
            message = str(info.value)
            assert "certificate" in message and "CERTIFICATE_VERIFY_FAILED" in message
            assert info.value.__cause__ is not None
            assert not rec.named("reconnecting")  # (the server never saw a request: TLS failed first)
    run(main())


def test_a_url_that_is_not_a_websocket_endpoint_stops_at_once() -> None:
    async def main() -> None:
        page = b"<html>a web page</html>"
        async with RawServer(answering(200, "OK", page, Content_Type="text/html")) as server:
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server))
            with pytest.raises(PermanentConnectionError, match="not a WebSocket endpoint"):
                await asyncio.wait_for(feed.connect(), 5)
            assert server.connections == 1
    run(main())


# -- item 9: a failed connect() carries the last attempt's error -----------------------------------
def test_a_connect_that_times_out_carries_the_last_error() -> None:
    async def main() -> None:
        async with RawServer(answering(503, "Service Unavailable")) as server:
            policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.05, jitter=0)  # forever
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server), reconnect=policy)
            with pytest.raises(TimeoutError, match="did not open within 3.0 s") as info:
                await feed.connect(timeout=3.0)
            cause = info.value.__cause__
            assert isinstance(cause, FeedConnectionError) and cause.status == 503
            assert "HTTP 503" in str(info.value)
            assert server.connections >= 1 and not feed.running
    run(main())


def test_a_feed_in_a_thread_that_fails_says_why() -> None:
    async def main() -> None:
        async with RawServer(answering(404, "Not Found")) as server:
            feed = MarketFeed(TOKEN, url=feed_url(MarketFeed, server, "/feed"))
            loop = asyncio.get_running_loop()
            with pytest.raises(PermanentConnectionError, match="HTTP 404"):
                await asyncio.wait_for(loop.run_in_executor(None, feed.start, 10.0), 5)
    run(main())


def test_the_simulators_tls_without_its_ca_is_refused_quickly() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], tls=True, ping_interval=None) as sim:
            feed = client_for(MarketFeed, sim, sim.market_url, TOKEN, ssl=True)
            with pytest.raises(PermanentConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await asyncio.wait_for(feed.connect(), 5)
    run(main())


def test_a_cause_that_quotes_the_token_is_replaced_by_a_scrubbed_one() -> None:
    import traceback

    calls = []

    def provider() -> str:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError(f"refreshing Bearer {TOKEN} failed")
        return TOKEN

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], ping_interval=None, rate=50) as sim:
            feed = MarketFeed(token_provider=provider, url=sim.market_url,
                              reconnect=ReconnectPolicy(initial_delay=0.01, jitter=0))
            rec = Recorder(feed)
            async with feed:
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="back")
            [error] = errors_of(rec)
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            assert "RuntimeError" in text and "refreshing Bearer tok-" in text
            assert TOKEN not in text and TOKEN not in repr(error.__cause__)
    run(main())
