"""NatsFeed: a hub's quotes on another machine, rebuilt from NATS into a local FeedDecoder.

    async with NatsFeed("nats://hub:4222") as feed:      # every instrument's state is in
        print(feed.quote("NSE_EQ|INE002A01018"))
        async for batch in feed.updates():
            ...

It subscribes to the bridge's live subjects first (core NATS, every update), then reads the
bridge's stream (the conflated state) with a JetStream push consumer that starts with the last
message of every subject (DeliverLastPerSubject) and then follows new ones. Each message is a
one-entry FeedResponse, decoded by the same decoder as the hub's with the hub's receive time, so
quotes equal the hub's. Live messages are held back until the stream has caught up with them,
and per subject only an update newer than the one applied is applied (see _scan.pyx): the
stream's copies of what came live are skipped, and what the live path lost (a reconnect, a
NATS that dropped it) comes from the stream within the bridge's ``state_interval``. Entering the
block returns once the stream's first pass is in. Both paths' messages are picked out of the
socket's bytes in C and decoded there: nats-py's parser, in Python, handles everything else on
the connection. A skipped consumer sequence, a silent consumer (no heartbeat) or a reconnect
starts a new consumer from the last message per subject again.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable, Iterable

import numpy.typing as npt

from fastfeed._decode import FeedDecoder
from fastfeed.errors import FastfeedError, FeedConnectionError
from fastfeed.events import MARKET_STATUS, EventRegistry
from fastfeed.market import _percentiles, _settle
from fastfeed.nats._scan import MsgScanner
from fastfeed.nats.bridge import redacted, server_list
from fastfeed.nats.subjects import (check_prefix, instrument_filter, live_filter, status_subject,
                                    stream_name)
from fastfeed.quote import Quote
from fastfeed.reading import StoreReading, UpdateBatch

log = logging.getLogger(__name__)

_HEARTBEAT = 1.0   # seconds between the consumer's idle heartbeats


class NatsFeed(StoreReading):
    """Quotes from a Bridge's JetStream stream: ``quote``, ``snapshot``, ``updates()``,
    ``wait_for``, ``on_update``/``on_quote`` as MarketFeed offers them, and ``stats()``.

    ``instruments``: keys to follow (default: every instrument the hub publishes).
    Event (``on``): ``market_status(dict segment -> status)``.
    """

    EVENTS = (MARKET_STATUS,)

    def __init__(self, servers: str | Iterable[str], *, prefix: str = "upstox",
                 instruments: str | Iterable[str] | None = None, stream: str | None = None,
                 max_instruments: int = 4096, ring_capacity: int = 1 << 16,
                 connect_timeout: float = 5.0, ready_timeout: float = 30.0) -> None:
        self.servers = server_list(servers)
        self.prefix = check_prefix(prefix)
        self.stream = stream or stream_name(prefix)
        if isinstance(instruments, str):
            instruments = [instruments]
        self.instruments_wanted = None if instruments is None else list(dict.fromkeys(instruments))
        filters = ([f"{self.prefix}.>"] if self.instruments_wanted is None else
                   [instrument_filter(self.prefix, k) for k in self.instruments_wanted]
                   + [status_subject(self.prefix)])
        self._filters = filters
        self._live_filters = ([live_filter(self.prefix)] if self.instruments_wanted is None else
                              [live_filter(self.prefix, k) for k in self.instruments_wanted])
        self.connect_timeout = connect_timeout
        self.ready_timeout = ready_timeout
        self.decoder = FeedDecoder(max_instruments, ring_capacity)
        self.store = self.decoder.store
        self.events = EventRegistry(self.EVENTS, owner="NatsFeed")
        self._scanner = MsgScanner(self.decoder, prefix=self.prefix)
        self.ring_overruns = 0
        self.disconnects = 0
        self.resyncs = 0
        self._nc: Any = None
        self._jsm: Any = None
        self._sub: Any = None
        self._watchdog: asyncio.Task[None] | None = None
        self._subscribed_ns = 0
        self._market_info_seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._closed = False
        self._update_fns: list[Callable[[npt.NDArray[Any]], Any]] = []
        self._quote_fns: dict[str, list[Callable[[Quote], Any]]] = {}
        self._waiters: list[asyncio.Future[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> "NatsFeed":
        """Connect, subscribe and return once every subject's last message is applied."""
        import nats
        from nats.js.errors import NotFoundError

        self._loop = asyncio.get_running_loop()
        self._closed = False
        try:
            # nats-py retries the first connection forever too (max_reconnect_attempts=-1):
            # bounded here, so that an unreachable server is an error at once.
            self._nc = await asyncio.wait_for(nats.connect(
                self.servers, name="fastfeed-natsfeed", allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25, ping_interval=2.0,
                max_outstanding_pings=2, connect_timeout=self.connect_timeout,
                disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                error_cb=self._error), 2 * self.connect_timeout)
        except Exception as exc:
            raise FeedConnectionError(f"NATS {redacted(self.servers)} unreachable: "
                                      f"{type(exc).__name__}") from None
        self._nc._ps = _ScanningParser(self, self._nc._ps)
        self._jsm = self._nc.jsm()
        try:
            await self._jsm.stream_info(self.stream)
            await self._subscribe_live()
            await self._subscribe()
            await asyncio.wait_for(self._caught_up(), self.ready_timeout)
        except NotFoundError:
            await self.close()
            raise FastfeedError(f"no stream {self.stream} on {redacted(self.servers)}: "
                                "is a Bridge publishing there?") from None
        except asyncio.TimeoutError:
            await self.close()
            raise FastfeedError(f"the last messages of {self.stream} did not arrive in "
                                f"{self.ready_timeout} s") from None
        self._ready = True
        self._watchdog = self._loop.create_task(self._watch(), name="fastfeed-natsfeed-watch")
        return self

    async def _caught_up(self) -> None:
        while not self._scanner.caught_up:
            await asyncio.sleep(0.005)

    async def _subscribe_live(self) -> None:
        """The live subjects, before the stream is read: nothing falls between the two. nats-py
        subscribes them again after a reconnect, under the same sids."""
        sids = []
        for subject in self._live_filters:
            sub = await self._nc.subscribe(subject)   # its messages never reach nats-py either
            sids.append(sub._id)
        if sids != list(range(sids[0], sids[0] + len(sids))):
            raise FastfeedError("NatsFeed: live subscriptions did not get consecutive ids")
        self._scanner.watch_live(sids[0], sids[-1])

    async def _subscribe(self) -> None:
        """A new consumer: the last message of every subject, then new ones."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = self._nc
        old, self._sub = self._sub, None
        if old is not None:
            try:
                await old.unsubscribe()   # the server drops a push consumer nobody listens to
            except Exception as exc:
                log.debug("NatsFeed: unsubscribe: %r", exc)
        inbox = nc.new_inbox()
        # Its messages never reach nats-py: the scanner decodes them as they are read.
        self._sub = await nc.subscribe(inbox)
        self._scanner.watch(self._sub._id, False)
        config = ConsumerConfig(
            deliver_subject=inbox, ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, idle_heartbeat=_HEARTBEAT,
            inactive_threshold=30.0, mem_storage=True, num_replicas=1)
        if len(self._filters) > 1:
            config.filter_subjects = self._filters
        else:
            config.filter_subject = self._filters[0]
        info = await self._jsm.add_consumer(self.stream, config=config)
        if not info.num_pending:
            self._scanner.caught_up = True
        self._subscribed_ns = time.time_ns()

    async def _watch(self) -> None:
        # A skipped message or a consumer gone quiet (no heartbeat: the server lost it, or
        # restarted) starts over from the last message per subject.
        while not self._closed:
            await asyncio.sleep(_HEARTBEAT / 2)
            nc = self._nc
            if nc is None or not nc.is_connected:
                continue
            quiet = time.time_ns() - max(self._scanner.last_activity_ns, self._subscribed_ns)
            if self._scanner.gap or quiet > 3 * _HEARTBEAT * 1e9:
                await self._resync("a skipped message" if self._scanner.gap else "a silent consumer")

    async def _resync(self, why: str) -> None:
        try:
            await self._subscribe()
            self.resyncs += 1
            log.info("NatsFeed: %s; reading the last message per subject again", why)
        except Exception as exc:
            log.warning("NatsFeed: resubscribing after %s failed: %s", why, exc)

    async def close(self) -> None:
        self._closed = True
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
        nc, self._nc, self._sub = self._nc, None, None
        if nc is not None:
            try:
                await nc.close()
            except Exception as exc:
                log.debug("NatsFeed: close: %r", exc)
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def __aenter__(self) -> "NatsFeed":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- per chunk read from the socket ------------------------------------------------------------
    def _applied(self, n: int) -> None:
        d = self.decoder
        if d.market_info_frames != self._market_info_seen:
            self._market_info_seen = d.market_info_frames
            self.events.emit(MARKET_STATUS, dict(d.market_status))
        if n == 0:
            return
        if self._update_fns or self._quote_fns:
            self._dispatch(n)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def _dispatch(self, n: int) -> None:
        records = self.store.latest(n)
        call = self.events.call
        for fn in self._update_fns:
            call(fn, records, where="on_update")
        if self._quote_fns:
            keys = self.store.instruments
            for row in records["row"].tolist():
                key = keys[row]
                fns = self._quote_fns.get(key)
                if fns:
                    quote = self.store.quote(key)
                    for quote_fn in fns:
                        call(quote_fn, quote, where="on_quote")

    async def _disconnected(self) -> None:
        if not self._closed:
            self.disconnects += 1
            self.store.mark_stale()  # until each instrument's next message

    async def _reconnected(self) -> None:
        if self._ready and not self._closed:
            await self._resync("a reconnect")

    async def _error(self, exc: Exception) -> None:
        log.debug("NatsFeed: NATS: %r", exc)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def market_status(self) -> dict[str, Any]:
        return dict(self.decoder.market_status)

    def on(self, event: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.events.on(event, fn)

    def off(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        self.events.off(event, fn)

    def on_update(self, fn: Callable[[npt.NDArray[Any]], Any]) -> Callable[[npt.NDArray[Any]], Any]:
        """Call ``fn(records)`` per applied message: its ring records, a view valid during the call."""
        if not callable(fn):
            raise TypeError("fn must be callable")
        self._update_fns = [*self._update_fns, fn]
        return fn

    def on_quote(self, key: str, fn: Callable[[Quote], Any]) -> Callable[[Quote], Any]:
        """Call ``fn(quote)`` with the new Quote each time `key` updates."""
        if not callable(fn):
            raise TypeError("fn must be callable")
        self._quote_fns = {**self._quote_fns, key: [*self._quote_fns.get(key, []), fn]}
        return fn

    def off_update(self, fn: Callable[..., Any]) -> None:
        self._update_fns = [f for f in self._update_fns if f is not fn]

    def off_quote(self, key: str, fn: Callable[..., Any] | None = None) -> None:
        fns = [f for f in self._quote_fns.get(key, []) if fn is not None and f is not fn]
        quote_fns = dict(self._quote_fns)
        if fns:
            quote_fns[key] = fns
        else:
            quote_fns.pop(key, None)
        self._quote_fns = quote_fns

    async def updates(self, limit: int | None = None, from_start: bool = False) -> AsyncIterator[UpdateBatch]:
        """Batches of ring records as they arrive, with this iterator's own cursor; a consumer a
        whole ring behind loses the oldest (``batch.missed``). Ends when the feed is closed."""
        async for batch in self._ring_batches(limit, from_start, self._more_data):
            yield batch

    async def _more_data(self) -> bool:
        """Wait for the next applied message; False once the feed is closed."""
        if self._closed:
            return False
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
        return True

    async def wait_for(self, key: str, timeout: float | None = None) -> Quote:
        """The quote of `key` once it has arrived (at once if it already has)."""
        async def arrived() -> Quote:
            while True:
                quote = self.store.quote(key)
                if quote is not None and quote.updates > 0:
                    return quote
                if not await self._more_data():
                    raise FastfeedError("the NatsFeed was closed")
        return await asyncio.wait_for(arrived(), timeout)

    # -- stats -------------------------------------------------------------------------------------
    def latency(self) -> dict[str, float]:
        """Hub receive to quote applied here (µs): percentiles of the most recent messages."""
        return _percentiles(self._scanner.latencies() / 1e3)

    def stats(self) -> dict[str, Any]:
        nc, sc = self._nc, self._scanner
        return {
            "connected": bool(nc is not None and nc.is_connected), "ready": self._ready,
            "stream": self.stream, "messages": sc.messages, "updates": self.decoder.updates,
            "decode_errors": sc.decode_errors, "instruments": len(self.store),
            "ring_overruns": self.ring_overruns, "disconnects": self.disconnects,
            "resyncs": self.resyncs, "heartbeats": sc.heartbeats, "live": sc.live_on,
            "live_messages": sc.live_messages, "stale": sc.stale, "held_over": sc.held_over,
            "last_stream_seq": sc.last_sseq, "hub_to_quote_us": self.latency(),
        }

    def __repr__(self) -> str:
        return (f"<NatsFeed {self.prefix}.> from {redacted(self.servers)} "
                f"instruments={len(self.store)} updates={self.decoder.updates}>")


class _ScanningParser:
    """Stands in for nats-py's protocol parser on the NatsFeed's connection: the scanner takes the
    consumer's messages, nats-py's parser gets every other protocol unit, in order."""

    def __init__(self, feed: NatsFeed, inner: Any) -> None:
        self._feed = feed
        self._scanner = feed._scanner
        self._inner = inner

    def reset(self) -> None:
        self._scanner.reset()
        self._inner.reset()

    async def parse(self, data: bytes = b"") -> None:
        units = self._scanner.scan(data)
        if units:
            for unit in units:
                await self._inner.parse(unit)
        self._feed._applied(self._scanner.take_applied())


__all__ = ["NatsFeed"]
