"""The official SDK's streamers and fastfeed.compat's run the same user script, written as the
SDK's examples are, against the same simulator in one session: their event sequences must be the
same, reconnects included. Only the class differs between the two runs."""
from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Iterator

import pytest
import upstox_client
from google.protobuf.json_format import MessageToDict, ParseDict
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

import fastfeed.compat
from fastfeed.sim import Faults

from compat_helpers import Recorder, api_client, has, messages_after_open, point_at, simulator

KEYS = ["NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018", "NSE_FO|43919"]
STREAMERS = {"sdk": upstox_client.MarketDataStreamerV3, "facade": fastfeed.compat.MarketDataStreamerV3}
PORTFOLIO = {"sdk": upstox_client.PortfolioDataStreamer, "facade": fastfeed.compat.PortfolioDataStreamer}


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    yield from simulator()


@pytest.fixture(autouse=True)
def pointed(sim: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    point_at(sim, monkeypatch)
    sim.refuse_until = 0.0
    yield sim


class Boom(Exception):
    pass


# -- the user's script, the same for both ----------------------------------------------------------
def run_market_script(cls: Any, token: str, fault: Callable[[], None]) -> Recorder:
    streamer = cls(api_client(token), KEYS, "full")
    seen = [0]

    def on_message(message: dict[str, Any]) -> None:
        seen[0] += 1
        if seen[0] == 3:
            raise Boom("a user callback failed")  # an error event; the feed goes on

    rec = Recorder(streamer, on_message)
    streamer.connect()
    try:
        rec.wait(messages_after_open(6), what="messages after the first open")
        fault()
        rec.wait(messages_after_open(3, opens=2), what="messages after the reconnect")
        fault()  # the attempt counter restarted at the open: "attempt 1/5" again
        rec.wait(messages_after_open(3, opens=3), what="messages after the second reconnect")
    finally:
        streamer.disconnect()
    return rec


def both(script: Callable[[Any, str], Recorder], classes: dict[str, Any] = STREAMERS) -> dict[str, Recorder]:
    """The script run with each library's class in turn; each run has a token of its own (the
    simulator caps connections per token)."""
    return {name: script(cls, f"tok-{name}-{uuid.uuid4().hex[:8]}") for name, cls in classes.items()}


def check_messages(rec: Recorder) -> None:
    messages = rec.messages()
    assert messages[0]["type"] == "market_info"
    for message in messages:
        assert MessageToDict(ParseDict(message, up.FeedResponse())) == message


def until_close(summary: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return summary[:-1] if summary and summary[-1][0] == "close" else summary


# -- the tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["abort", "close_1011"])
def test_market_events_match_the_sdk_across_a_reconnect(sim: Any, fault: str) -> None:
    action = {"abort": sim.abort_all, "close_1011": lambda: sim.close_all(1011)}[fault]
    runs = both(lambda cls, token: run_market_script(cls, token, action))
    sdk, facade = (runs[k].summary() for k in ("sdk", "facade"))
    lost = [("error", "Connection to remote host was lost."), ("close", None, None)] if fault == "abort" \
        else [("error", "Connection closed (code 1011)"), ("close", 1011, None)]
    again = [*lost, ("reconnecting", "Auto reconnect attempt 1/5"), ("open",), ("message",)]
    expected = [("open",), ("message",), ("error", "a user callback failed"), ("message",),
                *again, *again]
    # The last close is disconnect()'s: websocket-client reports (1000, None) or (None, None),
    # depending on whether the server's close reply was read in time.
    assert until_close(sdk) == expected
    assert until_close(facade) == expected
    assert facade[-1] == ("close", 1000, None)
    check_messages(runs["facade"])
    # one thread ran every callback of the facade, not the caller's, not a daemon
    (thread,) = runs["facade"].threads
    assert not thread.daemon and not thread.is_alive()


def test_server_close_1000_ends_both_without_a_reconnect(sim: Any) -> None:
    # The SDK reconnects only after a close code other than 1000.
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), KEYS[:1], "ltpc")
        rec = Recorder(streamer)
        streamer.connect()
        try:
            rec.wait(messages_after_open(3))
            sim.close_all(1000)
            rec.wait(has("close"))
        finally:
            streamer.disconnect()
        return rec

    runs = both(script)
    expected = [("open",), ("message",), ("error", "Connection closed normally (code 1000)"),
                ("close", 1000, None)]
    assert runs["sdk"].summary() == expected
    assert runs["facade"].summary() == expected


