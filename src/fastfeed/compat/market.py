"""MarketDataStreamerV3: the official SDK's market-data streamer on MarketFeed.

Each frame is decoded once into MarketFeed's store, then ``to_dict`` builds the SDK's own
message dict (``MessageToDict(FeedResponse)``) for the ``message`` listeners.
"""
from __future__ import annotations

from typing import Any, Iterable

from fastfeed._render import to_dict
from fastfeed.market import MarketFeed
from fastfeed.proto import fastfeed_market_v3_pb2
from fastfeed.transport.connection import ReconnectPolicy
from fastfeed.transport.subscriptions import MODES, normalize_keys

from .streamer import Engine, Streamer


class _MarketEngine(Engine, MarketFeed):
    def forget(self) -> None:
        """Drop every wanted subscription without unsubscribing (the SDK's clear_subscriptions:
        nothing is sent, the next connection subscribes nothing)."""
        with self._book_lock:
            self._book.unsubscribe(list(self._book.wanted))


class MarketDataStreamerV3(Streamer):
    """``upstox_client.MarketDataStreamerV3``, with MarketFeed underneath.

    `api_client`: an ``upstox_client.ApiClient`` (its ``configuration.access_token`` is read
    before every connection, as the SDK does) or the access token itself. `url`: where to
    connect; by default ``fastfeed.compat.MARKET_DATA_URL`` as it is when ``connect()`` is
    called. `ssl`: an SSLContext, or False to turn verification off (logged). `plus`: the
    account has Upstox Plus (``full_d30``). `busy_poll`: as MarketFeed's (the streamer's thread
    keeps polling instead of sleeping while it waits, at the price of a core).
    """

    Mode = {
        "LTPC": "ltpc",
        "FULL": "full",
        "OPTION": "option_greeks",
        "D30": "full_d30",
    }

    def __init__(self, api_client: Any = None, instrumentKeys: Iterable[str] = [],  # noqa: B006 (the SDK's signature)
                 mode: str = "ltpc", *, url: str | None = None, ssl: Any = None,
                 plus: bool = False, busy_poll: bool | float = False) -> None:
        super().__init__(api_client)
        if mode not in self.Mode.values():
            raise ValueError(f"Invalid mode provided {mode}")
        self.protobufRoot = fastfeed_market_v3_pb2
        self.instrumentKeys = instrumentKeys
        self.mode = mode
        self._url = url
        engine = _MarketEngine(token_provider=self._access_token, url=url, plus=plus,
                               ssl=True if ssl is None else ssl,
                               reconnect=ReconnectPolicy.disabled(), busy_poll=busy_poll)
        engine.deliver = self._deliver
        self._bind(engine)
        keys = normalize_keys(instrumentKeys)
        if keys:
            engine.subscribe(keys, mode)

    def _prepare(self) -> None:
        from fastfeed import compat

        url = self._url or compat.MARKET_DATA_URL
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("the market data URL must be a ws:// or wss:// URL")
        self.feed.url = url

    @property
    def subscriptions(self) -> dict[str, set[str]]:
        """Mode to the set of keys subscribed in it (every mode present), as the SDK keeps it."""
        out: dict[str, set[str]] = {mode: set() for mode in self.Mode.values()}
        for key, mode in self.feed.subscriptions.items():
            out[mode].add(key)
        return out

    # -- subscriptions: any thread, before the socket opens too (queued) ---------------------------
    def subscribe(self, instrumentKeys: Iterable[str], mode: str) -> None:
        if self.is_invalid_mode(mode):
            return
        self.feed.subscribe(instrumentKeys, mode)

    def unsubscribe(self, instrumentKeys: Iterable[str]) -> None:
        self.feed.unsubscribe(instrumentKeys)

    def change_mode(self, instrumentKeys: Iterable[str], newMode: str) -> None:
        if self.is_invalid_mode(newMode):
            return
        keys = normalize_keys(instrumentKeys)
        wanted = self.feed.subscriptions
        # The SDK tracks keys it was not subscribed to as subscribed in the new mode.
        missing = [k for k in keys if k not in wanted]
        present = [k for k in keys if k in wanted]
        if missing:
            self.feed.subscribe(missing, newMode)
        if present:
            self.feed.change_mode(present, newMode)
        self.mode = newMode

    def clear_subscriptions(self) -> None:
        self.feed.forget()

    def is_invalid_mode(self, mode: str) -> bool:
        if mode not in MODES:
            self._emit_from_caller(self.Event["ERROR"], f"Invalid mode provided {mode}")
            return True
        return False

    def decode_protobuf(self, buffer: Any) -> Any:
        """A FeedResponse (fastfeed's generated class) from a frame's bytes; a dict (what
        ``message`` listeners get, already decoded) is returned as it is."""
        if isinstance(buffer, dict):
            return buffer
        return fastfeed_market_v3_pb2.FeedResponse.FromString(bytes(buffer))

    # -- per frame, on the streamer's thread ------------------------------------------------------
    def _deliver(self, payload: bytes, text: bool) -> None:
        message = to_dict(payload)
        for listener in self.listeners["message"]:
            try:
                listener(message)
            except Exception as exc:
                self._listener_failed("message", listener, exc)
