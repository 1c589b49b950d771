"""MarketFeed: Upstox's market-data feed v3, decoded in C into a snapshot table and an update ring.

    async with MarketFeed(token, instruments=["NSE_EQ|INE002A01018"], mode="full") as feed:
        async for batch in feed.updates():
            ...

Per frame, with no Python callback registered, nothing but C runs: picows parses the frame, the
listener hands its bytes to the decoder, the decoder writes the rows and the ring. Readers look at
the ring or the snapshot whenever they like, from any thread.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, AsyncIterator, Callable, Iterable

import numpy as np
import numpy.typing as npt

from fastfeed._callbacks import FrameCallbacks
from fastfeed._decode import FeedDecoder
from fastfeed._listener import FeedListener
from fastfeed._store import Store
from fastfeed.errors import FeedClosedError, InstrumentLimitError
from fastfeed.events import CONNECTION_EVENTS, ERROR, GAP, MARKET_STATUS
from fastfeed.quote import Quote
from fastfeed.reading import StoreReading, UpdateBatch
from fastfeed.transport.client import FeedClient
from fastfeed.transport.connection import ReconnectPolicy, TokenProvider
from fastfeed.transport.requests import DEFAULT_CHUNK, requests
from fastfeed.transport.state import IDLE
from fastfeed.transport.subscriptions import MODES, SubscriptionBook, check_mode

log = logging.getLogger(__name__)

UPSTOX_MARKET_URL = "wss://api.upstox.com/v3/feed/market-data-feed"
_BINARY = 2  # picows WSMsgType.BINARY
_PART_SNAPSHOT = 32  # PART_SNAPSHOT of a record's parts (_store.pxd): from an initial_feed


def _percentiles(values: npt.NDArray[Any]) -> dict[str, float]:
    if len(values) == 0:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p99 = np.percentile(values, (50, 99))
    return {"count": int(len(values)), "p50": float(p50), "p99": float(p99), "max": float(values.max())}


class MarketFeed(StoreReading, FeedClient):
    """A market-data feed v3 connection that keeps itself alive.

    Events (``on(event, fn)``): ``open()``, ``close(code, reason)``, ``error(exc)``,
    ``reconnecting(message)``, ``autoReconnectStopped(message)`` (the SDK's names and arguments),
    ``market_status(dict segment -> status)`` and ``gap(Gap)``. Callbacks run on the feed's loop.

    ``busy_poll=True`` keeps the feed's loop polling instead of sleeping while it waits for data
    (a frame is handled as soon as it lands, at the price of a core at 100 %);
    ``busy_poll=<seconds>`` spins that long after the last frame, then sleeps until the next.

    ``share="NAME"`` keeps the store in the shared-memory segment /dev/shm/NAME, read by other
    processes through ``fastfeed.attach("NAME")``, and serves their subscription requests while
    the feed runs; closing the feed unlinks the segment (see :mod:`fastfeed.shared`).
    """

    EVENTS = CONNECTION_EVENTS + (MARKET_STATUS, GAP)
    DEFAULT_URL = UPSTOX_MARKET_URL
    FEED_NAME = "market"
    RETIRED_PATHS = {"/v2/feed/market-data-feed": (
        "Upstox switched the market-data feed v2 off on 2025-08-22: use v3, "
        f"{UPSTOX_MARKET_URL} (the path /v3/feed/market-data-feed)")}

    def __init__(self, access_token: str | None = None, *, token_provider: TokenProvider | None = None,
                 instruments: str | Iterable[str] = (), mode: str = "ltpc", url: str | None = None,
                 plus: bool = False, authorize: bool = False, ssl: Any = None,
                 max_instruments: int = 4096, ring_capacity: int = 1 << 16,
                 reconnect: ReconnectPolicy | None = None, connect_timeout: float = 10.0,
                 ping_interval: float | None = 10.0, ping_timeout: float = 5.0,
                 max_message_size: int = 16 * 1024 * 1024, request_chunk: int = DEFAULT_CHUNK,
                 record: str | os.PathLike[str] | None = None,
                 busy_poll: bool | float = False, share: str | None = None) -> None:
        mode = check_mode(mode)
        super().__init__(access_token, token_provider=token_provider, url=url, authorize=authorize,
                         ssl=ssl, reconnect=reconnect, connect_timeout=connect_timeout,
                         ping_interval=ping_interval, ping_timeout=ping_timeout,
                         max_frame_size=max_message_size, busy_poll=busy_poll)
        self.plus = plus
        # share=NAME: the store lives in a named shared-memory segment that other processes
        # read with fastfeed.attach(NAME); see fastfeed.shared.
        self._share = None
        if share is not None:
            from fastfeed.shared.host import ShareHost
            self._share = ShareHost(share, max_instruments, ring_capacity)
            self.decoder = self._share.decoder
        else:
            self.decoder = FeedDecoder(max_instruments, ring_capacity)
        self.store: Store = self.decoder.store
        self._max_message_size = max_message_size
        self._request_chunk = request_chunk
        self._book = SubscriptionBook(plus=plus, max_instruments=max_instruments)
        self._book_lock = threading.Lock()
        self._update_fns: list[Callable[[npt.NDArray[Any]], Any]] = []
        self._quote_fns: dict[str, list[Callable[[Quote], Any]]] = {}
        self._callbacks = FrameCallbacks(self.store, self.events.failed)
        self._data_waiters: list[asyncio.Future[None]] = []
        # wait_for() callers: their future and its loop (a caller may run on another loop).
        self._quote_waiters: list[tuple[asyncio.Future[Quote], asyncio.AbstractEventLoop]] = []
        self.ring_overruns = 0
        if isinstance(instruments, str):
            instruments = [instruments]
        instruments = list(instruments)
        try:
            if instruments:
                self.subscribe(instruments, mode)
            if record is not None:
                self.record(record)
        except BaseException:
            if self._share is not None:
                self._share.close()  # the name is free again at once
            raise

    # -- subscriptions (any thread; before the connection opens too) --------------------------------
    def subscribe(self, keys: str | Iterable[str], mode: str = "ltpc") -> None:
        """Subscribe `keys` in `mode` (keys already subscribed change to it). Checked against
        Upstox's caps and ``max_instruments``: SubscriptionLimitError, nothing changed.

        `mode` is one of `fastfeed.schema.MODES`, as `Quote.mode` reports it; the frames' name
        ``full_d5`` is taken for ``full``."""
        mode = check_mode(mode)
        with self._book_lock:
            keys = self._book.subscribe(keys, mode, known=len(self.store),
                                        is_known=self.store.__contains__)
        self.call_soon(self._send, "sub", keys, mode)

    def unsubscribe(self, keys: str | Iterable[str]) -> None:
        with self._book_lock:
            keys = self._book.unsubscribe(keys)
        self.call_soon(self._send, "unsub", keys, None)

    def change_mode(self, keys: str | Iterable[str], mode: str) -> None:
        mode = check_mode(mode)
        with self._book_lock:
            keys = self._book.change_mode(keys, mode)
        self.call_soon(self._send, "change_mode", keys, mode)

    @property
    def subscriptions(self) -> dict[str, str]:
        """Wanted subscriptions, key to mode: what you asked for, and what every reconnect
        restores. Compare `instruments`, the keys the feed has sent data for."""
        with self._book_lock:
            return dict(self._book.wanted)

    def _recording_subscriptions(self) -> dict[str, str]:
        return self.subscriptions

    def _send(self, method: str, keys: list[str], mode: str | None) -> None:
        if not self.connected or not keys:
            return  # sent on open
        for payload in requests(method, keys, mode, self._request_chunk):
            if self._send_binary(payload):
                self._record_request(payload)

    # -- reading --------------------------------------------------------------------------------------
    @property
    def market_status(self) -> dict[str, Any]:
        return dict(self.decoder.market_status)

    # -- callbacks ------------------------------------------------------------------------------------
    def on_update(self, fn: Callable[[npt.NDArray[Any]], Any]) -> Callable[[npt.NDArray[Any]], Any]:
        """Call ``fn(records)`` once per decoded frame, after the snapshot is updated.

        ``records`` are that frame's ring records (``RECORD_DTYPE``, one per instrument updated),
        a read-only view valid during the call only: ``records.copy()`` to keep it. (The same
        view object over a buffer the records are copied into serves every frame of up to 64
        records, so no numpy object is made per frame; a larger frame gets a view into the ring.)
        """
        if not callable(fn):
            raise TypeError("fn must be callable")
        self._update_fns = [*self._update_fns, fn]
        self.call_soon(self._arm_frame_callback)
        return fn

    def on_quote(self, key: str, fn: Callable[[Quote], Any]) -> Callable[[Quote], Any]:
        """Call ``fn(quote)`` with the new Quote each time `key` updates."""
        if not callable(fn):
            raise TypeError("fn must be callable")
        fns = [*self._quote_fns.get(key, []), fn]
        self._quote_fns = {**self._quote_fns, key: fns}
        self.call_soon(self._arm_frame_callback)
        return fn

    def off_update(self, fn: Callable[..., Any]) -> None:
        self._update_fns = [f for f in self._update_fns if f is not fn]
        self.call_soon(self._arm_frame_callback)

    def off_quote(self, key: str, fn: Callable[..., Any] | None = None) -> None:
        fns = [f for f in self._quote_fns.get(key, []) if fn is not None and f is not fn]
        quote_fns = dict(self._quote_fns)
        if fns:
            quote_fns[key] = fns
        else:
            quote_fns.pop(key, None)
        self._quote_fns = quote_fns
        self.call_soon(self._arm_frame_callback)

    def _arm_frame_callback(self, listener: FeedListener | None = None) -> None:
        # On the feed's loop. The listener calls into Python per frame only while someone is
        # listening.
        callbacks = self._callbacks
        callbacks.set_update_fns(self._update_fns)
        callbacks.set_quote_fns(self._quote_fns)
        if listener is None:
            listener = self._live_listener()
        if listener is not None:
            listener.callbacks = callbacks if callbacks.active else None

    # -- async ----------------------------------------------------------------------------------------
    async def updates(self, limit: int | None = None, from_start: bool = False) -> AsyncIterator[UpdateBatch]:
        """Batches of ring records as they arrive, read with this iterator's own cursor.

        A consumer slower than the feed loses the oldest records once it is a whole ring behind;
        each batch says how many (``batch.missed``) and ``stats()["ring_overruns"]`` totals them.
        Memory never grows. Ends when the feed is closed; raises why it stopped, if it did.
        Run it on the feed's event loop (RuntimeError otherwise: from another thread, use
        ``on_update``, ``ring`` or ``snapshot``).
        """
        self._check_on_feed_loop()
        async for batch in self._ring_batches(limit, from_start, self._more_updates):
            yield batch

    async def _more_updates(self) -> bool:
        if self.error is not None and not self.closing:
            raise self.error
        if self.closing or not self.running:
            return False
        self._check_on_feed_loop()
        await self._next_data()
        return True

    def _check_on_feed_loop(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed() and asyncio.get_running_loop() is not loop:
            raise RuntimeError("iterate updates() on the feed's event loop; from another thread "
                               "use on_update(), ring or snapshot")

    async def wait_for(self, key: str, timeout: float | None = None) -> Quote:
        """The quote of `key` once it has arrived (at once if it already has). Any event loop:
        the feed's own, or another thread's while the feed runs in the background (``start()``).

        Raises at once when it can never come: why the feed stopped if it stopped on its own,
        FeedClosedError if it was closed or never started; TimeoutError after `timeout` s.
        """
        quote = self.store.quote(key)
        if quote is not None and quote.updates > 0:
            return quote
        if self.error is not None:
            raise self.error
        if not self.running or self.closing:
            raise self._not_running()
        caller = asyncio.get_running_loop()
        found: asyncio.Future[Quote] = caller.create_future()
        entry = (found, caller)

        def got(q: Quote) -> None:  # on the feed's loop
            _settle(found, caller, q)

        def arrived_meanwhile() -> None:
            # Runs on the feed's loop after `got` is armed: a quote that came in between the
            # check above and the arming is not missed.
            q = self.store.quote(key)
            if q is not None and q.updates > 0:
                got(q)

        self._quote_waiters.append(entry)  # failed if the feed stops
        self.on_quote(key, got)
        self.call_soon(arrived_meanwhile)
        try:
            if self.error is not None and not self.closing:
                raise self.error  # it stopped while we registered
            if not self.running:
                raise self._not_running()
            return await asyncio.wait_for(found, timeout)
        finally:
            self.off_quote(key, got)
            if entry in self._quote_waiters:
                self._quote_waiters.remove(entry)

    def _not_running(self) -> FeedClosedError:
        if self.state == IDLE:
            return FeedClosedError("the feed is not running: it was never started (connect(), "
                                   "start(), or async with / with)")
        return FeedClosedError("the feed is not running: it was closed")

    async def _next_data(self) -> None:
        loop = self.loop
        assert loop is not None
        waiter: asyncio.Future[None] = loop.create_future()
        self._data_waiters.append(waiter)
        listener = self._live_listener()
        if listener is not None:
            listener.wake = self._wake
        try:
            await waiter
        finally:
            if waiter in self._data_waiters:
                self._data_waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._data_waiters = self._data_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _release_waiters(self, exc: BaseException | None) -> None:
        data, quotes = self._data_waiters, self._quote_waiters
        self._data_waiters, self._quote_waiters = [], []
        for w in data:
            if not w.done():
                if exc is None:
                    w.set_result(None)  # an updates() consumer ends quietly on close
                else:
                    w.set_exception(exc)
                    w.exception()
        for q, loop in quotes:
            _settle(q, loop, None, exc or self._not_running())

    # -- connection hooks -----------------------------------------------------------------------------
    def _make_listener(self) -> FeedListener:
        listener = FeedListener(self.decoder, self, self._max_message_size)
        self._arm_frame_callback(listener)
        if self._data_waiters:
            listener.wake = self._wake
        return listener

    async def _run(self) -> None:
        share = self._share
        if share is None:
            await super()._run()
            return
        try:
            await share.start(self)
        except OSError as exc:  # readers can still read; they cannot ask for instruments
            log.error("shared feed %s: no control socket: %s", share.name, exc)
        try:
            await super()._run()
        finally:
            await share.stop()

    def _on_open(self, listener: Any, attempts: int) -> None:
        with self._book_lock:
            by_mode = self._book.by_mode()
        transport = listener.transport  # the connection is not open until this has gone out
        for mode in MODES:
            for payload in requests("sub", by_mode.get(mode, []), mode, self._request_chunk):
                transport.send(_BINARY, payload)
                self._record_request(payload)

    def _delivered(self) -> int:
        return self.decoder.updates

    def _on_lost(self, listener: Any, closing: bool) -> None:
        if closing:
            self._release_waiters(None)
            return
        # Rows stay stale until their next update: readers can tell old prices during the outage.
        self.store.mark_stale()

    def _on_stopped(self, exc: BaseException) -> None:
        self._release_waiters(exc)

    def _market_info(self, listener: Any) -> None:
        # Only an open connection's listener decodes (one that failed to open is detached).
        self.events.emit(MARKET_STATUS, dict(self.decoder.market_status))

    def _instruments_rejected(self, listener: Any) -> None:
        limit = self.decoder.store.max_instruments
        for key in self.decoder.take_rejected():
            self.events.emit(ERROR, InstrumentLimitError(limit, key))

    async def close(self, timeout: float = 5.0) -> None:
        await super().close(timeout)
        self._release_waiters(None)

    # -- stats ----------------------------------------------------------------------------------------
    def latency(self) -> dict[str, dict[str, float]]:
        """Percentiles from the ring's records: receive time minus the frame's currentTs (ms) of
        live ticks, and apart of snapshot (initial_feed) records, whose currentTs may be older
        and which would dominate a short run; and frame arrival in the listener to callback
        start (µs, sampled only while a callback is registered; the last 4096 of each):
        ``frame_to_callback_us`` for the first callback of each frame, ``frame_to_on_update_us``
        and ``frame_to_on_quote_us`` (the Quote's build included) for each kind."""
        head = self.store.updates_written
        ring = self.store.ring[:min(head, self.store.ring_capacity)]
        sent = ring["server_ts"]
        lag = ring["recv_ns"] / 1e6 - sent
        snapshot = (ring["parts"] & _PART_SNAPSHOT) != 0
        known = sent > 0
        cb = self._callbacks
        return {"recv_minus_server_ms": _percentiles(lag[known & ~snapshot]),
                "snapshot_recv_minus_server_ms": _percentiles(lag[known & snapshot]),
                "frame_to_callback_us": _percentiles(cb.samples_ns("first") / 1e3),
                "frame_to_on_update_us": _percentiles(cb.samples_ns("on_update") / 1e3),
                "frame_to_on_quote_us": _percentiles(cb.samples_ns("on_quote") / 1e3)}

    @property
    def share(self) -> str | None:
        """The name readers attach to (``fastfeed.attach``), if the store is shared."""
        return self._share.name if self._share is not None else None

    def stats(self) -> dict[str, Any]:
        d = self.decoder
        totals = self._listener_totals()
        # Every frame the feed could not use: the decoder's errors and text frames (both counted
        # by the listener as decode_errors) and fragmented messages over max_message_size.
        decode_errors = totals["decode_errors"] + totals["oversized"]
        out: dict[str, Any] = {
            "frames": d.frames, "bytes": d.bytes, "updates": d.updates, "decode_errors": decode_errors,
            "initial_feed": d.initial_frames, "live_feed": d.live_frames,
            "market_info": d.market_info_frames, "instruments": len(self.store),
            "subscriptions": len(self._book), "ring_overruns": self.ring_overruns, "gaps": self.gaps,
        }
        if self._share is not None:
            out["readers"] = self._share.readers
        out.update(self._connection_stats(totals))
        out["latency"] = self.latency()
        return out

    def __repr__(self) -> str:
        return (f"<MarketFeed {self.url} {self.state} subscriptions={len(self._book)} "
                f"updates={self.decoder.updates}>")


def _settle(future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, result: Any = None,
            exc: BaseException | None = None) -> None:
    """Resolve `future` (of `loop`) from whatever thread this runs on."""
    def settle() -> None:
        if not future.done():
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: a waiter that timed out must not warn at exit
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        settle()
    else:
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass


__all__ = ["MarketFeed", "UPSTOX_MARKET_URL", "UpdateBatch"]
