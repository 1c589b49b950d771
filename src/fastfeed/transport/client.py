"""FeedClient: one feed connection kept alive: connect (redirect or authorize), reconnect with
backoff, events, async and background-thread lifecycles.

A feed (MarketFeed, PortfolioFeed) subclasses it and fills in the hooks: ``_make_listener()``
(the picows listener of a new connection), ``_on_open(listener, attempts)`` (send what the feed
needs on a fresh connection), ``_on_lost(listener, closing)`` (a connection ended),
``_on_stopped(exc)`` (the feed gave up) and ``_delivered()`` (a count of the data it has had,
which tells a working connection from one that opens and closes at once). It reads the
connection through ``loop``, ``closing``, ``connected``, ``_live_listener()`` and
``_send_binary()``; the fields behind them are FeedClient's own. Where the connection is lives in
one ``ConnectionState`` (idle, connecting, open, backing off, stopped).

What every feed shares is done here once: the gap between a lost connection and the next open
(the ``gap`` event, for feeds that have it) and the count and sparing log of bad frames.
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import Counter
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from fastfeed.errors import (AuthenticationError, FeedClosedError, FeedConnectionError,
                             PermanentConnectionError, ReconnectStoppedError)
from fastfeed.events import (AUTO_RECONNECT_STOPPED, CLOSE, CONNECTION_EVENTS, ERROR, GAP, OPEN,
                             RECONNECTING, EventRegistry, Gap)
from fastfeed.loop import new_event_loop

from .busy_poll import BusyPoll
from .connection import (ConnectOptions, ReconnectPolicy, Scrubber, ScrubbingLogger, Secret,
                         TokenProvider, attempt_error, authorize, open_websocket, resolve_token,
                         tls_context)
from .state import OPEN as OPEN_PHASE, STOPPED, ConnectionState

log = logging.getLogger(__name__)
_picows_log = logging.getLogger("fastfeed.transport.picows")
_BINARY = 2  # picows WSMsgType.BINARY

# The type of the feed itself, for what returns it (Self, on every Python fastfeed supports).
_Feed = TypeVar("_Feed", bound="FeedClient")


class FeedClient:
    """Base of the feed clients. See the module docstring for the hooks."""

    EVENTS: tuple[str, ...] = CONNECTION_EVENTS
    DEFAULT_URL = ""
    FRAME_NAME = "frame"  # what the bad-frame log line calls a message of this feed
    FEED_NAME = ""        # what a capture's metadata calls this feed
    #: Paths of feeds Upstox has switched off, and what to say to a URL with one of them.
    RETIRED_PATHS: dict[str, str] = {}

    def __init__(self, access_token: str | None = None, *, token_provider: TokenProvider | None = None,
                 url: str | None = None, authorize: bool = False, ssl: Any = None,
                 reconnect: ReconnectPolicy | None = None, connect_timeout: float = 10.0,
                 ping_interval: float | None = 10.0, ping_timeout: float = 5.0,
                 max_frame_size: int = 16 * 1024 * 1024, busy_poll: bool | float = False) -> None:
        if access_token is None and token_provider is None:
            raise ValueError("give an access_token or a token_provider")
        if token_provider is not None and not callable(token_provider):
            raise TypeError("token_provider must be callable")
        if ping_timeout <= 0:
            raise ValueError(f"ping_timeout must be positive, not {ping_timeout}")
        if ping_interval is not None:
            if ping_interval <= 0:
                raise ValueError(f"ping_interval must be positive or None, not {ping_interval}")
            if ping_timeout > ping_interval:
                # picows waits for a PONG at most as long as it waits before pinging.
                raise ValueError(f"ping_timeout ({ping_timeout} s) must not be longer than "
                                 f"ping_interval ({ping_interval} s)")
        self._scrub = Scrubber()
        self._token = Secret(access_token) if access_token is not None else None
        if self._token is not None:
            self._scrub.add(self._token.reveal())
        self._token_provider = token_provider
        self.url = url or self.DEFAULT_URL
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError("url must be a ws:// or wss:// URL")
        self.authorize = authorize
        secure = self.url.startswith("wss://")
        self._ssl_ctx = tls_context(ssl) if secure or ssl is not None else None
        self.reconnect_policy = reconnect if reconnect is not None else ReconnectPolicy()
        self.options = ConnectOptions(connect_timeout=connect_timeout, ping_interval=ping_interval,
                                      ping_timeout=ping_timeout, max_frame_size=max_frame_size)
        self.events = EventRegistry(self.EVENTS, owner=type(self).__name__)
        self._picows_logger = ScrubbingLogger(_picows_log, self._scrub)
        self._rng = random.Random()
        # busy_poll: True, or seconds to keep spinning after the last message (see busy_poll.py).
        self.busy_poll = busy_poll
        self._poller = BusyPoll.from_option(busy_poll)

        self._state = ConnectionState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._transport: Any = None
        self._open_failure: BaseException | None = None  # _on_open raised for this connection
        self._wakeup: asyncio.Event | None = None
        self._open_waiters: list[asyncio.Future[None]] = []
        self.connections = 0
        self.reconnects = 0
        self.failed_attempts = 0
        self._conn_totals: Counter[str] = Counter()
        self.gaps = 0
        self._stopped_ns: int | None = None  # when data stopped, while a connection is lost
        self.bad_frames = 0  # frames reported through _frame_failed (also the log throttle)
        self._recorder: Any = None  # fastfeed.capture.Recorder while recording

        self._thread: threading.Thread | None = None
        self._closer: asyncio.Future[None] | None = None

    # -- public -------------------------------------------------------------------------------------
    def on(self, event: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call `fn` on `event` (see EVENTS). Returns `fn`, so it also works as a decorator maker."""
        return self.events.on(event, fn)

    def off(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        self.events.off(event, fn)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def connected(self) -> bool:
        """A connection is open (and what the feed sends on opening went out)."""
        return self._state.phase == OPEN_PHASE

    @property
    def state(self) -> str:
        """"idle", "connecting", "open", "backing off" or "stopped"."""
        return self._state.phase

    @property
    def error(self) -> BaseException | None:
        """Why the feed stopped, if it stopped on its own (None while it runs or after close())."""
        return self._state.error

    @property
    def closing(self) -> bool:
        """close() or stop() was called (and no start since)."""
        return self._state.closing

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the feed runs on (None before it first started)."""
        return self._loop

    async def connect(self, timeout: float | None = 30.0) -> None:
        """Start on the running loop (never replacing it) and wait for the first open.

        Raises AuthenticationError (401/403), PermanentConnectionError (what retrying cannot
        cure: a 4xx, an untrusted certificate, no WebSocket endpoint), ReconnectStoppedError (the
        policy ran out) or TimeoutError; the last two carry the last attempt's error as their
        cause and in their message. The feed is closed first.
        """
        self._start_on_running_loop(reset=True)
        try:
            await self._wait_open(timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout: float = 5.0) -> None:
        """Close with 1000 and stop reconnecting; returns once the connection is gone."""
        self._state.closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        transport = self._transport
        if transport is not None and not transport.is_disconnected:
            try:
                transport.send_close(1000)
                transport.disconnect()
            except Exception:  # already going away
                pass
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            done, _ = await asyncio.wait([task], timeout=timeout)
            if not done:
                if transport is not None:
                    transport.disconnect(False)
                task.cancel()
                await asyncio.wait([task], timeout=1.0)
        self._fail_open_waiters(FeedClosedError("the feed was closed"))
        self.stop_recording()

    async def wait_closed(self) -> None:
        """Wait until the feed stops; re-raises why it stopped, unless close() stopped it."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self.error is not None and not self.closing:
            raise self.error

    async def __aenter__(self: _Feed) -> _Feed:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- background thread --------------------------------------------------------------------------
    def start(self: _Feed, timeout: float | None = 30.0) -> _Feed:
        """Run the feed on its own event loop (uvloop) in a daemon thread; wait for the first open.
        Raises as connect() does."""
        if self.running or (self._thread is not None and self._thread.is_alive()):
            raise RuntimeError("already started")
        ready = threading.Event()
        outcome: list[BaseException] = []

        def main() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._thread_main(ready, outcome))
            except BaseException as exc:  # reported through outcome
                outcome.append(exc)
            finally:
                ready.set()
                try:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        self._state.reset()
        self._thread = threading.Thread(target=main, name=f"fastfeed-{type(self).__name__}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout if timeout is not None else None):
            last = self._state.last_error
            self.stop()
            raise TimeoutError(self._not_open_message(timeout, last)) from last
        if outcome:
            self.stop()
            raise outcome[0]
        return self

    async def _thread_main(self, ready: threading.Event, outcome: list[BaseException]) -> None:
        # start() has reset the state; a stop() since (start() timed out before this thread got
        # here) must stand, so nothing is reset here and the connection loop ends at once.
        self._start_on_running_loop(reset=False)
        try:
            await self._wait_open(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            ready.set()
        task = self._task
        if task is not None:
            await asyncio.wait([task])
        if self._closer is not None:  # let close() finish before the loop goes away
            await asyncio.wait([self._closer], timeout=5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Close and join the background thread within about `timeout` seconds (any thread)."""
        self._state.closing = True
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._schedule_close, timeout)
            except RuntimeError:  # the loop closed in between
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout + 1.0)
            if thread.is_alive():
                log.warning("the feed thread did not stop within %.1f s", timeout + 1.0)

    def _schedule_close(self, timeout: float) -> None:
        self._closer = asyncio.ensure_future(self.close(timeout))

    def __enter__(self: _Feed) -> _Feed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the feed's loop: now if we are on it, else as soon as it can."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    # -- the connection loop ------------------------------------------------------------------------
    def _start_on_running_loop(self, reset: bool) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():
            if self._loop is not loop:
                raise RuntimeError("the feed already runs on another event loop")
            return
        self._loop = loop
        if reset:
            self._state.reset()
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name=f"fastfeed-{type(self).__name__}")

    @staticmethod
    def _not_open_message(timeout: float | None, last: BaseException | None) -> str:
        why = f"the last attempt failed: {last}" if last is not None else "no attempt has finished yet"
        return f"the feed did not open within {timeout} s; {why}"

    async def _wait_open(self, timeout: float | None) -> None:
        if self.connected:
            return
        if self.error is not None:
            raise self.error
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._open_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            last = self._state.last_error
            raise TimeoutError(self._not_open_message(timeout, last)) from last
        finally:
            if waiter in self._open_waiters:
                self._open_waiters.remove(waiter)

    def _resolve_open_waiters(self) -> None:
        waiters, self._open_waiters = self._open_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _fail_open_waiters(self, exc: BaseException) -> None:
        waiters, self._open_waiters = self._open_waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(exc)
                w.exception()  # retrieved: a waiter that timed out must not warn at exit

    async def _attempt(self) -> tuple[Any, Any]:
        """One connection attempt. Whatever it meets becomes AuthenticationError,
        PermanentConnectionError or (retryable) FeedConnectionError, keeping its cause."""
        path = urlsplit(self.url).path.rstrip("/")
        if path in self.RETIRED_PATHS:
            raise PermanentConnectionError(self.RETIRED_PATHS[path])
        feed_path = urlsplit(self.DEFAULT_URL).path
        step = "token_provider"
        try:
            token = (await resolve_token(self._token, self._token_provider)).reveal()
            self._scrub.add(token)
            url = self.url
            if self.authorize:
                step = "authorize"
                url = await authorize(self.url, token, self._ssl_ctx, self.options.connect_timeout,
                                      self._scrub, feed_path)
            step = "connect"
            return await open_websocket(self._make_listener, url, token, ctx=self._ssl_ctx,
                                        options=self.options, logger=self._picows_logger,
                                        scrub=self._scrub, origin=self.url, feed_path=feed_path)
        except (AuthenticationError, FeedConnectionError):
            raise
        except Exception as exc:  # anything else an attempt meets is worth another attempt
            raise attempt_error(f"{step} raised {type(exc).__name__}: {exc}", exc, self._scrub)

    async def _run(self) -> None:
        state, policy = self._state, self.reconnect_policy
        if self._poller is not None:
            self._poller.start(asyncio.get_running_loop())
        try:
            while not state.closing:
                if state.failures:
                    if not policy.allows(state.failures):
                        self._give_up()
                        return
                    delay = policy.delay(state.failures, self._rng)
                    limit = policy.max_attempts if policy.max_attempts is not None else "inf"
                    self.events.emit(RECONNECTING, f"Auto reconnect attempt {state.failures}/{limit}")
                    log.info("reconnect attempt %d in %.2f s", state.failures, delay)
                    if await self._sleep(delay):
                        return
                state.connecting()
                self._open_failure = None
                try:
                    transport, listener = await self._attempt()
                    if self._open_failure is None and listener is not self._listener and not state.closing:
                        self._opened(listener)  # on_ws_connected did not run: should not happen
                    if self._open_failure is not None:
                        await self._drop_failed_open(transport, listener)
                except (AuthenticationError, PermanentConnectionError) as exc:
                    log.error("%s: reconnecting stops", exc)
                    self.events.emit(ERROR, exc)
                    advice = "a new access token is needed" if isinstance(exc, AuthenticationError) \
                        else "retrying cannot cure it"
                    self._stop(exc, f"{exc}; {advice}")
                    return
                except FeedConnectionError as exc:  # try again
                    state.failed(exc)
                    self.failed_attempts += 1
                    log.warning("%s", exc)
                    self.events.emit(ERROR, exc)
                    continue
                if state.closing:
                    if not transport.is_disconnected:
                        transport.send_close(1000)
                        transport.disconnect()
                    if not self.connected:
                        return
                # The connection opened, even if close() came before this: it emitted `open`, so
                # serving it to its end emits its `close`.
                await self._serve(transport, listener)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug: report it rather than die silently
            log.exception("the feed's connection loop failed")
            self._stop(exc, f"internal error: {exc}")
        finally:
            if self._poller is not None:
                self._poller.stop()
            self._transport = self._listener = None
            if state.phase != STOPPED:
                state.stopped(None if state.closing else ReconnectStoppedError("the feed stopped"))
            self._fail_open_waiters(self.error or FeedClosedError("the feed was closed"))

    def _give_up(self) -> None:
        """The policy allows no more attempts: stop, saying what the last attempt met."""
        policy, last = self.reconnect_policy, self._state.last_error
        what = "reconnecting is disabled" if not policy.enabled else \
            f"retryCount of {policy.max_attempts} exhausted."
        text = what if last is None else f"{what.rstrip('.')}; the last attempt failed: {last}"
        exc = ReconnectStoppedError(text)
        exc.__cause__ = last
        self._stop(exc, what)

    async def _drop_failed_open(self, transport: Any, listener: Any) -> None:
        """_on_open raised: the connection never counted as open; it is closed and the attempt
        fails with that error."""
        failure, self._open_failure = self._open_failure, None
        if not transport.is_disconnected:
            transport.disconnect()
        try:
            await asyncio.wait_for(transport.wait_disconnected(), 1.0)
        except Exception:  # gone either way: disconnect(False) below
            transport.disconnect(False)
        self._conn_totals.update(listener.stats())
        assert failure is not None
        raise attempt_error(f"opening the connection failed: {type(failure).__name__}: {failure}",
                            failure, self._scrub)

    def _opened(self, listener: Any) -> None:
        # Runs inside picows's on_ws_connected, before the first frame is handed over, so that
        # `open` comes before any data event and subscriptions go out at once.
        self._transport, self._listener = listener.transport, listener
        try:
            self._on_open(listener, self._state.failures)
        except Exception as exc:
            # Not open: no `open` event, connect() goes on waiting, and the attempt fails.
            log.exception("opening the connection failed")
            self._open_failure = exc
            self._transport = self._listener = None
            # Frames already read with the upgrade still reach the listener: it drops them.
            listener.detach()
            listener.transport.disconnect()
            return
        self._state.opened(time.monotonic(), self._delivered())
        self.connections += 1
        if self.connections > 1:
            self.reconnects += 1
        listener.tap = self._recorder.tap if self._recorder is not None else None
        if self._poller is not None:
            self._poller.attach(listener)
        log.info("connected (connection %d)", self.connections)
        self._end_gap(listener, max(1, self._state.failures))
        self._resolve_open_waiters()
        self.events.emit(OPEN)

    async def _serve(self, transport: Any, listener: Any) -> None:
        try:
            await transport.wait_disconnected()
        except Exception:  # the reason is in the listener's close code / flags
            pass
        state = self._state
        closing = state.closing
        self._transport = None
        self._conn_totals.update(listener.stats())
        code, reason = listener.close_code, listener.close_reason
        if listener.pong_timeout:
            code, reason = 1006, f"no PONG within {self.options.ping_timeout} s: connection declared dead"
        elif not code:
            code, reason = (1000, "closed by the client") if closing else \
                (1006, "connection lost without a close frame")
        now = time.monotonic()
        lived = state.lived(now)
        why = FeedConnectionError(f"the connection closed {lived:.2f} s after it opened: {code} {reason}".rstrip())
        stable = state.lost(now, self._delivered(), self.reconnect_policy.stable_after, why)
        log.info("disconnected: %s %s", code, reason)
        if not stable and not closing:
            log.warning("the connection lived %.2f s and delivered no data: counted as a failed "
                        "attempt (%d in a row)", lived, state.failures)
        if not closing and self._stopped_ns is None:
            self._stopped_ns = listener.last_frame_ns or listener.connected_ns or time.time_ns()
        self._on_lost(listener, closing)
        self.events.emit(CLOSE, code, reason)

    def _end_gap(self, listener: Any, attempts: int) -> None:
        """A connection opened after one was lost: emit the gap (data in between is lost)."""
        if self._stopped_ns is None:
            return
        gap = Gap(self._stopped_ns, listener.connected_ns, attempts)
        self._stopped_ns = None
        self.gaps += 1
        if self._recorder is not None:
            self._recorder.gap(gap)
        log.info("%s was down %.3f s (%d attempt(s)): updates in between are lost",
                 type(self).__name__, gap.seconds, attempts)
        if GAP in self.events.names:
            self.events.emit(GAP, gap)

    def _report_bad_frame(self, exc: BaseException, size: int, detail: object = None) -> None:
        """Count a bad frame, log it sparingly (a feed of bad frames must not flood the log; the
        frame itself is never logged) and emit ``error``."""
        self.bad_frames += 1
        n = self.bad_frames
        if n <= 10 or n & (n - 1) == 0:
            log.warning("bad %s of %d bytes skipped (%d so far): %s", self.FRAME_NAME, size, n,
                        exc if detail is None else detail)
        self.events.emit(ERROR, exc)

    def _stop(self, exc: BaseException, message: str) -> None:
        self._state.stopped(exc)
        self.events.emit(AUTO_RECONNECT_STOPPED, message)
        self._fail_open_waiters(exc)
        self._on_stopped(exc)

    async def _sleep(self, delay: float) -> bool:
        """Sleep, unless close() wakes us; True if closing."""
        assert self._wakeup is not None
        try:
            await asyncio.wait_for(self._wakeup.wait(), delay)
        except asyncio.TimeoutError:
            pass
        return self._state.closing

    # -- listener hooks (called by FeedListener on the loop) ---------------------------------------
    def _ws_connected(self, listener: Any) -> None:
        if self._state.closing:  # never opened: nothing it brings is delivered
            listener.detach()
            listener.transport.disconnect()
            return
        self._opened(listener)

    def _frame_failed(self, listener: Any, exc: BaseException, size: int) -> None:
        self._report_bad_frame(exc, size)

    def _callback_failed(self, exc: BaseException) -> None:
        self.events.callback_errors += 1
        log.error("a callback raised: %r", exc, exc_info=exc)

    # -- recording ----------------------------------------------------------------------------------
    def record(self, path: Any, *, compression: str = "lz4", max_bytes: int = 64 << 20,
               flush_interval: float = 0.25, writer_cpus: Any = None,
               writer: str = "thread") -> Any:
        """Record every message received (and every request sent, every reconnect gap) into the
        capture file `path` (Arrow IPC, see fastfeed.capture) until ``stop_recording()`` or
        ``close()``. Any thread, running or not. Returns the ``Recorder`` (``.stats()``).

        The receive path only copies each message into C memory; a writer thread compresses and
        writes batches. If it falls ``max_bytes`` behind, messages are dropped and counted (a
        gap record in the file marks the span) rather than the feed ever waiting for the disk.
        ``writer_cpus``: CPUs to pin the writer thread to (Linux), off the receiving core;
        ``writer="process"``: compress and write in a process of its own, which a full-rate feed
        needs (see ``Recorder``).
        """
        from fastfeed.capture.recorder import Recorder

        if self._recorder is not None:
            raise RuntimeError(f"already recording to {self._recorder.path}; stop_recording() first")
        recorder = Recorder(path, feed=self.FEED_NAME, url=self.url,
                            subscriptions=self._recording_subscriptions(), compression=compression,
                            max_bytes=max_bytes, flush_interval=flush_interval,
                            writer_cpus=writer_cpus, writer=writer)
        self._recorder = recorder
        self.call_soon(self._attach_tap)
        return recorder

    def stop_recording(self) -> dict[str, Any] | None:
        """Finish the capture file (whatever is buffered is written); its ``stats()``, or None
        when not recording. Blocks until the writer is done (one batch, usually milliseconds)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        stats = recorder.close()
        self.call_soon(self._attach_tap)
        return stats

    @property
    def recording(self) -> Any:
        """The Recorder while recording, else None."""
        return self._recorder

    def _attach_tap(self) -> None:
        listener = self._listener
        if listener is not None:
            listener.tap = self._recorder.tap if self._recorder is not None else None

    def _record_request(self, payload: bytes) -> None:
        recorder = self._recorder
        if recorder is not None:
            recorder.request(payload)

    def _recording_subscriptions(self) -> Any:
        """What the feed is subscribed to, for a capture's metadata."""
        return None

    # -- subclass hooks ----------------------------------------------------------------------------
    def _make_listener(self) -> Any:
        raise NotImplementedError

    def _on_open(self, listener: Any, attempts: int) -> None:
        """A new connection is open; send what the feed needs. `attempts`: 0 on the first."""

    def _on_lost(self, listener: Any, closing: bool) -> None:
        """The connection ended (`closing`: because close() was called)."""

    def _on_stopped(self, exc: BaseException) -> None:
        """The feed stopped for good on its own (auth failure, retries exhausted)."""

    def _delivered(self) -> int:
        """A count that grows with the data the feed has had (updates applied): a connection
        that raised it was a working one, however short (see ReconnectPolicy.stable_after)."""
        return 0

    # -- for subclasses: the connection, read through methods ---------------------------------------
    def _live_listener(self) -> Any:
        """The open connection's listener, or None."""
        return self._listener if self.connected else None

    def _send_binary(self, payload: bytes) -> bool:
        """Send one binary frame on the open connection; False if there is none."""
        transport = self._transport
        if transport is None or not self.connected:
            return False
        transport.send(_BINARY, payload)
        return True

    def _used_tokens(self) -> tuple[str, ...]:
        """The tokens this feed has used, newest first (for scrubbing text it hands out)."""
        return self._scrub.tokens

    def _run_task(self) -> "asyncio.Task[None] | None":
        """The connection loop's task (done once the feed stopped)."""
        return self._task

    def _listener_totals(self) -> Counter[str]:
        """The listeners' counters, summed over every connection (the open one included)."""
        listener = self._listener
        totals = Counter(self._conn_totals)
        if listener is not None and self.connected:
            totals.update(listener.stats())
        return totals

    def _connection_stats(self, totals: Counter[str] | None = None) -> dict[str, Any]:
        if totals is None:
            totals = self._listener_totals()
        out: dict[str, Any] = {"connected": self.connected, "connections": self.connections,
                               "reconnects": self.reconnects, "failed_attempts": self.failed_attempts,
                               "callback_errors": self.events.callback_errors,
                               "busy_poll": self._poller.stats() if self._poller is not None else None}
        for k in ("pings_received", "pings_sent", "pongs_received", "fragments", "oversized"):
            out[k] = totals[k]
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} {self.state} connections={self.connections}>"

