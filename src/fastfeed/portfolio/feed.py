"""PortfolioFeed: Upstox's Portfolio Stream Feed as typed records and a live book.

    async with PortfolioFeed(token, order=True, position=True) as feed:
        async for update in feed.updates():
            ...                          # OrderUpdate | PositionUpdate | HoldingUpdate | GttUpdate
        feed.orders["240221025997024"]   # the latest state of that order, from any thread

Per frame: `decode_update` turns the JSON text into an immutable record, the book takes it, then
every `updates()` stream and callback is told. The connection (redirect or authorize, TLS,
pings, reconnect with backoff, events, background thread) is `FeedClient`'s, shared with
MarketFeed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections import Counter, deque
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastfeed._listener import FeedListener
from fastfeed.errors import PortfolioDecodeError
from fastfeed.events import CONNECTION_EVENTS, GAP
from fastfeed.portfolio.book import PortfolioBook, PortfolioSnapshot, PositionKey
from fastfeed.portfolio.decode import decode_update
from fastfeed.portfolio.records import (GttUpdate, HoldingUpdate, OrderUpdate, PortfolioUpdate,
                                        PositionUpdate)
from fastfeed.transport.client import FeedClient
from fastfeed.transport.connection import ReconnectPolicy, TokenProvider

__all__ = ["PortfolioFeed", "UPDATE_TYPES", "UPSTOX_PORTFOLIO_URL", "UpdateStream",
           "portfolio_url"]

log = logging.getLogger(__name__)

UPSTOX_PORTFOLIO_URL = "wss://api.upstox.com/v2/feed/portfolio-stream-feed"
#: Upstox's update types, in the order they go into the URL.
UPDATE_TYPES = ("order", "position", "holding", "gtt_order")
UPDATE = "update"
#: Events on top of the connection's: every record, then the record's own update_type.
DATA_EVENTS = (UPDATE,) + UPDATE_TYPES


def portfolio_url(base: str, update_types: tuple[str, ...]) -> str:
    """`base` with its `update_types` query set to `update_types`, comma-joined and encoded as
    ``%2C`` as the SDK does (any `update_types` already in `base` is replaced)."""
    if not update_types:
        raise ValueError("at least one update type is needed")
    unknown = [t for t in update_types if t not in UPDATE_TYPES]
    if unknown:
        raise ValueError(f"unknown update type(s) {unknown}; known: {', '.join(UPDATE_TYPES)}")
    parts = urlsplit(base)
    rest = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "update_types"]
    query = "&".join(filter(None, (urlencode(rest), "update_types=" + "%2C".join(update_types))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class UpdateStream:
    """One `updates()` consumer: its own bounded queue of records, oldest first.

    When the consumer falls `queue_size` records behind, the oldest record is dropped to make room
    and counted in `missed` (and in the feed's ``stats()["updates_missed"]``). Memory never grows
    past `queue_size` records per stream. A dropped record is still in the book: read
    ``feed.orders`` etc. to catch up. The feed holds streams weakly: one nobody iterates any more
    is forgotten.
    """

    __slots__ = ("_feed", "_queue", "missed", "_waiter", "__weakref__")

    def __init__(self, feed: "PortfolioFeed", queue_size: int) -> None:
        self._feed = feed
        self._queue: deque[PortfolioUpdate] = deque(maxlen=queue_size)
        self.missed = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Records queued and not yet taken."""
        return len(self._queue)

    def __aiter__(self) -> "UpdateStream":
        return self

    async def __anext__(self) -> PortfolioUpdate:
        feed = self._feed
        while True:
            if self._queue:
                return self._queue.popleft()
            if feed.error is not None and not feed.closing:
                raise feed.error
            task = feed._run_task()
            if feed.closing or task is None or task.done():
                raise StopAsyncIteration
            loop = asyncio.get_running_loop()
            if loop is not feed.loop:
                raise RuntimeError("iterate updates() on the feed's event loop")
            waiter = self._waiter = loop.create_future()
            try:
                await asyncio.wait((waiter, task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._waiter = None
                if not waiter.done():
                    waiter.cancel()

    def close(self) -> None:
        """Stop queueing for this stream (also happens once nothing refers to it)."""
        self._feed._streams.discard(self)
        self._queue.clear()
        self._wake()

    def _push(self, record: PortfolioUpdate) -> bool:
        queue = self._queue
        dropped = len(queue) == queue.maxlen
        if dropped:
            self.missed += 1
        queue.append(record)
        self._wake()
        return dropped

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        return f"<UpdateStream pending={len(self._queue)} missed={self.missed}>"


class PortfolioFeed(FeedClient):
    """A Portfolio Stream Feed connection that keeps itself alive, and the book it feeds.

    `order`, `position`, `holding`, `gtt`: which update types to ask for (at least one; the
    SDK's default is order only). They go into the URL as ``update_types=order%2Cposition...``;
    every reconnect (and the authorize call, with ``authorize=True``) uses the same URL, so the
    same types come back.

    Each frame becomes an immutable record (`OrderUpdate`, `PositionUpdate`, `HoldingUpdate`,
    `GttUpdate`), applied to the book first and then handed out:

    - ``async for update in feed.updates()``: a bounded queue per consumer (see `UpdateStream`).
    - ``on_update(fn)``: ``fn(record)`` for every record.
    - ``on(update_type, fn)`` with ``"order"``, ``"position"``, ``"holding"`` or ``"gtt_order"``:
      ``fn(record)`` for records of that type only.

    Events (``on(event, fn)``), as MarketFeed: ``open()``, ``close(code, reason)``,
    ``error(exc)``, ``reconnecting(message)``, ``autoReconnectStopped(message)`` and ``gap(Gap)``
    (the stream was down; updates in between are lost, so reconcile with Upstox's REST API).
    A frame that is not a valid update (bad JSON, an unknown ``update_type``, a required field
    missing) is skipped: ``error`` gets a `PortfolioDecodeError` whose ``text`` is the frame with
    any token scrubbed, and ``stats()["decode_errors"]`` counts it. Callbacks run on the feed's
    loop; one that raises is logged and counted, never fatal.

    The book (``orders``, ``positions``, ``holdings``, ``gtt_orders``, ``snapshot()``) is
    readable from any thread at any time; each read is an immutable snapshot.

    ``busy_poll``: as MarketFeed's (True, or seconds to keep polling after the last message).
    """

    EVENTS = CONNECTION_EVENTS + (GAP,) + DATA_EVENTS
    DEFAULT_URL = UPSTOX_PORTFOLIO_URL
    FRAME_NAME = "portfolio frame"
    FEED_NAME = "portfolio"

    def __init__(self, access_token: str | None = None, *, token_provider: TokenProvider | None = None,
                 order: bool = True, position: bool = False, holding: bool = False, gtt: bool = False,
                 url: str | None = None, authorize: bool = False, ssl: Any = None,
                 queue_size: int = 4096, reconnect: ReconnectPolicy | None = None,
                 connect_timeout: float = 10.0, ping_interval: float | None = 10.0,
                 ping_timeout: float = 5.0, max_message_size: int = 16 * 1024 * 1024,
                 record: str | os.PathLike[str] | None = None,
                 busy_poll: bool | float = False) -> None:
        flags = (order, position, holding, gtt)
        types = tuple(t for t, wanted in zip(UPDATE_TYPES, flags) if wanted)
        if not types:
            raise ValueError("ask for at least one of order, position, holding, gtt")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        super().__init__(access_token, token_provider=token_provider,
                         url=portfolio_url(url or UPSTOX_PORTFOLIO_URL, types), authorize=authorize,
                         ssl=ssl, reconnect=reconnect, connect_timeout=connect_timeout,
                         ping_interval=ping_interval, ping_timeout=ping_timeout,
                         max_frame_size=max_message_size, busy_poll=busy_poll)
        self.update_types: tuple[str, ...] = types
        self.book = PortfolioBook()
        self.queue_size = queue_size
        self._max_message_size = max_message_size
        self._streams: weakref.WeakSet[UpdateStream] = weakref.WeakSet()
        self._by_type: Counter[str] = Counter()
        self._errors_by_kind: Counter[str] = Counter()
        self.decode_errors = 0
        self.updates_missed = 0
        if record is not None:
            self.record(record)

    # -- the live book (any thread) -----------------------------------------------------------------
    @property
    def orders(self) -> Mapping[str, OrderUpdate]:
        """order_id -> latest OrderUpdate (an immutable snapshot; read again for newer state)."""
        return self.book.orders

    @property
    def positions(self) -> Mapping[PositionKey, PositionUpdate]:
        """(instrument_token, product) -> latest PositionUpdate."""
        return self.book.positions

    @property
    def holdings(self) -> Mapping[str, HoldingUpdate]:
        """instrument_token -> latest HoldingUpdate."""
        return self.book.holdings

    @property
    def gtt_orders(self) -> Mapping[str, GttUpdate]:
        """gtt_order_id -> latest GttUpdate."""
        return self.book.gtt_orders

    @property
    def updates_applied(self) -> int:
        """Records applied to the book (frames that decoded)."""
        return self.book.updates

    def snapshot(self) -> PortfolioSnapshot:
        """All four views as of one moment between two updates."""
        return self.book.snapshot()

    # -- consumers ------------------------------------------------------------------------------------
    def on_update(self, fn: Callable[[PortfolioUpdate], Any]) -> Callable[[PortfolioUpdate], Any]:
        """Call ``fn(record)`` for every record, after the book has it. Returns `fn`.
        For one type only: ``on("order", fn)`` (or "position", "holding", "gtt_order")."""
        return self.on(UPDATE, fn)

    def off_update(self, fn: Callable[..., Any] | None = None) -> None:
        self.off(UPDATE, fn)

    def updates(self, queue_size: int | None = None) -> UpdateStream:
        """Records from now on, oldest first: ``async for update in feed.updates(): ...``.

        Each call is a new consumer with its own queue of at most `queue_size` records (default:
        the feed's `queue_size`); a consumer that falls that far behind loses the oldest, counted
        in ``stream.missed``. Records from before the call are in the book only; create the
        stream before ``connect()`` to see every record from the first. Iterate it on the feed's
        event loop. It ends when the feed is closed, and raises why the feed stopped if it stopped
        on its own (e.g. AuthenticationError).
        """
        size = self.queue_size if queue_size is None else queue_size
        if size < 1:
            raise ValueError("queue_size must be at least 1")
        stream = UpdateStream(self, size)
        self._streams.add(stream)
        return stream

    # -- the frame path -------------------------------------------------------------------------------
    def _on_message(self, payload: bytes, text: bool) -> None:
        try:
            # Every token this feed has used: the error text drops them.
            record = decode_update(payload, self._used_tokens())
        except PortfolioDecodeError as exc:
            self._bad_frame(exc, len(payload))
            return
        self.book.apply(record)  # the book first: a callback reading it sees this record
        kind = record.update_type
        self._by_type[kind] += 1
        if self._streams:
            for stream in self._streams:
                if stream._push(record):
                    self.updates_missed += 1
                    if self.updates_missed & (self.updates_missed - 1) == 0:
                        log.warning("an updates() consumer is %d records behind: the oldest are "
                                    "dropped (%d so far)", stream._queue.maxlen, self.updates_missed)
        emit = self.events.emit
        emit(UPDATE, record)
        emit(kind, record)

    def _bad_frame(self, exc: PortfolioDecodeError, size: int) -> None:
        self.decode_errors += 1
        self._errors_by_kind[exc.kind] += 1
        # The kind and reason only: the frame (exc.text) stays out of the log.
        self._report_bad_frame(exc, size, f"{exc.kind}: {exc.reason}")

    def _wake_streams(self) -> None:
        for stream in list(self._streams):
            stream._wake()

    # -- connection hooks -----------------------------------------------------------------------------
    def _make_listener(self) -> FeedListener:
        listener = FeedListener(None, self, self._max_message_size)
        listener.on_message = self._on_message
        return listener

    def _recording_subscriptions(self) -> list[str]:
        return list(self.update_types)

    # _on_open: nothing to send (the update types are in the URL; updates flow at once), and the
    # gap after a lost connection is FeedClient's.

    def _on_lost(self, listener: Any, closing: bool) -> None:
        if closing:
            self._wake_streams()

    def _on_stopped(self, exc: BaseException) -> None:
        self._wake_streams()

    def _delivered(self) -> int:
        return self.book.updates

    async def close(self, timeout: float = 5.0) -> None:
        await super().close(timeout)
        self._wake_streams()

    # -- stats ----------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        totals = self._listener_totals()
        errors_by_kind = dict(self._errors_by_kind)
        if totals["oversized"]:  # fragmented messages over max_message_size, dropped unread
            errors_by_kind["oversized"] = totals["oversized"]
        out: dict[str, Any] = {
            "frames": totals["frames"], "bytes": totals["bytes"], "updates": self.updates_applied,
            "by_type": {t: self._by_type[t] for t in UPDATE_TYPES},
            "decode_errors": self.decode_errors + totals["oversized"],
            "errors_by_kind": errors_by_kind,
            "updates_missed": self.updates_missed, "streams": len(self._streams), "gaps": self.gaps,
            "orders": len(self.book.orders), "positions": len(self.book.positions),
            "holdings": len(self.book.holdings), "gtt_orders": len(self.book.gtt_orders),
        }
        out.update(self._connection_stats(totals))
        return out

    def __repr__(self) -> str:
        return (f"<PortfolioFeed {self.url} {self.state} update_types={','.join(self.update_types)} "
                f"updates={self.updates_applied}>")
