"""Bridge: a hub's MarketFeed published to NATS, one subject per instrument, its state kept by JetStream.

    async with MarketFeed(token, instruments=keys, mode="full") as feed:
        async with Bridge(feed, "nats://127.0.0.1:4222"):
            await feed.wait_closed()

Per frame, on the feed's loop, the Cython outbox copies each applied map entry, as Upstox sent
it, into the slot of its subject and queues the slot; nothing waits on NATS there. A pump task
turns the queue into ready-made ``HPUB`` commands (a one-entry FeedResponse: type, currentTs,
the entry's bytes; the hub's receive time in a header) and hands them to nats-py's writer
whenever the loop is free and the connection has room.

Two paths, because JetStream cannot store a full feed's rate (it stores each message, a few tens
of thousands per second on a small machine, where core NATS forwards close to a million):

- live: every update goes out at once on ``<prefix>.live.<token>.<parts>``, core NATS, stored
  by no one. While NATS keeps up every update goes out (one replaced before it was sent goes out
  from the outbox's spill); when it is slow or away and the spill is full, an update still
  waiting is replaced by the next one of its subject and counted as dropped, so memory stays
  bounded and the newest state is what goes out.
- state: every ``state_interval`` seconds the newest update of each subject that changed goes to
  ``<prefix>.<token>.<parts>``, which the stream keeps (last message per subject, under
  ``max_age`` and ``max_bytes``): the stream is the conflated state, a late joiner reads it and
  then follows the live subjects (see feed.py). Updates replaced before they were stored are
  counted in ``conflated``. A stored message costs the server several times what a live one does
  (it is stored, and delivered to every reader's consumer): past ``max_state_rate`` messages per
  second the passes are spaced out, so that at a full subscription (thousands of subjects
  changing) the state path does not take the CPU the live path needs.

After every reconnect the latest update of every subject is stored again, so the stream holds the
hub's state even when the server lost what was in flight or restarted empty.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

from fastfeed.nats._outbox import Outbox
from fastfeed.nats.subjects import check_prefix, stream_name, stream_subjects

log = logging.getLogger(__name__)

_BACKOFF = (0.1, 2.0)     # first and longest wait between connection attempts, seconds
_BACKED_UP_POLL = 0.002   # how often a backed-up pump looks again, seconds
# Live updates waiting that are handed to nats-py's send buffer from the frame callback itself:
# a loop turn that reads a backlog (libuv reads up to 32 times per wake-up) applies tens of
# thousands of updates before the pump runs, and they would all be conflated meanwhile.
_HAND_OFF = 1024


def server_list(servers: str | Iterable[str]) -> list[str]:
    out = [servers] if isinstance(servers, str) else list(servers)
    if not out or not all(isinstance(s, str) and s for s in out):
        raise ValueError("servers: a NATS URL or a list of them")
    return out


def redacted(servers: list[str]) -> str:
    """The servers for logs and reprs: credentials in a URL never show."""
    out = []
    for url in servers:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        out.append(f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    return ", ".join(out)


class Bridge:
    """Publishes every instrument update and the market status of `feed` to NATS.

    ``buffer_bytes`` bounds one write handed to NATS, ``max_pending_bytes`` what is handed to the
    NATS connection but not yet written; the outbox holds one slot per subject (at most
    ``16 * max_instruments``), however slow NATS is. ``max_msgs_per_subject``, ``max_age`` (seconds) and
    ``max_bytes`` bound the JetStream stream; ``storage`` is ``"file"`` or ``"memory"``.
    ``state_interval`` (seconds) is how often the newest update of each changed subject is stored
    in the stream: at most that often per subject, however fast the feed; when a pass stores
    more than ``max_state_rate * state_interval`` messages the next waits longer, so that the
    stream takes at most ``max_state_rate`` messages per second.
    Run it on the feed's event loop: ``async with Bridge(...)`` or ``await start()`` /
    ``await close()`` (or ``with Bridge(...)`` for a feed running in its own thread). It
    connects, and reconnects, in the background. Start it before the feed connects: updates the
    feed applied before are not published, each instrument goes out with its next update.
    """

    def __init__(self, feed: Any, servers: str | Iterable[str], prefix: str = "upstox", *,
                 stream: str | None = None, max_msgs_per_subject: int = 1,
                 max_age: float = 24 * 3600.0, max_bytes: int = 1 << 30, storage: str = "file",
                 buffer_bytes: int = 1 << 20, max_pending_bytes: int = 8 << 20,
                 state_interval: float = 0.1, max_state_rate: float = 5000.0,
                 ping_interval: float = 2.0, connect_timeout: float = 2.0) -> None:
        if storage not in ("file", "memory"):
            raise ValueError("storage must be 'file' or 'memory'")
        if max_msgs_per_subject < 1 or max_age <= 0 or max_bytes <= 0:
            raise ValueError("max_msgs_per_subject, max_age and max_bytes must be positive")
        if max_pending_bytes <= 0:
            raise ValueError("max_pending_bytes must be positive")
        if not 0 < state_interval <= 60:
            raise ValueError("state_interval must be in (0, 60] seconds")
        if not max_state_rate > 0:
            raise ValueError("max_state_rate must be positive (messages per second)")
        self.feed = feed
        self.servers = server_list(servers)
        self.prefix = check_prefix(prefix)
        self.stream = stream or stream_name(prefix)
        self.max_msgs_per_subject = max_msgs_per_subject
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.storage = storage
        self.max_pending_bytes = max_pending_bytes
        self.state_interval = state_interval
        self.max_state_rate = max_state_rate
        self._state_due = False     # the state list is to be written out
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.outbox = Outbox(self.prefix, buffer_bytes, feed.store.max_instruments)
        self.connects = 0
        self.resent = 0             # updates sent again after reconnects
        self.disconnects = 0
        self._nc: Any = None
        self._ready = False         # connected and the stream is in place
        self._kick: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._warned = False

    # -- on the feed's loop, per frame -------------------------------------------------------------
    def _on_update(self, records: Any) -> None:
        ob = self.outbox
        if ob.capture(self.feed.decoder, len(records)) and self._kick is not None:
            if ob.pending >= _HAND_OFF:
                self._hand_off()
            self._kick.set()

    def _hand_off(self) -> None:
        # Memory only, no I/O: the bytes join nats-py's pending list, its flusher writes them
        # when the loop turns (the pump asks it to), under the same max_pending_bytes bound.
        nc = self._nc
        if not self._ready or nc is None or not nc.is_connected:
            return
        if nc.pending_data_size >= self.max_pending_bytes:
            return
        data = self.outbox.take()
        if data is not None:
            nc._pending.append(data)
            nc._pending_data_size += len(data)

    def _on_market_status(self, status: Any) -> None:
        if self.outbox.capture_status(self.feed.decoder) and self._kick is not None:
            self._kick.set()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> "Bridge":
        if self._tasks:
            return self
        self._kick = asyncio.Event()
        self._closing = False
        self.feed.on_update(self._on_update)
        self.feed.on("market_status", self._on_market_status)
        if self.feed.decoder.market_status:
            self._queue_known_status()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._connect(), name="fastfeed-bridge-connect"),
                       loop.create_task(self._pump(), name="fastfeed-bridge-pump"),
                       loop.create_task(self._tick(), name="fastfeed-bridge-state")]
        return self

    def _queue_known_status(self) -> None:
        # Started on a feed that already had its market_info frame, whose bytes are gone: the one
        # message built here rather than forwarded, so that readers still get the status.
        from fastfeed.proto import fastfeed_market_v3_pb2 as pb

        d = self.feed.decoder
        info = pb.MarketInfo()
        for segment, status in d.market_status.items():
            info.segmentStatus[segment] = (pb.MarketStatus.Value(status) if isinstance(status, str)
                                           else status)
        for target, source in ((info.casMarketStatus, d.cas_market_status),
                               (info.preOpenSessionStatus, d.pre_open_status)):
            for segment, (status, updated) in source.items():
                target[segment].status = status
                target[segment].updatedTime = updated
        self.outbox.queue_status(info.SerializeToString(), time.time_ns() // 1_000_000)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop publishing: what is queued is flushed for up to `timeout` seconds."""
        if not self._tasks:
            return
        self.feed.off_update(self._on_update)
        self.feed.off("market_status", self._on_market_status)
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except (asyncio.TimeoutError, ConnectionError):
            log.warning("bridge: closed with %d bytes unpublished", self.outbox.pending)
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        nc, self._nc, self._ready = self._nc, None, False
        if nc is not None:
            try:
                await nc.close()
            except Exception as exc:  # already gone: nothing to close
                log.debug("bridge: close: %r", exc)

    # Synchronous code whose feed runs in its own thread (``with MarketFeed(...) as feed:``):
    # ``with Bridge(feed, url):`` runs the bridge on the feed's loop.
    def __enter__(self) -> "Bridge":
        self._on_feed_loop(self.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._on_feed_loop(self.close())

    def _on_feed_loop(self, coro: Any, timeout: float = 30.0) -> Any:
        loop = getattr(self.feed, "_loop", None)
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("with Bridge(feed, ...) needs the feed running in the background "
                               "(feed.start() or `with feed:`); in async code use `async with`")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def __aenter__(self) -> "Bridge":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def flush(self) -> None:
        """Wait until everything queued so far, live and state, is written to NATS and the server
        has it."""
        while self.outbox.pending or self.outbox.state_pending or not self._ready:
            self._state_due = True
            if self._kick is not None:
                self._kick.set()
            await asyncio.sleep(0.005)
        await self._nc.flush()

    @property
    def published(self) -> int:
        """Live messages handed to the NATS connection."""
        return int(self.outbox.sent)

    @property
    def stored(self) -> int:
        """State messages handed to the NATS connection, for the stream."""
        return int(self.outbox.state_sent)

    @property
    def connected(self) -> bool:
        return self._ready

    async def wait_connected(self, timeout: float | None = None) -> None:
        async def ready() -> None:
            while not self._ready:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(ready(), timeout)

    # -- connection --------------------------------------------------------------------------------
    async def _connect(self) -> None:
        import nats

        delay = _BACKOFF[0]
        while not self._closing:
            try:
                self._nc = await nats.connect(
                    self.servers, name="fastfeed-bridge", allow_reconnect=True,
                    max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                    connect_timeout=self.connect_timeout, ping_interval=self.ping_interval,
                    max_outstanding_pings=2,
                    # Our own gate (max_pending_bytes) acts first: nats-py never force-flushes.
                    pending_size=4 * self.max_pending_bytes + self.outbox.capacity,
                    disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                    error_cb=self._error)
                await self._ensure_stream()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bridge: NATS %s unreachable (%s); retrying", redacted(self.servers),
                            type(exc).__name__)
                if self._nc is not None:
                    await self._nc.close()
                    self._nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF[1])

    async def _ensure_stream(self) -> None:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import BadRequestError

        config = StreamConfig(
            name=self.stream, subjects=stream_subjects(self.prefix), allow_direct=True,
            description=f"fastfeed bridge state; live updates on {self.prefix}.live.>",
            max_msgs_per_subject=self.max_msgs_per_subject, max_age=self.max_age,
            max_bytes=self.max_bytes,
            storage=StorageType.FILE if self.storage == "file" else StorageType.MEMORY)
        js = self._nc.jetstream()
        try:
            await js.add_stream(config)
        except BadRequestError:  # it exists with other limits: take ours
            await js.update_stream(config)
        self._warned = False
        if self.connects:
            self.resent += self.outbox.resend_all()
            self._state_due = True
        self.connects += 1
        self._ready = True
        log.info("bridge: publishing to %s, stream %s", redacted(self.servers), self.stream)
        if self._kick is not None:
            self._kick.set()

    async def _disconnected(self) -> None:
        if self._ready:
            self.disconnects += 1
            log.warning("bridge: NATS connection lost; the newest update per subject waits for it")
        self._ready = False

    async def _reconnected(self) -> None:
        try:
            await self._ensure_stream()  # a server restarted empty has no stream
        except Exception as exc:
            log.warning("bridge: stream %s not set up after reconnect: %s", self.stream, exc)

    async def _error(self, exc: Exception) -> None:
        if not self._ready and not self._warned:
            self._warned = True  # once per outage: nats-py calls this on every attempt
            log.warning("bridge: NATS %s unreachable (%s); retrying", redacted(self.servers),
                        type(exc).__name__)
        log.debug("bridge: NATS: %r", exc)

    # -- publishing --------------------------------------------------------------------------------
    async def _tick(self) -> None:
        assert self._kick is not None
        wait = self.state_interval
        while True:
            await asyncio.sleep(wait)
            due = self.outbox.state_pending
            if due:
                self._state_due = True
                self._kick.set()
            wait = max(self.state_interval, due / self.max_state_rate)

    async def _pump(self) -> None:
        assert self._kick is not None
        ob = self.outbox
        while True:
            await self._kick.wait()
            self._kick.clear()
            while ob.pending or (self._state_due and ob.state_pending):
                nc = self._nc
                if not self._ready or nc is None or not nc.is_connected:
                    break  # the reconnect kicks again
                if nc.pending_data_size >= self.max_pending_bytes:
                    await asyncio.sleep(_BACKED_UP_POLL)
                    continue
                # The state gets its turn first when due: a saturated live path cannot starve it.
                data = ob.take_state() if self._state_due else None
                if data is None:
                    self._state_due = False
                    data = ob.take()
                if data is None:
                    break
                # One write of many ready-made HPUB commands; nats-py's flusher sends it. (Its
                # publish() is per message, in Python: far too slow for a full feed.)
                await nc._send_command(data)
                await nc._flush_pending()
            nc = self._nc
            if nc is not None and nc.is_connected and nc.pending_data_size:
                await nc._flush_pending()   # what _hand_off queued

    # -- stats -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        ob = self.outbox
        nc = self._nc
        return {
            "connected": self._ready, "stream": self.stream, "prefix": self.prefix,
            "updates": ob.updates, "published": ob.sent, "dropped": ob.dropped,
            "stored": ob.state_sent, "conflated": ob.conflated, "state_waiting": ob.state_pending,
            "refused": ob.refused, "waiting": ob.pending, "subjects": ob.slot_count,
            "unmatched_frames": ob.unmatched,
            "pending_bytes": nc.pending_data_size if nc is not None else 0,
            "bytes_published": ob.taken_bytes, "connects": self.connects,
            "disconnects": self.disconnects, "resent": self.resent,
        }

    def __repr__(self) -> str:
        state = "connected" if self._ready else "disconnected"
        return (f"<Bridge {self.prefix}.> -> {redacted(self.servers)} {state} "
                f"published={self.published} dropped={self.outbox.dropped}>")
