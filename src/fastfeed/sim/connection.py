"""What every simulated feed connection shares: the send path with its fault switches, pings and
pongs, backpressure, counters, and the timers that end a connection on purpose."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from .auth import Grant
from .counters import Counters, Tally
from .faults import Faults
from .redact import redacting_logger

if TYPE_CHECKING:
    from .server import Simulator

log = redacting_logger(__name__)  # no token may reach a log, even by mistake

# How often the watchdog looks at the time-based fault switches.
_WATCH_PERIOD = 0.02


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Pacer:
    """How many frames are due at `rate` per second: at most `batch` per call, however far behind
    the clock is (the loop must get to run), and after a pause or stall of over a second it does
    not burst to catch up."""

    __slots__ = ("next_t",)

    def __init__(self, now: float) -> None:
        self.next_t = now

    def reset(self, now: float) -> None:
        self.next_t = now

    def wait(self, now: float) -> float:
        """Seconds until the next frame is due (0 or less: due now)."""
        return self.next_t - now

    def take(self, now: float, rate: float, batch: int = 256) -> int:
        interval = 1.0 / rate
        due = min(batch, int((now - self.next_t) / interval) + 1)
        self.next_t += due * interval
        if self.next_t < now - 1.0:
            self.next_t = now
        return due


class Session(WSListener):  # type: ignore[misc]
    """One accepted WebSocket connection. Subclasses add what the feed sends and understands."""

    kind = "?"

    def __init__(self, sim: "Simulator", grant: Grant, faults: Faults, serial: int) -> None:
        super().__init__()
        self.sim = sim
        self.grant = grant
        self.faults = faults
        self.serial = serial
        self.counters = Counters()
        self.tally = Tally(self.counters, sim.counters)
        self.transport: WSTransport | None = None
        # The transport under picows (aiofastnet's, or asyncio's): its is_closing() turns True
        # the moment the connection is closed, aborted or lost, before on_ws_disconnected runs.
        self._raw: Any = None
        self.closed = False
        self.paused = False
        self.data_frames = 0
        self.opened_at = 0.0
        self.stall_until = 0.0
        self._stall_done = False
        self._resume: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self.serial} {self.grant.fingerprint}>"

    # -- picows callbacks -------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._raw = transport.underlying_transport
        self.opened_at = time.monotonic()
        self._resume = asyncio.Event()
        self._resume.set()
        self.tally.bump("connections_opened")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._guard(self.drive())),
                       loop.create_task(self._guard(self._watchdog()))]
        log.debug("%r opened", self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self.tally.bump("connections_closed")
        for task in self._tasks:
            task.cancel()
        if self._resume is not None:
            self._resume.set()  # nothing may wait for a resume_writing that will never come
        self.sim._session_closed(self)
        log.debug("%r closed", self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.PING:
            self.tally.bump("pings_received")
            if self.faults.ignore_pings:
                self.tally.fault("ignore_pings")
            elif not self.closing:
                transport.send_pong(frame.get_payload_as_bytes())
                self.tally.bump("pongs_sent")
            return
        if msg_type == WSMsgType.PONG:
            # An unsolicited PONG, or one the ignore_pongs switch refused to count.
            return
        if msg_type == WSMsgType.CLOSE:
            if not self.closing:
                transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        self.tally.received(frame.payload_size)
        if msg_type in (WSMsgType.BINARY, WSMsgType.TEXT) and frame.fin:
            self.on_message(frame.get_payload_as_bytes())
        else:
            # Requests are small: a fragmented one is not worth reassembling.
            self.tally.bump("requests_malformed")
            log.info("%r: ignored a fragmented request", self)

    def is_user_specific_pong(self, frame: WSFrame) -> bool:
        if frame.msg_type != WSMsgType.PONG:
            return False
        if self.faults.ignore_pongs:
            self.tally.fault("ignore_pongs")
            return False
        self.tally.bump("pongs_received")
        return True

    def pause_writing(self) -> None:
        self.paused = True
        if self._resume is not None:
            self._resume.clear()

    def resume_writing(self) -> None:
        self.paused = False
        if self._resume is not None:
            self._resume.set()

    # -- for subclasses ---------------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        """A complete request frame from the client."""

    async def drive(self) -> None:
        """Send the feed until the connection ends."""

    def malformed_frame(self, valid: bytes, n: int) -> bytes:
        raise NotImplementedError

    def oversized_frame(self) -> bytes:
        raise NotImplementedError

    text_frames = False

    # -- sending ----------------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        """True once the connection is gone, going (closed, aborted or lost, even before picows
        calls on_ws_disconnected) or a close frame has been sent: nothing may be written then."""
        transport = self.transport
        return (self.closed or transport is None or transport.is_close_frame_sent
                or self._raw.is_closing())

    def can_send(self) -> bool:
        """False while the socket is backed up, stalled, or closing: data must wait."""
        return not (self.paused or self.closing or self.stall_until > time.monotonic())

    async def wait_writable(self) -> None:
        """Return once data may be sent again (or the connection is closing).

        A stall is slept out in short slices, so one shortened or ended while it lasts (by
        setting `stall_until`) takes effect at once.
        """
        while not self.closing:
            if self.paused and self._resume is not None:
                await self._resume.wait()
                continue
            delay = self.stall_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(min(delay, _WATCH_PERIOD))
                continue
            return

    def send_data(self, payload: bytes) -> None:
        """Send one data frame, with the frame-count fault switches applied around it."""
        faults = self.faults
        n = self.data_frames + 1
        if faults.malformed_every and n % faults.malformed_every == 0:
            self.tally.fault("malformed_every")
            self._write(self.malformed_frame(payload, n // faults.malformed_every))
        if faults.oversized_every and n % faults.oversized_every == 0:
            self.tally.fault("oversized_every")
            self._write(self.oversized_frame())
        self._write(payload)
        self.data_frames = n
        self.after_frames()

    def _write(self, payload: bytes) -> None:
        if self.closing:
            return
        transport = self.transport
        assert transport is not None
        msg_type = WSMsgType.TEXT if self.text_frames else WSMsgType.BINARY
        size = self.faults.fragment_size
        if size and len(payload) > size:
            self.tally.fault("fragment_size")
            transport.send(msg_type, payload[:size], fin=False)
            for offset in range(size, len(payload), size):
                transport.send(WSMsgType.CONTINUATION, payload[offset:offset + size],
                               fin=offset + size >= len(payload))
        else:
            transport.send(msg_type, payload)
        self.tally.sent(1, len(payload))

    def after_frames(self) -> None:
        """Fire the switches that count frames; called after each frame (or batch) goes out."""
        faults = self.faults
        n = self.data_frames
        if faults.abort_after_frames is not None and n >= faults.abort_after_frames:
            self.abort("abort_after_frames")
        elif faults.close_after_frames is not None and n >= faults.close_after_frames:
            self.close(faults.close_code, "close_after_frames")
        elif faults.stall_seconds and not self._stall_done and n >= faults.stall_after_frames:
            self._stall_done = True
            self.stall_until = time.monotonic() + faults.stall_seconds
            self.tally.fault("stall_seconds")

    def close(self, code: int = 1000, fault: str | None = None, reason: str = "") -> None:
        """Close frame with `code`, then disconnect once the socket has drained."""
        if self.closing:
            return
        if fault:
            self.tally.fault(fault)
        self.transport.send_close(WSCloseCode(code), (reason or fault or "").encode())
        self.transport.disconnect()

    def abort(self, fault: str | None = None) -> None:
        """Drop the TCP connection at once, without a close frame."""
        if self.closed or self.transport is None:
            return
        if fault:
            self.tally.fault(fault)
        self.closed = True
        self.transport.disconnect(graceful=False)

    # -- internals --------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_PERIOD)
            if self.closing:
                return  # a closed or lost connection has nothing left to watch
            faults = self.faults
            age = time.monotonic() - self.opened_at
            if faults.abort_after_seconds is not None and age >= faults.abort_after_seconds:
                self.abort("abort_after_seconds")
            elif faults.close_after_seconds is not None and age >= faults.close_after_seconds:
                self.close(faults.close_code, "close_after_seconds")
            elif faults.stall_seconds and not self._stall_done and faults.stall_after_frames <= 0:
                self.after_frames()

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%r: feed task failed; closing with 1011", self)
            self.close(1011, reason="internal error")
