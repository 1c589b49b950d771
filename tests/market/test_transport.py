"""The connection under the feeds (FeedClient and transport/connection.py): a handshake cut short,
the authorize call's redirects and body size, ping settings, the scrubbing logger handed to
picows, and start()/stop() from the caller's thread. Real sockets on 127.0.0.1, nothing mocked."""
from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
import time
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from fastfeed import MarketFeed, PortfolioFeed, ReconnectPolicy
from fastfeed.errors import FeedConnectionError
from fastfeed.sim import Faults, Simulator, SimulatorThread
from fastfeed.transport.connection import (MAX_AUTHORIZE_BODY, Scrubber, ScrubbingLogger,
                                           authorize, fingerprint)

from market_helpers import KEYS, TOKEN, Recorder, feed_for, run, wait_until


# -- a connection dropped during the upgrade handshake ----------------------------------------------
class DropThenForward:
    """A TCP server that reads the upgrade request of the first `drops` connections and closes
    them without an answer, then forwards every later connection to `target` (host, port)."""

    def __init__(self, target: tuple[str, int], drops: int) -> None:
        self.target = target
        self.drops = drops
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "DropThenForward":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drops:
            try:
                await reader.readuntil(b"\r\n\r\n")
            finally:
                writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_a_connection_dropped_during_the_handshake_is_retried() -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100, ping_interval=None) as sim:
            parts = urlsplit(sim.market_url)
            async with DropThenForward((parts.hostname, parts.port), drops=2) as proxy:
                url = urlunsplit((parts.scheme, f"127.0.0.1:{proxy.port}", parts.path, parts.query, ""))
                feed = feed_for(sim, instruments=KEYS[:1])
                feed.url = url
                rec = Recorder(feed)
                async with feed:
                    await feed.wait_for(KEYS[0], timeout=10)
                assert proxy.connections >= 3
                assert not rec.named("autoReconnectStopped")
                assert len(rec.named("reconnecting")) == 2 and feed.failed_attempts == 2
                errors = [args[0] for args in rec.named("error")]
                assert len(errors) == 2
                for exc in errors:
                    assert isinstance(exc, FeedConnectionError)
                    assert "closed during the handshake" in str(exc)
    run(main())


def test_a_server_that_always_drops_the_handshake_exhausts_the_retries() -> None:
    async def main() -> None:
        async with DropThenForward(("127.0.0.1", 9), drops=1000) as server:
            policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, jitter=0, max_attempts=3)
            feed = MarketFeed(TOKEN, url=f"ws://127.0.0.1:{server.port}/feed", reconnect=policy,
                              instruments=KEYS[:1])
            rec = Recorder(feed)
            with pytest.raises(Exception, match="retryCount of 3 exhausted"):
                await feed.connect(timeout=10)
            assert rec.named("autoReconnectStopped") == [("retryCount of 3 exhausted.",)]
            assert len(rec.named("reconnecting")) == 3 and server.connections == 4
    run(main())


# -- ping settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MarketFeed, PortfolioFeed])
def test_a_ping_timeout_longer_than_the_ping_interval_is_refused(cls: Any) -> None:
    with pytest.raises(ValueError, match=r"ping_timeout \(1.0 s\).*ping_interval \(0.2 s\)"):
        cls(TOKEN, url="ws://127.0.0.1:9", ping_interval=0.2, ping_timeout=1.0)
    with pytest.raises(ValueError, match="ping_timeout"):
        cls(TOKEN, url="ws://127.0.0.1:9", ping_timeout=0)
    cls(TOKEN, url="ws://127.0.0.1:9", ping_interval=1.0, ping_timeout=1.0)
    cls(TOKEN, url="ws://127.0.0.1:9", ping_interval=None, ping_timeout=30.0)  # no pings at all


# -- the authorize call --------------------------------------------------------------------------------
class _Server:
    """A threaded HTTP server on 127.0.0.1 answering every GET with `answer(handler)`."""

    def __init__(self, answer: Any) -> None:
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests.append(dict(self.headers))
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    """Where a redirect points: it must never see the token."""
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        body = json.dumps({"data": {"authorized_redirect_uri": "ws://127.0.0.1:9/x"}}).encode()
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    with _Server(answer) as server:
        yield server


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_authorize_does_not_follow_a_redirect_with_the_token(elsewhere: _Server, status: int) -> None:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", elsewhere.url + "/feed/authorize")
        h.send_header("Content-Length", "0")
        h.end_headers()

    with _Server(answer) as server:
        feed_url = server.url.replace("http:", "ws:") + "/feed"
        with pytest.raises(FeedConnectionError, match=f"HTTP {status} \\(a redirect\\): not followed") as info:
            asyncio.run(authorize(feed_url, TOKEN, None, 5.0, Scrubber()))
        assert info.value.status == status
        assert len(server.requests) == 1 and server.requests[0]["Authorization"] == f"Bearer {TOKEN}"
    assert elsewhere.requests == []


