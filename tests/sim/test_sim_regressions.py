"""Regressions: sessions that kept writing after their connection was lost, access tokens in the
picows server logs, and session tasks left pending when the simulator stopped."""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
from typing import Any, Callable, Coroutine
from urllib.parse import urlsplit

import pytest
import uvloop
from picows import WSMsgType

import fastfeed.sim.runner
from fastfeed.sim import Simulator, SimulatorThread
from fastfeed.tokens import fingerprint, scrub

from sim_helpers import (TOKEN, RawFrames, connect, recv_feed, request, run, stalled_market_client,
                         wait_until)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run_on(loop: str, coro: Coroutine[Any, Any, None], timeout: float = 20.0) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(asyncio.wait_for(coro, timeout))


# -- 1. no write after the connection is lost ------------------------------------------------------

@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("feed", ["market", "market-bench", "portfolio"])
def test_session_stops_writing_once_the_client_resets(feed: str, loop: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiofastnet")
    caplog.set_level(logging.DEBUG, logger="picows")

    async def main() -> None:
        async with Simulator(tokens=[TOKEN], rate=100_000, portfolio_rate=100_000,
                             bench=feed == "market-bench", ping_interval=None) as sim:
            for _ in range(3):
                client = RawFrames()
                await client.connect(sim.portfolio_url if feed == "portfolio" else sim.market_url)
                if feed != "portfolio":
                    client.transport.send(WSMsgType.BINARY, request(
                        "sub", ["NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_INDEX|Nifty 50"], "full"))
                await wait_until(lambda: len(client.frames) > 200)
                session = next(iter(sim.sessions))
                # Reset, not close: the server learns of it from a failing write mid-batch.
                raw = client.transport.underlying_transport
                raw.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.transport.disconnect(graceful=False)
                await wait_until(lambda: all(t.done() for t in session._tasks), timeout=10)
                await wait_until(lambda: session not in sim.sessions, timeout=10)
                assert session.closed and session.counters.connections_closed == 1
                await asyncio.sleep(0.05)  # room for a straggling write, should one remain

    run_on(loop, main())
    lost = [r.getMessage() for r in caplog.records if "after connection lost" in r.getMessage()]
    assert not lost, f"{len(lost)} write(s) after the connection was lost: {lost[:3]}"


# -- 2. no token in any log record -----------------------------------------------------------------

SECRET = "SeCrEt-Regression.Token_4f2a9c"  # recognisable in any log, at any level
WRONG = "WrOnG-Regression.Token_77e1b0"


async def raw_get(url: str, token: str, *, upgrade: bool = False) -> tuple[bytes, Any]:
    """GET `url` with the token on a plain socket (a client that logs nothing); the head of the
    response, and for an upgrade the open streams."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
    if upgrade:
        head += ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    writer.write((head + "\r\n").encode())
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if not upgrade:
        writer.close()
    return response, (reader, writer)


def location(response: bytes) -> str:
    for line in response.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            return value.strip().decode()
    raise AssertionError(f"no Location in {response!r}")


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_no_token_in_any_log_record(loop: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # every level, PICOWS_DEBUG_LL (9) included

    async def main() -> None:
        async with Simulator(tokens=[SECRET], rate=200, portfolio_rate=200) as sim:
            for url in (sim.market_url, sim.portfolio_url_for()):
                redirect, _ = await raw_get(url, SECRET)
                assert redirect.startswith(b"HTTP/1.1 302")
                response, (reader, writer) = await raw_get(location(redirect), SECRET, upgrade=True)
                assert response.startswith(b"HTTP/1.1 101")
                await asyncio.wait_for(reader.read(1), 5)  # the feed has started
                writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # masked CLOSE 1000
                await wait_until(lambda: not sim.sessions)
                writer.close()
            refused, _ = await raw_get(sim.market_url, WRONG)
            assert refused.startswith(b"HTTP/1.1 401")

    run_on(loop, main())
    for secret in (SECRET, WRONG):
        leaks = [(r.name, r.levelno) for r in caplog.records if secret in r.getMessage()]
        assert not leaks, f"the token appears in log records: {leaks}"
        assert secret not in caplog.text
    # Not vacuous: picows did log the raw request headers (below DEBUG), with a fingerprint only.
    assert any(r.levelno < logging.DEBUG and r.name.startswith("picows.fastfeed.sim")
               and f"Bearer {fingerprint(SECRET)}" in r.getMessage() for r in caplog.records)


def test_scrub_keeps_a_fingerprint_of_bearer_tokens_only() -> None:
    raw = repr(f"GET / HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\nHost: x\r\n".encode())
    assert scrub(raw) == raw.replace(SECRET, fingerprint(SECRET))
    assert scrub({"authorization": f"bearer {SECRET}"}.__repr__()) == repr(
        {"authorization": f"bearer {fingerprint(SECRET)}"})
    assert scrub("Authorization: Basic dXNlcjpwYXNz") == \
        f"Authorization: {fingerprint('Basic dXNlcjpwYXNz')}"
    assert scrub("nothing to hide here") == "nothing to hide here"


# -- 3. no session task left pending at shutdown ---------------------------------------------------

KEYS = ["NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_INDEX|Nifty 50"]


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_simulator_thread_stop_leaves_no_task_pending(loop: str, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()  # what earlier tests left is not this test's to report
    caplog.set_level(logging.WARNING, logger="asyncio")
    monkeypatch.setattr(fastfeed.sim.runner, "new_event_loop", LOOPS[loop])
    # Slow feeds: each session's sender waits in wait_for between frames, which takes a cancelled
    # task several turns of the loop to leave.
    thread = SimulatorThread(tokens=[TOKEN], rate=5, portfolio_rate=5, ping_interval=None)
    sim = thread.start()
    sessions = []

    async def main() -> None:
        async with connect(sim.market_url) as market, connect(sim.portfolio_url) as portfolio:
            await market.send(request("sub", KEYS, "ltpc"))
            await recv_feed(market)
            await asyncio.wait_for(portfolio.recv(), 10)
            await wait_until(lambda: len(sim.sessions) == 2, timeout=10)
            sessions.extend(sim.sessions)
            await asyncio.to_thread(thread.stop)  # while both clients are connected

    try:
        run(main())
    finally:
        thread.stop()
    sim_loop = thread._loop
    assert sim_loop is not None and sim_loop.is_closed()
    assert not thread._thread.is_alive()
    assert not asyncio.all_tasks(sim_loop), asyncio.all_tasks(sim_loop)
    assert len(sessions) == 2 and all(t.done() for s in sessions for t in s._tasks)
    del sessions[:], sim, thread, sim_loop
    gc.collect()  # a pending task complains when it is destroyed
    destroyed = [r.getMessage() for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
    assert not destroyed, destroyed


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_stop_waits_for_the_tasks_of_the_sessions_it_aborts(loop: str) -> None:
    async def main() -> None:
        async with Simulator(tokens=[TOKEN], bench=True, ping_interval=None) as sim:
            # never reads: the close frame cannot get out, stop() must abort
            sock = await asyncio.to_thread(stalled_market_client, sim, sim.instruments[:50])
            try:
                await wait_until(lambda: sim.market_sessions and sim.market_sessions[0].paused,
                                 timeout=10)
                session = sim.market_sessions[0]
                await sim.stop(timeout=0.2)
                # Before the loop moves on: everything of the session has ended.
                assert all(t.done() for t in session._tasks)
                assert session.closed and not sim.sessions
                assert sim.counters.connections_closed == 1
            finally:
                sock.close()

    run_on(loop, main())
