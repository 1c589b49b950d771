"""The simulator serves a capture: a fastfeed client and the official SDK streamer both see the
recorded market, only the keys they subscribed."""
from __future__ import annotations

import dataclasses
import queue
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
import upstox_client
import websocket
from google.protobuf import json_format
from upstox_client.feeder import MarketDataStreamerV3, market_data_feeder_v3
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

import fastfeed.capture as capture
from fastfeed import CaptureError, MarketFeed
from fastfeed.sim import SimulatorThread
from fastfeed.sim.replay import keep_subscribed

from capture_helpers import KEYS, TOKEN, Recording, wait

UPSTOX = "wss://api.upstox.com"


def expected_frames(recording: Recording, keys: list[str]) -> list[bytes]:
    out = []
    for _, payload in capture.frames(recording.path):
        frame = keep_subscribed(payload, set(keys))
        if frame is not None:
            out.append(frame)
    return out


def test_a_fastfeed_client_sees_the_recorded_market(recording: Recording) -> None:
    keys = KEYS[:2]
    with SimulatorThread(tokens=[TOKEN], replay=recording.path, ping_interval=None) as sim:
        feed = MarketFeed(TOKEN, url=sim.market_url, instruments=keys, mode="full")
        feed.start(timeout=20)
        try:
            wait(lambda: sim.counters.replays_finished >= 1, what="the whole capture sent")
            expected = expected_frames(recording, keys)
            wait(lambda: feed.decoder.frames >= len(expected), what="every frame received")
        finally:
            feed.stop()
    assert feed.decoder.frames == len(expected)
    assert sorted(feed.instruments) == sorted(keys)
    for key in keys:
        got, live = feed.quote(key), recording.quotes[key]
        assert got is not None
        # The same market; only the receive time is this connection's own.
        assert dataclasses.replace(got, recv_ns=live.recv_ns) == live


def test_the_official_sdk_streamer_sees_the_replay(recording: Recording,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [KEYS[0], KEYS[2]]
    with SimulatorThread(tokens=[TOKEN], replay=recording.path, ping_interval=None) as sim:
        def app(url: str, *args: Any, **kwargs: Any) -> websocket.WebSocketApp:
            assert url.startswith(UPSTOX)
            return websocket.WebSocketApp(sim.base_url + url[len(UPSTOX):], *args, **kwargs)
        monkeypatch.setattr(market_data_feeder_v3, "websocket",
                            SimpleNamespace(WebSocketApp=app, ABNF=websocket.ABNF))
        configuration = upstox_client.Configuration()
        configuration.access_token = TOKEN
        messages: "queue.Queue[dict[str, Any]]" = queue.Queue()
        streamer = MarketDataStreamerV3(upstox_client.ApiClient(configuration), keys, "full")
        streamer.auto_reconnect(False)
        streamer.on("message", messages.put)
        streamer.connect()
        expected = [json_format.MessageToDict(up.FeedResponse.FromString(f))
                    for f in expected_frames(recording, keys)]
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        try:
            while len(got) < len(expected) and time.monotonic() < deadline:
                try:
                    got.append(messages.get(timeout=1.0))
                except queue.Empty:
                    pass
        finally:
            streamer.disconnect()
    assert got == expected
    assert any(set(m.get("feeds", {})) == set(keys) for m in got)


def test_sim_refuses_what_is_not_a_market_capture(tmp_path: Any) -> None:
    junk = tmp_path / "junk.arrows"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CaptureError):
        SimulatorThread(replay=junk).start()


def test_sim_cli_replay(recording: Recording) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fastfeed", "sim", "--replay", str(recording.path),
                             "--speed", "50", "--token", TOKEN, "--ping-interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("ws://")
        feed = MarketFeed(TOKEN, url=base + "/v3/feed/market-data-feed", instruments=KEYS[:1],
                          mode="full")
        feed.start(timeout=20)
        try:
            expected = expected_frames(recording, KEYS[:1])
            wait(lambda: feed.decoder.frames >= len(expected), what="the replayed frames")
        finally:
            feed.stop()
        assert feed.quote(KEYS[0]).ltp == recording.quotes[KEYS[0]].ltp
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([sys.executable, "-m", "fastfeed", "sim", "--replay", "/nonexistent.arrows"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
