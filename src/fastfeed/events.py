"""Named events and user callbacks, shared by every feed client.

Event names mirror the official SDK (``open``, ``close``, ``error``, ``reconnecting``,
``autoReconnectStopped``); feeds add their own (``market_status``, ``gap``). A callback that
raises is logged and counted and never stops the feed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

OPEN = "open"
CLOSE = "close"
ERROR = "error"
RECONNECTING = "reconnecting"
AUTO_RECONNECT_STOPPED = "autoReconnectStopped"
MARKET_STATUS = "market_status"
GAP = "gap"

CONNECTION_EVENTS = (OPEN, CLOSE, ERROR, RECONNECTING, AUTO_RECONNECT_STOPPED)


@dataclass(frozen=True, slots=True)
class Gap:
    """Data stopped at ``stopped_ns`` (last frame before the connection was lost, epoch ns) and
    a new connection opened at ``restarted_ns``; ``attempts`` counts the connection attempts
    it took (at least 1).
    Rows not updated since are flagged stale (``Quote.stale``) until their next update."""

    stopped_ns: int
    restarted_ns: int
    attempts: int

    @property
    def seconds(self) -> float:
        return max(0, self.restarted_ns - self.stopped_ns) / 1e9


class EventRegistry:
    """Callbacks by event name. Not thread-safe for emit: the feed emits on its loop only."""

    def __init__(self, names: Iterable[str], owner: str = "feed") -> None:
        self._handlers: dict[str, list[Callable[..., Any]]] = {name: [] for name in names}
        self._owner = owner
        self.callback_errors = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def on(self, event: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if event not in self._handlers:
            raise ValueError(f"unknown event {event!r}; known: {', '.join(self._handlers)}")
        if not callable(fn):
            raise TypeError("the callback must be callable")
        # Copy on write, so an emit in progress iterates a list nobody changes.
        self._handlers[event] = [*self._handlers[event], fn]
        return fn

    def off(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        if event not in self._handlers:
            raise ValueError(f"unknown event {event!r}")
        self._handlers[event] = [] if fn is None else [f for f in self._handlers[event] if f is not fn]

    def emit(self, event: str, *args: Any) -> None:
        for fn in self._handlers[event]:
            self.call(fn, *args, where=event)

    def call(self, fn: Callable[..., Any], *args: Any, where: str = "callback") -> Any:
        """Run a user callback; an exception is logged and counted, never raised."""
        try:
            return fn(*args)
        except Exception:
            self.failed(fn, where)
            return None

    def failed(self, fn: Callable[..., Any], where: str) -> None:
        """Log and count the exception being handled, raised by user callback `fn`."""
        self.callback_errors += 1
        log.exception("%s: %s callback %r raised", self._owner, where, getattr(fn, "__qualname__", fn))
