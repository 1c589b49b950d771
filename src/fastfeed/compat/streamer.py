"""The official SDK's ``Streamer`` (upstox-python-sdk 2.30.0, ``upstox_client/feeder/streamer.py``)
on top of a fastfeed feed: the same events, arguments, order and reconnect counter.

The SDK runs on websocket-client, whose callbacks come in a fixed pattern: ``on_open``, then
``on_message`` per frame, then, when a connection ends or an attempt fails, ``on_error(exc)``
followed by ``on_close(code, reason)`` (both ``None`` when no close frame came; a client's own
close gives ``on_close`` only). The SDK's ``handle_open`` / ``handle_error`` / ``handle_close``
turn those into its events and decide when to reconnect. Here the feed's events are turned into
the same websocket-client pattern and run through the same three handlers, so the streamers'
event sequences are the SDK's by construction.

What differs (on purpose): one background thread for the streamer's whole life, running the feed
on uvloop, instead of a new thread per connection; the feed underneath never reconnects by
itself (reconnect policy disabled): each attempt is a fresh ``connect()`` decided here.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

from fastfeed.errors import AuthenticationError, FeedConnectionError
from fastfeed.loop import new_event_loop

log = logging.getLogger(__name__)

#: How long ``disconnect()`` waits for the streamer's thread (called from another thread).
DISCONNECT_TIMEOUT = 10.0


def _token_of(api_client: Any) -> str | None:
    """The access token: a plain string, or an ``upstox_client.ApiClient``'s configuration's."""
    if isinstance(api_client, str):
        return api_client
    configuration = getattr(api_client, "configuration", None)
    return getattr(configuration, "access_token", None)


def check_api_client(api_client: Any) -> Any:
    if api_client is None or isinstance(api_client, str) or hasattr(api_client, "configuration"):
        return api_client
    raise TypeError("api_client must be an upstox_client.ApiClient or an access token string, "
                    f"not {type(api_client).__name__}")


class Engine:
    """Mixed into a feed class (MarketFeed, PortfolioFeed): each accepted message goes to
    ``deliver(payload, text)`` and the way each connection ended is kept in ``lost``."""

    deliver: Callable[[bytes, bool], None]
    #: (close code received or 0, reason, no PONG in time, closed by us) of the last connection
    lost: tuple[int, str, bool, bool] = (0, "", False, False)

    def _make_listener(self) -> Any:
        listener = super()._make_listener()  # type: ignore[misc]
        listener.on_message = self.deliver
        return listener

    def _on_lost(self, listener: Any, closing: bool) -> None:
        self.lost = (listener.close_code, listener.close_reason, bool(listener.pong_timeout), closing)
        super()._on_lost(listener, closing)  # type: ignore[misc]


def closed_error(code: int, reason: str) -> FeedConnectionError:
    """The error websocket-client reports when the server's close frame ends a connection."""
    if code == 1000:
        message = "Connection closed normally (code 1000)"
    else:
        message = f"Connection closed (code {code})"
    return FeedConnectionError(f"{message}: {reason}" if reason else message)


