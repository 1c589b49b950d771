"""Helpers for the compat tests: the official SDK's streamers and fastfeed.compat's, pointed at the
same simulator (the SDK through its websocket-client URL only, as tests/sim/test_sdk.py does;
the facade through ``fastfeed.compat.MARKET_DATA_URL`` / ``PORTFOLIO_URL``), and a recorder of
what a user's listeners see, in order. Imported by name: tests/compat has no __init__.py."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest
import upstox_client
import websocket
from upstox_client.feeder import market_data_feeder_v3, portfolio_data_feeder

import fastfeed.compat
from fastfeed.sim import SimulatorThread

UPSTOX = "wss://api.upstox.com"
EVENTS = ("open", "message", "error", "close", "reconnecting", "autoReconnectStopped")


def point_at(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both libraries' streamers connect to `sim`; nothing else of either is changed."""
    def app(url: str, *args: Any, **kwargs: Any) -> websocket.WebSocketApp:
        assert url.startswith(UPSTOX)
        return websocket.WebSocketApp(sim.base_url + url[len(UPSTOX):], *args, **kwargs)
    for module in (market_data_feeder_v3, portfolio_data_feeder):
        monkeypatch.setattr(module, "websocket", SimpleNamespace(WebSocketApp=app, ABNF=websocket.ABNF))
    monkeypatch.setattr(fastfeed.compat, "MARKET_DATA_URL", sim.market_url)
    monkeypatch.setattr(fastfeed.compat, "PORTFOLIO_URL", sim.portfolio_url)


def simulator(**kwargs: Any) -> Iterator[Any]:
    kwargs.setdefault("rate", 100)
    kwargs.setdefault("portfolio_rate", 100)
    kwargs.setdefault("ping_interval", None)
    with SimulatorThread(**kwargs) as sim:
        yield sim


def api_client(token: str) -> upstox_client.ApiClient:
    """As the SDK's examples build it."""
    configuration = upstox_client.Configuration()
    configuration.access_token = token
    return upstox_client.ApiClient(configuration)


class Recorder:
    """Every event a streamer emits, in order, with the thread it came on."""

    def __init__(self, streamer: Any, on_message: Callable[[Any], Any] | None = None) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.threads: set[threading.Thread] = set()
        self._cond = threading.Condition()
        for name in EVENTS:
            streamer.on(name, lambda *args, name=name: self._add(name, args))
        if on_message is not None:
            streamer.on("message", on_message)

    def _add(self, name: str, args: tuple[Any, ...]) -> None:
        with self._cond:
            self.events.append((name, args))
            self.threads.add(threading.current_thread())
            self._cond.notify_all()

    def wait(self, predicate: Callable[[list[tuple[str, tuple[Any, ...]]]], bool],
             timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not reached in {timeout} s: {what}; events: {self.summary()}")
                self._cond.wait(left)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.events if n == name)

    def messages(self) -> list[Any]:
        return [args[0] for n, args in self.events if n == "message"]

    def summary(self) -> list[tuple[Any, ...]]:
        """The events without messages, which come at the simulator's pace: a message run is
        one ("message",) entry; errors are compared by text (the exception types are each
        library's own); reconnecting / autoReconnectStopped / close with their arguments."""
        out: list[tuple[Any, ...]] = []
        for name, args in self.events:
            if name == "message":
                if not out or out[-1] != ("message",):
                    out.append(("message",))
            elif name == "error":
                out.append(("error", str(args[0])))
            else:
                out.append((name, *args))
        return out


def messages_after_open(n: int, opens: int = 1) -> Callable[[list[Any]], bool]:
    """True once `n` messages have come after the `opens`-th open."""
    def reached(events: list[Any]) -> bool:
        seen_opens = 0
        count = 0
        for name, _ in events:
            if name == "open":
                seen_opens += 1
            elif name == "message" and seen_opens >= opens:
                count += 1
        return count >= n
    return reached


def has(name: str, n: int = 1) -> Callable[[list[Any]], bool]:
    return lambda events: sum(1 for e, _ in events if e == name) >= n
