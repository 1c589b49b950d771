"""fastfeed.compat on its own, against the simulator: the deliberate differences from the SDK
(queued subscriptions, every mode restored, verified TLS, caps, Plus) and the SDK's API shapes."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Iterator

import pytest
from google.protobuf.json_format import MessageToDict

import fastfeed.compat
from fastfeed import SubscriptionLimitError
from fastfeed.compat import MarketDataStreamerV3, PortfolioDataStreamer
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.sim import SimulatorThread

from compat_helpers import Recorder, api_client, has, messages_after_open, point_at, simulator

TOKEN = "compat-token"
KEYS = ["NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_EQ|INE467B01029"]


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    yield from simulator()


@pytest.fixture(autouse=True)
def pointed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    point_at(sim, monkeypatch)
    yield sim


def newest(sim: Any) -> Any:
    return max(sim.market_sessions, key=lambda s: s.serial)


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        time.sleep(0.01)


def test_changes_before_open_are_queued_and_every_mode_is_restored_on_reconnect(sim: Any) -> None:
    streamer = MarketDataStreamerV3(TOKEN, KEYS[:2], "full")
    # The SDK raises "WebSocket is not open." for each of these; here they are queued.
    streamer.subscribe([KEYS[2]], "option_greeks")
    streamer.subscribe([KEYS[3]], "ltpc")
    streamer.change_mode([KEYS[1]], "ltpc")
    streamer.unsubscribe([KEYS[3]])
    wanted = {KEYS[0]: "full", KEYS[1]: "ltpc", KEYS[2]: "option_greeks"}
    assert streamer.subscriptions == {"ltpc": {KEYS[1]}, "full": {KEYS[0]},
                                      "option_greeks": {KEYS[2]}, "full_d30": set()}
    rec = Recorder(streamer)
    streamer.connect()
    try:
        rec.wait(messages_after_open(3))
        first = newest(sim)
        wait_for(lambda: first.subscriptions == wanted, what="the queued changes")
        streamer.subscribe([KEYS[3]], "full")  # while open: sent at once
        wanted[KEYS[3]] = "full"
        wait_for(lambda: first.subscriptions == wanted, what="subscribed while open")
        sim.abort_all()
        rec.wait(messages_after_open(3, opens=2))
        # The SDK re-sends one sub per mode of the keys it tracked; every mode comes back here.
        wait_for(lambda: newest(sim) is not first and newest(sim).subscriptions == wanted,
                 what="every mode restored")
    finally:
        streamer.disconnect()


def test_clear_subscriptions_forgets_without_unsubscribing(sim: Any) -> None:
    streamer = MarketDataStreamerV3(TOKEN, KEYS[:2], "ltpc")
    rec = Recorder(streamer)
    streamer.connect()
    try:
        rec.wait(messages_after_open(3))
        session = newest(sim)
        streamer.clear_subscriptions()
        assert streamer.subscriptions == {m: set() for m in ("ltpc", "full", "option_greeks", "full_d30")}
        sim.abort_all()
        rec.wait(has("open", 2))
        wait_for(lambda: newest(sim) is not session, what="the new session")
        assert session.subscriptions == {KEYS[0]: "ltpc", KEYS[1]: "ltpc"}  # no unsub was sent
        assert newest(sim).subscriptions == {}  # and the reconnect asked for nothing
    finally:
        streamer.disconnect()


def test_caps_plus_and_invalid_modes() -> None:
    with pytest.raises(SubscriptionLimitError):
        MarketDataStreamerV3(TOKEN, KEYS[:1], "full_d30")
    MarketDataStreamerV3(TOKEN, KEYS[:1], "full_d30", plus=True)
    with pytest.raises(ValueError, match="Invalid mode provided bogus"):
        MarketDataStreamerV3(TOKEN, KEYS, "bogus")
    streamer = MarketDataStreamerV3(TOKEN)
    many = [f"NSE_EQ|K{i:05d}" for i in range(2001)]
    with pytest.raises(SubscriptionLimitError):
        streamer.subscribe(many, "full")
    assert streamer.subscriptions["full"] == set()  # nothing changed
    errors: list[Any] = []
    streamer.on("error", errors.append)
    streamer.subscribe(KEYS, "bogus")  # as the SDK: an error event, not an exception
    streamer.change_mode(KEYS, "bogus")
    assert errors == ["Invalid mode provided bogus"] * 2
    with pytest.raises(ValueError, match="Unknown event"):
        streamer.on("tick", print)


def test_decode_protobuf_and_the_sdk_names() -> None:
    streamer = MarketDataStreamerV3(TOKEN)
    frame = pb.FeedResponse(type=pb.live_feed, currentTs=1_700_000_000_000)
    frame.feeds["NSE_EQ|INE002A01018"].ltpc.ltp = 2500.5
    decoded = streamer.decode_protobuf(frame.SerializeToString())
    assert isinstance(decoded, pb.FeedResponse) and decoded == frame
    message = MessageToDict(decoded)
    assert streamer.decode_protobuf(message) is message
    assert streamer.Mode == {"LTPC": "ltpc", "FULL": "full", "OPTION": "option_greeks", "D30": "full_d30"}
    assert set(streamer.Event.values()) == {"open", "close", "message", "error", "reconnecting",
                                            "autoReconnectStopped"}
    for name in ("on", "emit", "connect", "disconnect", "subscribe", "unsubscribe", "change_mode",
                 "clear_subscriptions", "auto_reconnect", "decode_protobuf"):
        assert callable(getattr(streamer, name))
    assert TOKEN not in repr(streamer)


def test_listener_failures_become_error_events_and_the_feed_goes_on(sim: Any) -> None:
    streamer = MarketDataStreamerV3(api_client(TOKEN), KEYS[:1], "ltpc")
    calls = [0]

    def bad(message: Any) -> None:
        calls[0] += 1
        raise RuntimeError("listener broke")

    def bad_error_listener(exc: Any) -> None:
        raise RuntimeError("so did the error listener")  # logged, never an endless loop

    rec = Recorder(streamer)
    streamer.on("message", bad)
    streamer.on("error", bad_error_listener)
    streamer.connect()
    try:
        rec.wait(messages_after_open(10))
        assert rec.count("error") >= 9 and calls[0] >= 9
        assert all(str(args[0]) == "listener broke" for n, args in rec.events if n == "error")
    finally:
        streamer.disconnect()


def test_connect_returns_at_once_and_one_thread_runs_everything(sim: Any) -> None:
    streamer = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc")
    rec = Recorder(streamer)
    streamer.connect()  # returns before the socket opens
    assert rec.events == []
    try:
        rec.wait(messages_after_open(5))
        streamer.connect()  # already running: ignored, still one connection
        (thread,) = rec.threads
        assert thread is not threading.current_thread() and not thread.daemon
        assert len([s for s in sim.market_sessions if s.subscriptions == {KEYS[0]: "ltpc"}]) == 1
        assert streamer.feed.quote(KEYS[0]).ltp > 0  # the MarketFeed underneath has the quotes too
    finally:
        streamer.disconnect()
    assert not thread.is_alive()
    assert rec.summary()[-1] == ("close", 1000, None)


def test_url_is_read_at_connect_time(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastfeed.compat, "MARKET_DATA_URL", "ws://127.0.0.1:9/nowhere")
    streamer = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc")
    monkeypatch.setattr(fastfeed.compat, "MARKET_DATA_URL", sim.market_url)  # after construction
    rec = Recorder(streamer)
    streamer.connect()
    try:
        rec.wait(messages_after_open(2))
    finally:
        streamer.disconnect()
    explicit = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc", url=sim.market_url)
    monkeypatch.setattr(fastfeed.compat, "MARKET_DATA_URL", "ws://127.0.0.1:9/nowhere")
    rec = Recorder(explicit)
    explicit.connect()
    try:
        rec.wait(messages_after_open(2))
    finally:
        explicit.disconnect()


def test_tls_is_verified_unless_turned_off_explicitly(caplog: pytest.LogCaptureFixture) -> None:
    with SimulatorThread(tls=True, rate=100, ping_interval=None) as tls_sim:
        refused = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc", url=tls_sim.market_url)
        refused.auto_reconnect(False)
        rec = Recorder(refused)
        refused.connect()
        rec.wait(has("close"))
        refused._thread.join(10)
        assert not refused._thread.is_alive()  # nothing left to do: the thread ended
        assert rec.count("open") == 0
        assert rec.summary()[0][0] == "error" and "certificate" in rec.summary()[0][1].lower()
        assert rec.summary()[1:] == [("close", None, None)]

        trusted = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc", url=tls_sim.market_url,
                                       ssl=tls_sim.client_ssl_context())
        with caplog.at_level(logging.WARNING, logger="fastfeed"):
            unverified = PortfolioDataStreamer(TOKEN, url=tls_sim.portfolio_url, ssl=False)
        assert "verification is OFF" in caplog.text
        for streamer in (trusted, unverified):
            rec = Recorder(streamer)
            streamer.connect()
            try:
                rec.wait(messages_after_open(2))
            finally:
                streamer.disconnect()


def test_works_without_upstox_client_installed(sim: Any) -> None:
    script = textwrap.dedent(f"""
        import sys, threading
        sys.modules["upstox_client"] = None          # import upstox_client now fails
        from fastfeed.compat import MarketDataStreamerV3
        done = threading.Event()
        got = []
        streamer = MarketDataStreamerV3("{TOKEN}", ["NSE_INDEX|Nifty 50"], "ltpc", url="{sim.market_url}")
        def on_message(message):
            got.append(message)
            if len(got) == 3:
                streamer.disconnect()                # from a callback: the thread then ends
        streamer.on("message", on_message)
        streamer.connect()
        # the main thread ends here; the streamer's thread keeps the process up until disconnect
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_disconnect_from_the_open_listener_still_reports_the_close(sim: Any) -> None:
    streamer = MarketDataStreamerV3(TOKEN, KEYS[:1], "ltpc")
    rec = Recorder(streamer)
    streamer.on("open", streamer.disconnect)  # before the feed has even begun serving the socket
    streamer.connect()
    rec.wait(has("close"))
    streamer._thread.join(10)
    assert not streamer._thread.is_alive()
    assert [e for e in rec.summary() if e != ("message",)] == [("open",), ("close", 1000, None)]