class Streamer:
    """Events, listeners, the reconnect state machine and the background thread, as the SDK's.

    Subclasses set ``self.feed`` (a feed class with `Engine` mixed in) and ``_prepare()`` (the
    URL, read at ``connect()`` time).
    """

    Event = {
        "OPEN": "open",
        "CLOSE": "close",
        "MESSAGE": "message",
        "ERROR": "error",
        "RECONNECTING": "reconnecting",
        "AUTO_RECONNECT_STOPPED": "autoReconnectStopped",
    }

    feed: Any

    def __init__(self, api_client: Any = None) -> None:
        self.api_client = check_api_client(api_client)
        self.listeners: dict[str, list[Callable[..., Any]]] = {name: [] for name in self.Event.values()}
        self.disconnect_valid = False
        self.reconnect_in_progress = False
        self.enable_auto_reconnect = True
        self.interval: float = 1
        self.retry_count = 5
        self.reconnect_attempts = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wakeup: asyncio.Event | None = None
        self._closer: asyncio.Future[None] | None = None
        self._retry: str | None = None  # what the handlers decided: "now", "after_interval"

    def _bind(self, feed: Any) -> None:
        self.feed = feed
        feed.on("open", self._ws_open)
        feed.on("error", self._ws_error)
        feed.on("close", self._ws_closed)

    def _access_token(self) -> str | None:
        """Asked before every attempt, as the SDK reads the configuration on every connect."""
        return _token_of(self.api_client)

    # -- the SDK's public API -----------------------------------------------------------------------
    def on(self, event: str, listener: Callable[..., Any]) -> None:
        """Registers a new listener for an event."""
        if event not in self.listeners:
            raise ValueError(f"Unknown event: {event}")
        # Copy on write: the streamer's thread may be emitting this event right now.
        self.listeners[event] = [*self.listeners[event], listener]

    def emit(self, event: str, *args: Any) -> None:
        """Calls every listener of `event`. One that raises becomes an ``error`` event (an
        ``error`` listener that raises is logged) and the others still run."""
        if event not in self.listeners:
            raise ValueError(f"Unknown event: {event}")
        for listener in self.listeners[event]:
            try:
                listener(*args)
            except Exception as exc:
                self._listener_failed(event, listener, exc)

    def _listener_failed(self, event: str, listener: Callable[..., Any], exc: Exception) -> None:
        if event == "error":
            log.exception("an error listener %r raised", getattr(listener, "__qualname__", listener))
            return
        log.error("a %s listener %r raised: %r", event, getattr(listener, "__qualname__", listener), exc)
        self.emit("error", exc)

    def connect(self) -> None:
        """Starts the streamer's thread (not a daemon) and returns at once; it connects, runs
        every callback and lives until ``disconnect()`` or the end of reconnecting."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            log.warning("connect() while the streamer is already running: ignored")
            return
        self._prepare()
        self._stopping = False
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._thread_main, args=(self._loop,),
                                        name=f"fastfeed-{type(self).__name__}", daemon=False)
        self._thread.start()

    def disconnect(self) -> None:
        """Closes the connection (code 1000) and ends reconnecting; from another thread it also
        waits for the streamer's thread to end."""
        self.disconnect_valid = True
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._shutdown)
            except RuntimeError:  # the loop closed in between
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(DISCONNECT_TIMEOUT)
            if thread.is_alive():
                log.warning("the streamer's thread did not end within %.0f s", DISCONNECT_TIMEOUT)

    def auto_reconnect(self, enable: bool, interval: float = 1, retry_count: int = 5) -> None:
        self.enable_auto_reconnect = enable
        self.interval = interval
        self.retry_count = retry_count
        if not enable:
            self._emit_from_caller(self.Event["AUTO_RECONNECT_STOPPED"], "Disabled by client.")

    # -- the SDK's handlers, unchanged in substance ----------------------------------------------
    def launch_auto_reconnect(self) -> None:
        if self.enable_auto_reconnect:
            self.reconnect_in_progress = True
            self.reconnect_attempts += 1
            self.emit(self.Event["RECONNECTING"],
                      f"Auto reconnect attempt {self.reconnect_attempts}/{self.retry_count}")
            self._retry = "now"

    def handle_open(self) -> None:
        self.disconnect_valid = False
        self.reconnect_in_progress = False
        self.reconnect_attempts = 0
        # The feed has sent every subscription already (in on_ws_connected, before this event).
        self.emit(self.Event["OPEN"])

    def handle_error(self, error: BaseException) -> None:
        self.emit(self.Event["ERROR"], error)
        if _unauthorized(error):
            self.disconnect_valid = True  # no reconnect on 401
            return
        if (self.enable_auto_reconnect and self.reconnect_in_progress
                and self.reconnect_attempts < self.retry_count):
            self._retry = "after_interval"  # sleep, count, emit reconnecting, connect: _drive
            return
        if self.reconnect_attempts == self.retry_count:
            self.emit(self.Event["AUTO_RECONNECT_STOPPED"],
                      f"retryCount of {self.retry_count} exhausted.")

    def handle_close(self, close_status_code: int | None, close_msg: str | None) -> None:
        if not self.reconnect_in_progress:
            self.emit(self.Event["CLOSE"], close_status_code, close_msg)
        if not self.reconnect_in_progress and not self.disconnect_valid and close_status_code != 1000:
            self.launch_auto_reconnect()

    # -- the feed's events as websocket-client's callbacks ------------------------------------------
    def _ws_open(self) -> None:
        self.handle_open()

    def _ws_error(self, exc: BaseException) -> None:
        # A failed attempt (its on_close follows in _drive) or a frame the decoder refused.
        self.handle_error(exc)

    def _ws_closed(self, code: int, reason: str) -> None:
        received, received_reason, pong_timeout, by_us = self.feed.lost
        if by_us:  # disconnect(): websocket-client reports the close without an error
            self.handle_close(received or 1000, received_reason or None)
            return
        if pong_timeout:
            self.handle_error(FeedConnectionError(f"ping/pong timed out ({reason})"))
            self.handle_close(None, None)
        elif not received:
            self.handle_error(FeedConnectionError("Connection to remote host was lost."))
            self.handle_close(None, None)
        else:
            self.handle_error(closed_error(received, received_reason))
            self.handle_close(received, received_reason or None)

    # -- the thread ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Set the feed's URL for this connect() (subclasses)."""

    def _thread_main(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._drive())
        except Exception:
            log.exception("the streamer's thread failed")
        finally:
            try:
                # As asyncio.run does: what is left (picows's ping task of the last connection)
                # ends here, on this thread, not in a garbage collector's pass on another one.
                left = asyncio.all_tasks(loop)
                for task in left:
                    task.cancel()
                if left:
                    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _drive(self) -> None:
        """One attempt after another, as the handlers decide, until nothing more is to be done."""
        self._wakeup = asyncio.Event()
        feed = self.feed
        try:
            while not self._stopping:
                self._retry = None
                try:
                    await feed.connect(timeout=None)
                except Exception:
                    if self._stopping:
                        break
                    # The attempt failed and its error went out; websocket-client follows with
                    # on_close(None, None).
                    self.handle_close(None, None)
                else:
                    try:
                        await feed.wait_closed()
                    except Exception:  # the feed never retries: why it stopped is in the events
                        pass
                retry = self._retry
                if retry is None or self._stopping:
                    break
                if retry == "after_interval":
                    if await self._pause(self.interval):
                        break
                    self.reconnect_attempts += 1
                    self.emit(self.Event["RECONNECTING"],
                              f"Auto reconnect attempt {self.reconnect_attempts}/{self.retry_count}")
        finally:
            if self._closer is not None:
                await asyncio.wait([self._closer], timeout=DISCONNECT_TIMEOUT)
                self._closer = None

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless disconnect() wakes us; True if disconnecting."""
        assert self._wakeup is not None
        try:
            await asyncio.wait_for(self._wakeup.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            pass
        return self._stopping

    def _shutdown(self) -> None:  # on the streamer's loop
        if self._wakeup is not None:
            self._wakeup.set()
        if self._closer is None:
            self._closer = asyncio.ensure_future(self.feed.close())

    def _emit_from_caller(self, event: str, *args: Any) -> None:
        """An event caused by a call from the user's thread: emitted on the streamer's thread
        while it runs (every callback runs there), else at once."""
        loop, thread = self._loop, self._thread
        if (loop is not None and thread is not None and thread.is_alive()
                and thread is not threading.current_thread()):
            try:
                loop.call_soon_threadsafe(self.emit, event, *args)
                return
            except RuntimeError:  # the loop closed in between
                pass
        self.emit(event, *args)

    def __repr__(self) -> str:
        running = self._thread is not None and self._thread.is_alive()
        return f"<{type(self).__name__} {'running' if running else 'stopped'} {self.feed!r}>"


def _unauthorized(error: BaseException) -> bool:
    # The SDK looks for websocket-client's "401 Unauthorized" in the text.
    return (isinstance(error, AuthenticationError) and error.status == 401) or \
        "401 Unauthorized" in str(error)