def test_retries_exhausted_match_the_sdk_and_the_thread_ends(sim: Any) -> None:
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), KEYS[:1], "ltpc")
        streamer.auto_reconnect(True, 0.05, 3)
        rec = Recorder(streamer)
        streamer.connect()
        try:
            rec.wait(messages_after_open(3))
            sim.refuse_connections(60)
            sim.abort_all()
            rec.wait(has("autoReconnectStopped"), what="reconnecting given up")
        finally:
            sim.refuse_until = 0.0
        if cls is fastfeed.compat.MarketDataStreamerV3:
            # Nothing is left to do: the streamer's thread ends by itself.
            streamer._thread.join(10)
            assert not streamer._thread.is_alive()
        streamer.disconnect()
        return rec

    runs = both(script)
    expected = [("open",), ("message",), ("error", "Connection to remote host was lost."),
                ("close", None, None)]
    for n in (1, 2, 3):
        expected += [("reconnecting", f"Auto reconnect attempt {n}/3"), "refused"]
    expected.append(("autoReconnectStopped", "retryCount of 3 exhausted."))
    for name, rec in runs.items():
        summary = rec.summary()
        assert len(summary) == len(expected), (name, summary)
        for got, want in zip(summary, expected):
            if want == "refused":  # each library words a 503 its own way
                assert got[0] == "error" and "503" in got[1], (name, got)
            else:
                assert got == want, (name, summary)


def test_expired_token_stops_both_at_the_first_reconnect(sim: Any) -> None:
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), KEYS[:1], "ltpc")
        rec = Recorder(streamer)
        streamer.connect()
        try:
            rec.wait(messages_after_open(3))
            sim.expire_token(token)
            sim.abort_all()
            rec.wait(lambda events: sum(n == "error" for n, _ in events) >= 2, what="the 401")
        finally:
            streamer.disconnect()
        return rec

    runs = both(script)
    for name, rec in runs.items():
        summary = rec.summary()
        assert summary[:5] == [("open",), ("message",), ("error", "Connection to remote host was lost."),
                               ("close", None, None), ("reconnecting", "Auto reconnect attempt 1/5")], name
        assert summary[5][0] == "error" and "401" in summary[5][1], name
        assert len(summary) == 6, (name, summary)  # no autoReconnectStopped, no further attempt


def test_auto_reconnect_disabled_by_client(sim: Any) -> None:
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), KEYS[:1], "ltpc")
        rec = Recorder(streamer)
        streamer.auto_reconnect(False)
        streamer.connect()
        try:
            rec.wait(messages_after_open(3))
            sim.abort_all()
            rec.wait(has("close"))
        finally:
            streamer.disconnect()
        return rec

    runs = both(script)
    expected = [("autoReconnectStopped", "Disabled by client."), ("open",), ("message",),
                ("error", "Connection to remote host was lost."), ("close", None, None)]
    assert runs["sdk"].summary() == expected
    assert runs["facade"].summary() == expected


def test_portfolio_messages_are_the_raw_json_and_events_match(sim: Any) -> None:
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), order_update=True, position_update=True,
                       holding_update=False, gtt_update=True)
        rec = Recorder(streamer)
        streamer.connect()
        try:
            rec.wait(messages_after_open(20))
            sim.abort_all()
            rec.wait(messages_after_open(5, opens=2))
        finally:
            streamer.disconnect()
        return rec

    runs = both(script, PORTFOLIO)
    expected = [("open",), ("message",), ("error", "Connection to remote host was lost."),
                ("close", None, None), ("reconnecting", "Auto reconnect attempt 1/5"), ("open",),
                ("message",)]
    for name, rec in runs.items():
        assert until_close(rec.summary()) == expected, name
        messages = rec.messages()
        assert all(isinstance(m, str) for m in messages), name
        assert {json.loads(m)["update_type"] for m in messages} <= {"order", "position", "gtt_order"}


def test_a_frame_protobuf_rejects_is_an_error_event_and_the_feed_goes_on(sim: Any) -> None:
    def script(cls: Any, token: str) -> Recorder:
        streamer = cls(api_client(token), KEYS[:1], "ltpc")
        rec = Recorder(streamer)
        streamer.connect()
        try:
            rec.wait(lambda events: sum(n == "error" for n, _ in events) >= 2
                     and events[-1][0] == "message", what="bad frames and good ones after them")
        finally:
            streamer.disconnect()
        return rec

    sim.faults = Faults(malformed_every=4)
    try:
        runs = both(script)
    finally:
        sim.faults = Faults()
    for name, rec in runs.items():
        names = [n for n, _ in rec.events]
        assert names[0] == "open" and "close" not in names[:-1] and "reconnecting" not in names, name
        errors = [args[0] for n, args in rec.events if n == "error"]
        assert all(type(e).__name__ == "DecodeError" for e in errors), (name, errors)
    check_messages(runs["facade"])