def test_authorize_reads_at_most_64_kib() -> None:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        body = b" " * (MAX_AUTHORIZE_BODY + 10) + b"{}"
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    with _Server(answer) as server:
        with pytest.raises(FeedConnectionError, match="more than 65536 bytes"):
            asyncio.run(authorize(server.url.replace("http:", "ws:") + "/feed", TOKEN, None, 5.0,
                                  Scrubber()))


def test_a_feed_told_to_authorize_reports_the_refused_redirect(elsewhere: _Server) -> None:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", elsewhere.url + "/feed/authorize")
        h.send_header("Content-Length", "0")
        h.end_headers()

    async def main(url: str) -> list[Any]:
        feed = MarketFeed(TOKEN, url=url, authorize=True, reconnect=ReconnectPolicy.disabled())
        rec = Recorder(feed)
        with pytest.raises(Exception):
            await feed.connect(timeout=10)
        return [args[0] for args in rec.named("error")]

    with _Server(answer) as server:
        errors = run(main(server.url.replace("http:", "ws:") + "/feed"))
    assert len(errors) == 1 and isinstance(errors[0], FeedConnectionError)
    assert "redirect" in str(errors[0])
    assert elsewhere.requests == []


# -- the logger handed to picows ------------------------------------------------------------------------
def test_the_scrubbing_logger_scrubs_tracebacks_and_stacks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)
    scrub = Scrubber()
    scrub.add(TOKEN)
    assert scrub.tokens == (TOKEN,)
    adapter = ScrubbingLogger(logging.getLogger("fastfeed.test.scrubbing"), scrub)
    try:
        raise RuntimeError(f"upgrade failed: Authorization: Bearer {TOKEN}")
    except RuntimeError as exc:
        adapter.error("handshake %s", "failed", exc_info=True)
        adapter.warning("again", exc_info=exc)
        adapter.log(5, "and below DEBUG", exc_info=(type(exc), exc, exc.__traceback__))
    adapter.info("where %s", TOKEN, stack_info=True)
    records = [r for r in caplog.records if r.name == "fastfeed.test.scrubbing"]
    assert len(records) == 4
    for record in records[:3]:
        text = record.getMessage()
        assert "Traceback" in text and "RuntimeError: upgrade failed" in text
        assert fingerprint(TOKEN) in text
    assert "Stack (most recent call last)" in records[3].getMessage()
    assert all(r.exc_info is None and not r.stack_info for r in records)
    assert TOKEN not in caplog.text


# -- start() and stop() -----------------------------------------------------------------------------
class StopFirst(MarketFeed):
    """Its thread waits until stop() has begun before going on: the order in which a start()
    that timed out (and so called stop()) races the thread that is still starting."""

    held = False

    async def _thread_main(self, ready: threading.Event, outcome: list[BaseException]) -> None:
        if not self.held:  # the first start only
            self.held = True
            deadline = time.monotonic() + 5
            while not self.closing and time.monotonic() < deadline:
                time.sleep(0.001)
        await super()._thread_main(ready, outcome)


def test_a_start_that_times_out_stops_the_feed_for_good() -> None:
    with SimulatorThread(tokens=[TOKEN], rate=50, ping_interval=None) as sim:
        feed = StopFirst(TOKEN, url=sim.market_url, instruments=KEYS[:1])
        with pytest.raises(TimeoutError):
            feed.start(timeout=0)
        thread = feed._thread
        assert thread is not None
        thread.join(10)
        assert not thread.is_alive() and not feed.running and not feed.connected
        deadline = time.monotonic() + 5
        while sim.market_sessions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not sim.market_sessions
        # and the feed can be started again
        feed.start(timeout=10)
        try:
            assert feed.connected
        finally:
            feed.stop()
        assert not feed.running


# -- counters ---------------------------------------------------------------------------------------------
def test_decode_errors_count_text_frames_and_oversized_messages_across_connections() -> None:
    async def main() -> None:
        # Every message is fragmented and full-mode messages are over the limit: dropped whole.
        async with Simulator(tokens=[TOKEN], rate=100, faults=Faults(fragment_size=37),
                             ping_interval=None) as sim:
            feed = feed_for(sim, instruments=KEYS[:2], mode="full", max_message_size=120)
            errors: list[BaseException] = []
            feed.on("error", errors.append)
            async with feed:
                await wait_until(lambda: feed.stats()["oversized"] >= 3, what="oversized messages")
                feed._live_listener().feed_frame(b"a text frame", True)  # as if it came off the socket
                stats = feed.stats()
                assert stats["decode_errors"] == len(errors) == stats["oversized"] + 1
                assert sum("text frame" in str(e) for e in errors) == 1
                before = stats["decode_errors"]
                sim.abort_all()
                await wait_until(lambda: feed.reconnects == 1 and feed.connected, what="reconnect")
                await wait_until(lambda: feed.stats()["decode_errors"] > before, what="more errors")
                stats = feed.stats()
                assert stats["decode_errors"] == len(errors) == stats["oversized"] + 1
    run(main())
