"""Fault switches: what can go wrong on a connection, each switch on its own.

A `Faults` set on the simulator (`sim.faults`) is copied into each new connection; the copy on a
connection (`conn.faults`) can then be changed while it runs. Every switch is off by default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

CLOSE_CODES = (1000, 1001, 1011, 1012, 1013)


@dataclass
class Faults:
    # Drop the TCP connection without a close frame, after this many data frames / seconds.
    abort_after_frames: int | None = None
    abort_after_seconds: float | None = None
    # Send a close frame with `close_code` (1000 or 1011 are the useful ones) and disconnect.
    close_after_frames: int | None = None
    close_after_seconds: float | None = None
    close_code: int = 1011
    # Every Nth data frame is preceded by one that the protobuf parser rejects (a JSON parser, on
    # the portfolio feed).
    malformed_every: int | None = None
    # Split each data frame longer than this into WebSocket continuation fragments of this size.
    fragment_size: int | None = None
    # Send no data frames for `stall_seconds` once `stall_after_frames` have gone out (once per
    # connection); the socket stays open and control frames (pings, pongs) still flow.
    stall_seconds: float | None = None
    stall_after_frames: int = 0
    # Every Nth data frame is preceded by a `full` live_feed frame of `oversized_instruments` keys.
    oversized_every: int | None = None
    oversized_instruments: int = 2000
    # Do not count the client's PONGs: the server's ping timeout then closes the connection.
    ignore_pongs: bool = False
    # Do not answer the client's PINGs, so a client's dead-connection detection can be tested.
    ignore_pings: bool = False

    def __post_init__(self) -> None:
        if self.close_code not in CLOSE_CODES:
            raise ValueError(f"close_code must be one of {CLOSE_CODES}")
        for name in ("malformed_every", "oversized_every", "fragment_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")

    def copy(self) -> "Faults":
        return dataclasses.replace(self)

    def active(self) -> list[str]:
        """The names of the switches that are on."""
        on = []
        for f in dataclasses.fields(self):
            if f.name in ("close_code", "stall_after_frames", "oversized_instruments"):
                continue
            value = getattr(self, f.name)
            if value not in (None, False):
                on.append(f.name)
        return on
