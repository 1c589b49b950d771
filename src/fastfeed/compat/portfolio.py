"""PortfolioDataStreamer: the official SDK's portfolio streamer on PortfolioFeed.

``message`` listeners get each frame's text as it came, as the SDK gives it (no parsing).
"""
from __future__ import annotations

from typing import Any

from fastfeed.portfolio.feed import PortfolioFeed, portfolio_url
from fastfeed.transport.connection import ReconnectPolicy

from .streamer import Engine, Streamer


class _PortfolioEngine(Engine, PortfolioFeed):
    pass


class PortfolioDataStreamer(Streamer):
    """``upstox_client.PortfolioDataStreamer``, with PortfolioFeed underneath.

    `api_client`, `ssl`, `busy_poll`: as MarketDataStreamerV3. `url`: where to connect; by default
    ``fastfeed.compat.PORTFOLIO_URL`` as it is when ``connect()`` is called (the update types
    are added to it).
    """

    def __init__(self, api_client: Any = None, order_update: bool = True,
                 position_update: bool = False, holding_update: bool = False,
                 gtt_update: bool = False, *, url: str | None = None, ssl: Any = None,
                 busy_poll: bool | float = False) -> None:
        super().__init__(api_client)
        self.order_update = order_update
        self.position_update = position_update
        self.holding_update = holding_update
        self.gtt_update = gtt_update
        self._url = url
        engine = _PortfolioEngine(token_provider=self._access_token, order=order_update,
                                  position=position_update, holding=holding_update,
                                  gtt=gtt_update, url=url, ssl=True if ssl is None else ssl,
                                  reconnect=ReconnectPolicy.disabled(), busy_poll=busy_poll)
        engine.deliver = self._deliver
        self._bind(engine)

    def _prepare(self) -> None:
        from fastfeed import compat

        base = self._url or compat.PORTFOLIO_URL
        if not base.startswith(("ws://", "wss://")):
            raise ValueError("the portfolio URL must be a ws:// or wss:// URL")
        self.feed.url = portfolio_url(base, self.feed.update_types)

    def _deliver(self, payload: bytes, text: bool) -> None:
        # websocket-client hands a text frame over as str, a binary one as bytes.
        try:
            message: str | bytes = payload.decode("utf-8") if text else payload
        except UnicodeDecodeError as exc:  # a bad frame: an error event, the feed goes on
            self.emit(self.Event["ERROR"], exc)
            return
        for listener in self.listeners["message"]:
            try:
                listener(message)
            except Exception as exc:
                self._listener_failed("message", listener, exc)
