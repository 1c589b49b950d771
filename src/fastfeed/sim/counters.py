"""What was sent and received, per connection and per server."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Counters:
    """Plain counters. A connection's counters are added into its server's as they change.

    `faults` counts fault firings by switch name; `http_status` counts handshake answers by status.
    """

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    requests: int = 0
    requests_malformed: int = 0
    keys_subscribed: int = 0
    keys_dropped: int = 0
    pings_received: int = 0
    pongs_sent: int = 0
    pongs_received: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    connections_refused: int = 0
    redirects: int = 0
    authorize_calls: int = 0
    replays_finished: int = 0   # connections that were sent a whole capture
    faults: Counter[str] = field(default_factory=Counter)
    http_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Counter) else value
        return out


class Tally:
    """Bumps a connection's counters and its server's together."""

    __slots__ = ("own", "total")

    def __init__(self, own: Counters, total: Counters) -> None:
        self.own = own
        self.total = total

    def sent(self, frames: int, nbytes: int) -> None:
        self.own.frames_sent += frames
        self.own.bytes_sent += nbytes
        self.total.frames_sent += frames
        self.total.bytes_sent += nbytes

    def received(self, nbytes: int) -> None:
        self.own.frames_received += 1
        self.own.bytes_received += nbytes
        self.total.frames_received += 1
        self.total.bytes_received += nbytes

    def bump(self, name: str, by: int = 1) -> None:
        setattr(self.own, name, getattr(self.own, name) + by)
        setattr(self.total, name, getattr(self.total, name) + by)

    def fault(self, name: str) -> None:
        self.own.faults[name] += 1
        self.total.faults[name] += 1
