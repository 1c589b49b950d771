"""The market-data feed session: requests, subscriptions and their silent caps, snapshots and live
ticks at a set rate, or (benchmark mode) a pre-encoded frame pool pushed as fast as the socket
drains."""
from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping

from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.schema import CAPS, METHODS, MODES, PLUS_MODES

from . import frames
from .auth import MARKET, Grant
from .connection import Pacer, Session, now_ms
from .faults import Faults
from .prices import is_valid_key, stable_seed, universe
from .replay import keep_subscribed
from .redact import redacting_logger

if TYPE_CHECKING:
    from .server import Simulator

log = redacting_logger(__name__)  # no token may reach a log, even by mistake

_BLOB_BYTES = 256 * 1024  # benchmark mode: one transport write carries about this many bytes
_MAX_PENDING = 64
_YIELD_EVERY = 8          # benchmark mode: writes between two turns of the event loop
_PACE_TICK = 0.001        # paced benchmark mode: the shortest sleep between two writes, seconds


def ws_frame_header(size: int) -> bytes:
    """The header of one unmasked, final, binary WebSocket frame (server to client)."""
    if size < 126:
        return bytes((0x82, size))
    if size < 65536:
        return bytes((0x82, 126)) + size.to_bytes(2, "big")
    return bytes((0x82, 127)) + size.to_bytes(8, "big")


