"""The hub as a service (``fastfeed hub``): one MarketFeed sharing its store, its metrics, and a
clean shutdown on SIGTERM or Ctrl-C.

``build_hub(args)`` makes the Hub from the command's parsed arguments; extensions (a NATS bridge,
say) add their arguments in ``fastfeed.cli.hub.add_arguments`` and their start/stop coroutines to
``Hub.on_start`` / ``Hub.on_stop`` in ``build_hub``.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any, Awaitable, Callable

from fastfeed.errors import AuthenticationError, FeedConnectionError
from fastfeed.market import MarketFeed
from fastfeed.shared.metrics import MetricsServer

log = logging.getLogger(__name__)

TOKEN_ENV = "UPSTOX_ACCESS_TOKEN"


def token_source(token_file: str | None) -> Callable[[], str]:
    """The token for each connection attempt, read afresh every time (the daily rollover: replace
    the file, or restart with a new environment): from `token_file`, else UPSTOX_ACCESS_TOKEN."""
    def from_file() -> str:
        assert token_file is not None
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:  # mid-rollover, say: try again on the next attempt
            raise FeedConnectionError(f"cannot read the token file: {exc.strerror}") from None
        if not token:
            raise FeedConnectionError("the token file is empty")
        return token

    def from_env() -> str:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise AuthenticationError(401, f"{TOKEN_ENV} is not set")
        return token

    return from_file if token_file else from_env


class Hub:
    """A shared MarketFeed, its metrics endpoint, and whatever else runs beside them."""

    def __init__(self, feed: MarketFeed, metrics_port: int | None = None,
                 metrics_host: str = "127.0.0.1") -> None:
        self.feed = feed
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.metrics: MetricsServer | None = None
        self.on_start: list[Callable[[Hub], Awaitable[Any]]] = []
        self.on_stop: list[Callable[[Hub], Awaitable[Any]]] = []

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set, SIGTERM or SIGINT arrives, or the feed gives up (its error is
        raised). Everything is closed on the way out: the segment and socket are unlinked."""
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass
        try:
            if self.metrics_port is not None:
                self.metrics = MetricsServer(self.feed, self.metrics_port, self.metrics_host)
            for fn in self.on_start:
                await fn(self)
            connect = asyncio.ensure_future(self.feed.connect(timeout=None))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([connect, stopping], return_when=asyncio.FIRST_COMPLETED)
            if connect.done():
                connect.result()  # an AuthenticationError, say
                log.info("hub %s serving %d subscription(s)", self.feed.share,
                         len(self.feed.subscriptions))
                ended = asyncio.ensure_future(self.feed.wait_closed())
                await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
                if ended.done():
                    ended.result()
                else:
                    ended.cancel()
            else:
                connect.cancel()
            stopping.cancel()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await self.close()

    async def close(self) -> None:
        for fn in self.on_stop:
            try:
                await fn(self)
            except Exception:
                log.exception("stopping a hub service failed")
        await self.feed.close()
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None


def split_keys(values: list[str]) -> list[str]:
    """``--instruments`` values: keys, each possibly a comma-separated list."""
    return [key.strip() for value in values for key in value.split(",") if key.strip()]


def build_hub(args: argparse.Namespace) -> Hub:
    """The Hub the parsed ``fastfeed hub`` arguments describe (nothing runs yet)."""
    feed = MarketFeed(token_provider=token_source(args.token_file), url=args.url,
                      instruments=split_keys(args.instruments), mode=args.mode, plus=args.plus,
                      authorize=args.authorize, max_instruments=args.max_instruments,
                      ring_capacity=args.ring_capacity, share=args.share)
    hub = Hub(feed, args.metrics_port, args.metrics_host)
    if getattr(args, "nats", None):
        _bridge_to_nats(hub, args)
    return hub


def _bridge_to_nats(hub: Hub, args: argparse.Namespace) -> None:
    from fastfeed.nats.cli import start_bridge

    bridges: list[Any] = []

    async def start(hub: Hub) -> None:
        bridges.append(await start_bridge(hub.feed, args))

    async def stop(hub: Hub) -> None:
        for bridge in bridges:
            await bridge.close()

    hub.on_start.append(start)
    hub.on_stop.append(stop)
