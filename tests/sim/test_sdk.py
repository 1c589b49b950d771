"""The official SDK (upstox-python-sdk 2.30.0) against the simulator: only its hard-coded URL is
redirected here; everything else is the SDK's own code."""
from __future__ import annotations

import json
import queue
import time
from types import SimpleNamespace
from typing import Any

import pytest
import upstox_client
import websocket
from upstox_client.feeder import market_data_feeder_v3, portfolio_data_feeder
from upstox_client.feeder import MarketDataStreamerV3, PortfolioDataStreamer

from fastfeed.sim import SimulatorThread

from sim_helpers import TOKEN

UPSTOX = "wss://api.upstox.com"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Any:
    with SimulatorThread(tokens=[TOKEN], rate=100, portfolio_rate=200, ping_interval=None) as sim:
        def app(url: str, *args: Any, **kwargs: Any) -> websocket.WebSocketApp:
            assert url.startswith(UPSTOX)
            return websocket.WebSocketApp(sim.base_url + url[len(UPSTOX):], *args, **kwargs)
        # The SDK's feeders reach WebSocketApp through their module's `websocket` name.
        for module in (market_data_feeder_v3, portfolio_data_feeder):
            monkeypatch.setattr(module, "websocket",
                                SimpleNamespace(WebSocketApp=app, ABNF=websocket.ABNF))
        yield sim


def api_client() -> upstox_client.ApiClient:
    configuration = upstox_client.Configuration()
    configuration.access_token = TOKEN
    return upstox_client.ApiClient(configuration)


def next_matching(q: "queue.Queue[Any]", predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        item = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if predicate(item):
            return item


def test_market_streamer_connects_subscribes_changes_mode_and_reconnects(sim: Any) -> None:
    keys = ["NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018", "NSE_FO|43919", "NSE_EQ|INE467B01029"]
    messages: "queue.Queue[dict[str, Any]]" = queue.Queue(maxsize=100_000)
    errors: list[Any] = []
    streamer = MarketDataStreamerV3(api_client(), keys[:3], "full")
    streamer.on("message", messages.put)
    streamer.on("error", errors.append)
    streamer.connect()
    try:
        first = next_matching(messages, lambda m: True)
        assert first.get("type") == "market_info"
        snap = next_matching(messages, lambda m: m.get("type", "initial_feed") == "initial_feed")
        assert set(snap["feeds"]) == set(keys[:3])
        eq = snap["feeds"]["NSE_EQ|INE002A01018"]
        assert eq["requestMode"] == "full_d5" and len(eq["fullFeed"]["marketFF"]["marketLevel"]["bidAskQuote"]) == 5
        live = next_matching(messages, lambda m: m.get("type") == "live_feed")
        assert int(live["currentTs"]) > 0

        streamer.subscribe([keys[3]], "ltpc")
        snap = next_matching(messages, lambda m: m.get("type", "initial_feed") == "initial_feed")
        assert list(snap["feeds"]) == [keys[3]] and "ltpc" in snap["feeds"][keys[3]]

        streamer.change_mode([keys[0]], "option_greeks")
        snap = next_matching(messages, lambda m: m.get("type", "initial_feed") == "initial_feed")
        assert snap["feeds"][keys[0]]["requestMode"] == "option_greeks"

        sim.abort_all()  # no close frame: the SDK must reconnect and re-subscribe
        try:
            next_matching(messages, lambda m: m.get("type") == "market_info")
        except queue.Empty:
            raise AssertionError(f"{sim.counters.as_dict()} {errors}")
        # one sub per mode, each answered by a snapshot of its keys
        snaps = [next_matching(messages, lambda m: m.get("type", "initial_feed") == "initial_feed")
                 for _ in range(3)]
        assert sorted(len(s["feeds"]) for s in snaps) == [1, 1, 2]
        assert set().union(*(s["feeds"] for s in snaps)) == set(keys)
        assert sim.counters.connections_opened == 2
        assert sim.counters.faults["abort_all"] == 1
    finally:
        streamer.disconnect()
    deadline = time.monotonic() + 10
    while sim.market_sessions and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sim.market_sessions


def test_portfolio_streamer_receives_the_update_types_it_asked_for(sim: Any) -> None:
    messages: "queue.Queue[str]" = queue.Queue(maxsize=100_000)
    streamer = PortfolioDataStreamer(api_client(), order_update=True, position_update=True,
                                     holding_update=False, gtt_update=True)
    streamer.on("message", messages.put)
    streamer.connect()
    try:
        seen = set()
        for _ in range(60):
            update = json.loads(messages.get(timeout=10))
            seen.add(update["update_type"])
        assert seen == {"order", "position", "gtt_order"}
    finally:
        streamer.disconnect()