class FramePool:
    """Benchmark frames framed once: a blob of whole WebSocket frames cycling through the pool."""

    def __init__(self, payloads: list[bytes]) -> None:
        framed = [ws_frame_header(len(p)) + p for p in payloads]
        one_round = b"".join(framed)
        rounds = max(1, _BLOB_BYTES // max(1, len(one_round)))
        self.blob = one_round * rounds
        self.frames = len(framed) * rounds
        self.payload_bytes = sum(len(p) for p in payloads) * rounds
        # End offset of each frame in the blob, to cut a last write at a frame boundary.
        self._ends: list[int] = []
        self._payload_ends: list[int] = []
        end = pend = 0
        for _ in range(rounds):
            for f, p in zip(framed, payloads):
                end += len(f)
                pend += len(p)
                self._ends.append(end)
                self._payload_ends.append(pend)

    def head(self, frames: int) -> tuple[bytes, int]:
        """The first `frames` frames of the blob, and their payload bytes."""
        return self.blob[:self._ends[frames - 1]], self._payload_ends[frames - 1]

    def run(self, start: int, frames: int) -> tuple[bytes, int, int]:
        """Up to `frames` frames from frame `start` on, not past the blob's end: the bytes, their
        payload bytes and how many frames that is."""
        count = min(frames, self.frames - start)
        begin = self._ends[start - 1] if start else 0
        pbegin = self._payload_ends[start - 1] if start else 0
        end = start + count - 1
        return self.blob[begin:self._ends[end]], self._payload_ends[end] - pbegin, count


class MarketSession(Session):
    kind = MARKET

    def __init__(self, sim: "Simulator", grant: Grant, faults: Faults, serial: int) -> None:
        super().__init__(sim, grant, faults, serial)
        self.subscriptions: dict[str, str] = {}
        # Best bid and ask last sent per key: what the client holds (frames.fill_feed).
        self.touch: dict[str, tuple[float, float]] = {}
        self._mode_counts: Counter[str] = Counter()
        self._order: list[str] = []
        self._order_dirty = False
        self._cursor = 0
        # Snapshots owed, one per request, sent by the feed task as soon as it may send; past
        # _MAX_PENDING requests they merge into the last one, so memory stays bounded.
        self._pending: list[dict[str, str]] = []
        self._wake: asyncio.Event | None = None
        self._pool: FramePool | None = None
        self.rng = random.Random(stable_seed(sim.seed, "connection", serial))

    @property
    def caps(self) -> Mapping[str, tuple[int, int]]:
        return self.sim.caps

    # -- requests ---------------------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        request = self._parse(payload)
        if request is None:
            self.tally.bump("requests_malformed")
            return
        self.tally.bump("requests")
        method, keys, mode = request
        if method == "unsub":
            for key in keys:
                old = self.subscriptions.pop(key, None)
                self.touch.pop(key, None)
                if old is not None:
                    self._uncount(old)
                    for owed in self._pending:
                        owed.pop(key, None)
            self._order_dirty = True
            return
        accepted = self._subscribe(keys, mode, only_existing=method == "change_mode")
        if accepted:
            self.tally.bump("keys_subscribed", len(accepted))
            owed = {key: mode for key in accepted}
            if len(self._pending) < _MAX_PENDING:
                self._pending.append(owed)
            else:
                self._pending[-1].update(owed)
            self._pool = None
            if self._wake is not None:
                self._wake.set()

    def _parse(self, payload: bytes) -> tuple[str, list[str], str] | None:
        try:
            request = json.loads(payload)
            method = request["method"]
            data = request["data"]
            keys = data["instrumentKeys"]
            mode = data.get("mode", "")
        except (ValueError, TypeError, KeyError):
            log.info("%r: ignored a request that is not the documented JSON", self)
            return None
        if (method not in METHODS or not isinstance(keys, list)
                or (method != "unsub" and mode not in MODES)):
            log.info("%r: ignored a request with method=%.20r mode=%.20r", self, method, mode)
            return None
        return method, keys, mode

    def _subscribe(self, keys: list[Any], mode: str, *, only_existing: bool) -> list[str]:
        if mode in PLUS_MODES and not self.grant.plus:
            self.tally.bump("keys_dropped", len(keys))
            log.debug("%r: full_d30 without Upstox Plus, %d key(s) ignored", self, len(keys))
            return []
        accepted: list[str] = []
        dropped = 0
        for key in keys:
            if not is_valid_key(key):
                dropped += 1
                continue
            current = self.subscriptions.get(key)
            if current == mode:
                accepted.append(key)
                continue
            if current is None and only_existing:
                dropped += 1
                continue
            modes_after = {m for m, c in self._mode_counts.items() if c and not (m == current and c == 1)}
            modes_after.add(mode)
            single, mixed = self.caps[mode]
            if self._mode_counts[mode] >= (mixed if len(modes_after) > 1 else single):
                dropped += 1
                continue
            if current is not None:
                self._uncount(current)
            else:
                self._order_dirty = True
            self.subscriptions[key] = mode
            self._mode_counts[mode] += 1
            accepted.append(key)
        if dropped:
            self.tally.bump("keys_dropped", dropped)
            log.debug("%r: %d key(s) beyond the caps or malformed, ignored", self, dropped)
        return accepted

    def _uncount(self, mode: str) -> None:
        self._mode_counts[mode] -= 1
        if self._mode_counts[mode] <= 0:
            del self._mode_counts[mode]

    # -- frames -----------------------------------------------------------------------------
    def _items(self, keys_modes: Mapping[str, str] | list[tuple[str, str]], ms: int, step: bool) -> list[Any]:
        market = self.sim.market
        pairs = keys_modes.items() if isinstance(keys_modes, Mapping) else keys_modes
        items = []
        for key, mode in pairs:
            inst = market.get(key, ms)
            if step:
                inst.step(ms)
            items.append((inst, mode))
        return items

    def snapshot_frame(self, keys_modes: Mapping[str, str]) -> bytes:
        ms = now_ms()
        return frames.feed_frame(pb.initial_feed, self._items(keys_modes, ms, False), ms,
                                 phase=self.sim.phase, rng=self.rng, touch=self.touch)

    def _next_keys(self, count: int) -> list[tuple[str, str]]:
        if self._order_dirty:
            self._order = list(self.subscriptions)
            self._order_dirty = False
            self._cursor = 0
        order = self._order
        out = []
        for _ in range(min(count, len(order))):
            if self._cursor >= len(order):
                self._cursor = 0
            key = order[self._cursor]
            self._cursor += 1
            mode = self.subscriptions.get(key)
            if mode is not None:
                out.append((key, mode))
        return out

    def live_frame(self, count: int | None = None) -> bytes | None:
        per_frame = max(1, self.sim.instruments_per_frame)
        if count is None:
            count = self.rng.randint(1, min(per_frame, max(1, len(self.subscriptions))))
        pairs = self._next_keys(count)
        if not pairs:
            return None
        ms = now_ms()
        return frames.feed_frame(pb.live_feed, self._items(pairs, ms, True), ms,
                                 phase=self.sim.phase, rng=self.rng, touch=self.touch)

    def malformed_frame(self, valid: bytes, n: int) -> bytes:
        return frames.malformed(valid, n)

    def oversized_frame(self) -> bytes:
        count = self.faults.oversized_instruments
        keys = list(self.subscriptions)[:count]
        if len(keys) < count:
            have = set(keys)
            keys += [k for k in universe(count + len(keys), self.sim.seed) if k not in have][:count - len(keys)]
        ms = now_ms()
        return frames.feed_frame(pb.live_feed, self._items([(k, "full") for k in keys], ms, True),
                                 ms, phase=self.sim.phase, rng=self.rng, touch=self.touch)

    def _flush_pending(self) -> None:
        if self._pending:
            owed = self._pending.pop(0)
            if owed:
                self.send_data(self.snapshot_frame(owed))

    # -- the feed ---------------------------------------------------------------------------
    async def drive(self) -> None:
        self._wake = asyncio.Event()
        await self.wait_writable()
        if self.sim.replay is not None:
            await self._play_capture()
            return
        self.send_data(frames.market_info(now_ms(), self.sim.phase))
        loop = asyncio.get_running_loop()
        pacer = Pacer(loop.time())
        while not self.closing:
            if not self.can_send():
                await self.wait_writable()
                continue
            if self._pending:
                self._flush_pending()
                continue
            rate = self.sim.rate
            if not self.subscriptions or not rate:
                self._wake.clear()
                await self._wake.wait()
                pacer.reset(loop.time())
                continue
            if self.sim.bench:
                await self._push_pool()
                continue
            now = loop.time()
            wait = pacer.wait(now)
            if wait > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            for _ in range(pacer.take(now, rate)):
                if not self.can_send() or self._pending:
                    break
                frame = self.live_frame()
                if frame is None:
                    break
                self.send_data(frame)
            await asyncio.sleep(0)

    def _build_pool(self) -> FramePool:
        per_frame = max(1, min(self.sim.instruments_per_frame, len(self.subscriptions)))
        size = max(1, self.sim.bench_pool_size)
        payloads = []
        for _ in range(size):
            frame = self.live_frame(per_frame)
            if frame is not None:
                payloads.append(frame)
        return FramePool(payloads)

    def _frames_left(self) -> int | None:
        """Frames until a switch or the benchmark frame count ends the push, if any does."""
        limits = [x - self.data_frames for x in (self.sim.bench_frames, self.faults.abort_after_frames,
                                                 self.faults.close_after_frames) if x is not None]
        return max(0, min(limits)) if limits else None

    async def _push_pool(self) -> None:
        """Benchmark mode: write blobs of pre-framed frames straight to the socket while it takes
        them; picows's pause_writing/resume_writing bound what waits in memory."""
        if self._pool is None:
            self._pool = self._build_pool()
        pool = self._pool
        transport = self.transport
        assert transport is not None
        underlying = transport.underlying_transport
        # A deeper buffer than asyncio's 64 KiB default keeps the socket fed between turns of
        # the loop; it is still a fixed bound.
        underlying.set_write_buffer_limits(high=4 * _BLOB_BYTES, low=_BLOB_BYTES)
        write = underlying.write
        writes = 0
        rate = self.sim.bench_rate
        loop = asyncio.get_running_loop()
        pacer = Pacer(loop.time()) if rate else None
        cursor = 0   # paced: the next frame of the blob
        while self._pool is pool and not self._pending:
            if not self.can_send():
                await self.wait_writable()
                if self.closing:
                    return
                continue
            left = self._frames_left()
            if left == 0:
                if self.sim.bench_frames is not None and self.data_frames >= self.sim.bench_frames:
                    self.close(1000, reason="benchmark frame count reached")
                else:
                    self.after_frames()
                return
            if pacer is not None:
                now = loop.time()
                wait = pacer.wait(now)
                if wait > 0:
                    await asyncio.sleep(max(wait, _PACE_TICK))
                    continue
                due = pacer.take(now, rate, batch=pool.frames)
                blob, nbytes, count = pool.run(cursor, due if left is None else min(due, left))
                cursor = (cursor + count) % pool.frames
            elif left is not None and left < pool.frames:
                blob, nbytes = pool.head(left)
                count = left
            else:
                blob, nbytes, count = pool.blob, pool.payload_bytes, pool.frames
            write(blob)
            self.data_frames += count
            self.tally.sent(count, nbytes)
            self.after_frames()
            writes += 1
            if writes % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    # -- serving a capture ------------------------------------------------------------------
    async def _play_capture(self) -> None:
        """The recorded frames from the first, once something is subscribed, keeping the entries
        of the keys this connection subscribed; then the connection stays open, quiet."""
        source = self.sim.replay
        assert source is not None and self._wake is not None
        while not self.subscriptions and not self.closing:
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        origin: tuple[int, float] | None = None
        sent = 0
        for recv_ns, payload in source.frames():
            self._pending.clear()  # no generated snapshots: the capture has its own
            if source.speed:
                if origin is None:
                    origin = (recv_ns, loop.time())
                delay = origin[1] + (recv_ns - origin[0]) / 1e9 / source.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            frame = keep_subscribed(payload, self.subscriptions)
            if frame is None:
                continue
            while not self.can_send():
                if self.closing:
                    return
                await self.wait_writable()
            self.send_data(frame)
            sent += 1
            if sent % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # requests and pings get their turn
        self.tally.bump("replays_finished")
        while not self.closing:
            self._wake.clear()
            await self._wake.wait()
