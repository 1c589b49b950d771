"""Busy polling: the feed's event loop keeps polling its sockets instead of sleeping in epoll
while it waits for data.

A sleeping loop hears of a frame only once the kernel has woken its thread up, which costs tens
of microseconds and most of the tail. A callback that re-schedules itself with ``call_soon``
keeps the loop's ready queue non-empty, so uvloop (and asyncio) poll with a timeout of 0 and
handle a frame as soon as it arrives. The price is one core at 100 % for as long as it spins.

``BusyPoll(spin_seconds)`` spins for `spin_seconds` after the last message, then lets the loop
sleep until the next one, which starts the spinning again (through the listener's one-shot
``resume`` hook); ``spin_seconds=None`` spins for as long as the feed runs.

While it spins on a market feed it also keeps the decoder warm, as HFT engines keep their order
path warm: each turn decodes a recent frame again into a small decoder of its own, so the code,
its tables and the branch predictor's history are in place when the next frame lands. Without
that a frame after a millisecond of polling decodes from caches the poll's system calls have
cooled: measured with ``fastfeed bench --latency`` on a 2-vCPU VM, listener entry to callback
start went from about 2.5 to 1.5 µs at p50 at 1,000 frames/s. The feed's own decoder, store and
callbacks never see these decodes. The sample is renewed every ``SAMPLE_SPINS`` turns, so it
follows the subscription's mode and shape. Each turn also prefetches what the feed's own next
frame will write (``listener.touch()``: the last frame's rows, the ring's next slots, the
callbacks' scratch), which changes nothing: in three interleaved pairs of runs at 1,000
frames/s it took the own share from 1.7 / 5.2-5.9 to 0.9-1.3 / 2.8-4.3 µs (p50 / p99).
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Any

SAMPLE_SPINS = 1 << 16   # turns between two samples of the feed's frames (a fraction of a second)


class BusyPoll:
    """The spinner of one feed's loop. Counters: ``spins`` (turns of the loop spent polling),
    ``sleeps`` (times it stopped for lack of data), ``wakeups`` (times a message started it
    again) and ``warmups`` (sample frames decoded to keep the decoder warm); ``spinning`` says
    whether it polls now."""

    def __init__(self, spin_seconds: float | None = None) -> None:
        self.spin_seconds = spin_seconds
        self._spin_ns = None if spin_seconds is None else int(spin_seconds * 1e9)
        self.spinning = False
        self.spins = 0
        self.sleeps = 0
        self.wakeups = 0
        self.warmups = 0
        self._warm: Any = None          # the decoder the sample frames go to (market feeds)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._source: Any = None       # the listener: .frames counts messages, .resume is a hook
        self._frames_seen = -1
        self._active_ns = 0
        self._generation = 0  # a spinner left queued by an earlier start() ends itself

    @classmethod
    def from_option(cls, busy_poll: bool | float | None) -> "BusyPoll | None":
        """The feeds' ``busy_poll=`` argument: False or None (off), True (spin all the time) or
        a positive number of seconds to spin after the last message."""
        if busy_poll is None or busy_poll is False:
            return None
        if busy_poll is True:
            return cls(None)
        if not isinstance(busy_poll, (int, float)):
            raise TypeError(f"busy_poll must be a bool or a number of seconds, not {type(busy_poll).__name__}")
        if not busy_poll > 0:  # also NaN
            raise ValueError(f"busy_poll must be True, False or a positive number of seconds, not {busy_poll}")
        return cls(None if math.isinf(busy_poll) else float(busy_poll))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start spinning on `loop` (the running loop, called on it)."""
        self._loop = loop
        self._generation += 1
        self._active_ns = time.monotonic_ns()
        self.spinning = True
        loop.call_soon(self._spin, self._generation)

    def stop(self) -> None:
        """Stop for good (the feed ended); the loop sleeps normally again."""
        self._loop = None
        self.spinning = False
        self._disarm()

    def attach(self, source: Any) -> None:
        """A new connection's listener: its messages count as activity."""
        self._disarm()
        self._source = source
        self._frames_seen = -1
        decoder = getattr(source, "decoder", None)
        self._warm = None
        if decoder is not None:
            from fastfeed._decode import FeedDecoder

            # Small: the code and its tables are what is kept warm, not the feed's own rows.
            self._warm = FeedDecoder(min(decoder.store.max_instruments, 1024), ring_capacity=1024)
            source.keep_sample = True
        if self._loop is not None and not self.spinning:
            source.resume = self._resume

    def _disarm(self) -> None:
        if self._source is not None and self._source.resume == self._resume:
            self._source.resume = None

    def _spin(self, generation: int) -> None:
        loop = self._loop
        if loop is None or generation != self._generation:
            return
        self.spins += 1
        source = self._source
        if self._warm is not None:
            sample = source.sample
            if sample is not None:
                try:
                    self._warm.decode(sample)
                    self.warmups += 1
                except Exception:  # a frame the feed took but a fresh decoder refuses: skip it
                    source.sample = None
            source.touch()
            if not self.spins % SAMPLE_SPINS:
                source.keep_sample = True
        if self._spin_ns is not None:
            now = time.monotonic_ns()
            frames = source.frames if source is not None else -1
            if frames != self._frames_seen:
                self._frames_seen = frames
                self._active_ns = now
            elif now - self._active_ns >= self._spin_ns:
                self.spinning = False
                self.sleeps += 1
                if source is not None:
                    source.resume = self._resume
                return
        loop.call_soon(self._spin, generation)

    def _resume(self) -> None:
        # Called by the listener at the first message after the spinner went to sleep.
        loop = self._loop
        if loop is None or self.spinning:
            return
        self.wakeups += 1
        self.spinning = True
        self._active_ns = time.monotonic_ns()
        loop.call_soon(self._spin, self._generation)

    def stats(self) -> dict[str, Any]:
        return {"spin_seconds": self.spin_seconds, "spinning": self.spinning, "spins": self.spins,
                "sleeps": self.sleeps, "wakeups": self.wakeups, "warmups": self.warmups}
