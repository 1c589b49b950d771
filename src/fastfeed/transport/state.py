"""Where a feed's connection is, as one small object the feed composes.

Phases: ``idle`` (never started, or reset for a new start), ``connecting`` (an attempt is under
way), ``open``, ``backing off`` (waiting before the next attempt, after a failed attempt or a lost
connection) and ``stopped`` (closed, or given up). Beside the phase it keeps the count of failed
attempts in a row that the backoff and ``max_attempts`` read, the last attempt's error (what a
failed ``connect()`` reports), and why the feed stopped on its own.

A connection that opened counts as a failed attempt when it is lost before it was *stable*: it
lived less than ``stable_after`` seconds and delivered no data. So a server that accepts and
closes at once is backed off ever longer and ``max_attempts`` ends it, while a connection that
worked restarts the count.
"""
from __future__ import annotations

IDLE = "idle"
CONNECTING = "connecting"
OPEN = "open"
BACKING_OFF = "backing off"
STOPPED = "stopped"

PHASES = (IDLE, CONNECTING, OPEN, BACKING_OFF, STOPPED)

_NEXT: dict[str, tuple[str, ...]] = {
    IDLE: (CONNECTING, STOPPED),
    CONNECTING: (OPEN, BACKING_OFF, STOPPED),
    OPEN: (BACKING_OFF, STOPPED),
    BACKING_OFF: (CONNECTING, STOPPED),
    STOPPED: (IDLE, STOPPED),
}


class ConnectionState:
    """The phase of one feed's connection and the counts its reconnect loop reads.

    Changed only on the feed's event loop, except ``closing``, which ``stop()`` sets from any
    thread (a plain flag the loop reads before every step).
    """

    __slots__ = ("phase", "failures", "last_error", "error", "closing", "_opened_at", "_data_at_open")

    def __init__(self) -> None:
        self.phase = IDLE
        self.failures = 0        # failed attempts in a row (an unstable connection is one too)
        self.last_error: BaseException | None = None   # the last attempt's error
        self.error: BaseException | None = None        # why the feed stopped on its own
        self.closing = False     # close() or stop() was asked for
        self._opened_at = 0.0
        self._data_at_open = 0

    def _move(self, phase: str) -> None:
        if phase not in _NEXT[self.phase]:
            raise RuntimeError(f"connection state: {self.phase} -> {phase} is not a transition")
        self.phase = phase

    def reset(self) -> None:
        """Ready for a new start: nothing failed yet, nothing asked to close."""
        if self.phase != IDLE:
            self._move(IDLE)
        self.failures = 0
        self.last_error = None
        self.error = None
        self.closing = False

    def connecting(self) -> None:
        self._move(CONNECTING)

    def failed(self, exc: BaseException) -> None:
        """The attempt failed before the connection opened."""
        self.failures += 1
        self.last_error = exc
        self._move(BACKING_OFF)

    def opened(self, now: float, delivered: int) -> None:
        """The connection opened at `now` (monotonic s); `delivered`: the feed's data count."""
        self._opened_at = now
        self._data_at_open = delivered
        self._move(OPEN)

    def lost(self, now: float, delivered: int, stable_after: float, why: BaseException) -> bool:
        """The open connection ended. Returns whether it was stable (the count restarts at one
        attempt) or not (it counts as one more failed attempt, with `why` as its error)."""
        stable = now - self._opened_at >= stable_after or delivered > self._data_at_open
        self.failures = 1 if stable else self.failures + 1
        self.last_error = why
        self._move(BACKING_OFF)
        return stable

    def lived(self, now: float) -> float:
        """Seconds the current (or last) connection has been open at `now`."""
        return now - self._opened_at

    def stopped(self, error: BaseException | None) -> None:
        """The feed stopped: `error` is why, None when close() or stop() ended it."""
        self.error = error
        self._move(STOPPED)

    def __repr__(self) -> str:
        return f"<ConnectionState {self.phase} failures={self.failures}>"
