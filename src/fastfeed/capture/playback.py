"""Replaying a market capture through a FeedDecoder, and exporting its updates as a table.

Each record batch's Arrow buffers go to ``_replay.feed_frames``, a C loop that calls the decoder
on every frame with its recorded receive time: no Python object per frame. What is not a frame
is handled here: a reconnect gap marks the rows stale, as the live feed did when it lost the
connection; requests change nothing (the frames that followed them carry their effect).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from fastfeed._decode import FeedDecoder
from fastfeed._replay import DONE, EARLY, FULL, RECORD, feed_frames
from fastfeed._store import RECORD_DTYPE

from .file import GAP, Capture, Path, column_buffers, open_capture, proto_schema_hash, pyarrow

log = logging.getLogger(__name__)

OnUpdate = Callable[[npt.NDArray[Any]], Any]


@dataclass
class ReplayCounts:
    """What a replay went through."""

    frames: int = 0
    updates: int = 0
    errors: int = 0
    requests: int = 0
    gaps: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0


def _check(capture: Capture) -> None:
    recorded = capture.metadata.get("proto_schema_hash")
    if recorded and recorded != proto_schema_hash():
        log.warning("%s was recorded with another proto schema (%s); decoding it anyway",
                    capture.path, recorded)


class _Player:
    """Feeds one capture's batches to a decoder; shared by replay(), to_arrow() and the CLI."""

    def __init__(self, capture: Capture, decoder: FeedDecoder, *, speed: float | None = None,
                 on_update: OnUpdate | None = None) -> None:
        if speed is not None and not (isinstance(speed, (int, float)) and speed > 0):
            raise ValueError(f"speed must be a positive number or None, not {speed!r}")
        if on_update is not None and not callable(on_update):
            raise TypeError("on_update must be callable")
        self.capture = capture
        self.decoder = decoder
        self.speed = float(speed) if speed is not None else 0.0
        self.on_update = on_update
        self.counts = ReplayCounts()
        self._origin: tuple[int, int] | None = None  # (recorded ns, wall ns) of the first frame

    def play(self, max_updates: int = -1, drain: Callable[[], None] | None = None) -> ReplayCounts:
        started = time.perf_counter()
        frames_before, decoder = self.decoder.frames, self.decoder
        for batch in self.capture.batches_ahead():
            self._batch(batch, max_updates, drain)
        c = self.counts
        c.frames = decoder.frames - frames_before + c.errors
        c.seconds = time.perf_counter() - started
        return c

    def _batch(self, batch: Any, max_updates: int, drain: Callable[[], None] | None) -> None:
        n = batch.num_rows
        if not n:
            return
        recv, kind, offsets, data = column_buffers(batch)
        ov = np.frombuffer(offsets, dtype=np.int32, count=n + 1)
        self.counts.payload_bytes += int(ov[n] - ov[0])
        if self.speed and self._origin is None:
            self._origin = (int(np.frombuffer(recv, dtype=np.int64, count=1)[0]), time.time_ns())
        rec0, wall0 = self._origin or (0, 0)
        i = 0
        c = self.counts
        while i < n:
            why, i, updates, errors, until = feed_frames(
                self.decoder, recv, kind, offsets, data, i, n, max_updates, self.on_update,
                self.speed, rec0, wall0)
            c.updates += updates
            c.errors += errors
            if why == DONE:
                return
            if why == RECORD:
                self._record(int(np.frombuffer(kind, dtype=np.int8, count=n)[i]),
                             bytes(memoryview(data)[ov[i]:ov[i + 1]]))
                i += 1
            elif why == FULL:
                if drain is not None:
                    drain()
            elif why == EARLY:
                time.sleep(max(0.0, (until - time.time_ns()) / 1e9))

    def _record(self, kind: int, payload: bytes) -> None:
        if kind != GAP:
            self.counts.requests += 1
            return
        self.counts.gaps += 1
        try:
            reason = json.loads(payload).get("reason")
        except (ValueError, AttributeError):
            reason = None
        if reason == "reconnect":
            self.decoder.store.mark_stale()


def replay(path: Path, *, decoder: FeedDecoder | None = None, speed: float | None = None,
           on_update: OnUpdate | None = None) -> FeedDecoder:
    """Decode every frame of a market capture, each with its recorded receive time.

    ``decoder``: the FeedDecoder to feed (a new one by default). ``speed``: None runs as fast as
    possible; 1.0 keeps the recorded pacing, 2.0 twice as fast. ``on_update(records)``: called
    once per frame with that frame's ring records, as ``MarketFeed.on_update`` is.
    Returns the decoder: its snapshot is the live feed's at the end of the recording.
    """
    return play(path, decoder=decoder, speed=speed, on_update=on_update)[0]


def play(path: Path, *, decoder: FeedDecoder | None = None, speed: float | None = None,
         on_update: OnUpdate | None = None) -> tuple[FeedDecoder, ReplayCounts]:
    """As ``replay``, also returning what it went through (frames, updates, errors, gaps, time)."""
    capture = open_capture(path, feed="market")
    _check(capture)
    decoder = decoder if decoder is not None else FeedDecoder()
    counts = _Player(capture, decoder, speed=speed, on_update=on_update).play()
    return decoder, counts


def to_arrow(path: Path, *, max_instruments: int = 4096, ring_capacity: int = 1 << 16) -> Any:
    """A market capture's updates as a pyarrow Table: one row per instrument update, the ring's
    fields (``RECORD_DTYPE``) with ``instrument_key``, in the order they were received."""
    pa = pyarrow()
    capture = open_capture(path, feed="market")
    _check(capture)
    decoder = FeedDecoder(max_instruments, ring_capacity)
    reader = decoder.reader()
    parts: list[npt.NDArray[Any]] = []

    def drain() -> None:
        records, missed = reader.read()
        if missed:  # one frame bigger than half the ring: cannot happen below Upstox's caps
            raise RuntimeError(f"{missed} updates overran the export's ring; raise ring_capacity")
        if len(records):
            parts.append(records)

    _Player(capture, decoder).play(max_updates=ring_capacity // 2, drain=drain)
    drain()
    records = np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)
    keys = pa.array(decoder.store.instruments, pa.string())
    columns = {"instrument_key": pa.DictionaryArray.from_arrays(
        pa.array(records["row"].astype(np.int32)), keys)}
    for name in RECORD_DTYPE.names:
        columns[name] = pa.array(records[name])
    return pa.table(columns, metadata=capture.metadata)


def to_parquet(path: Path, out: Path, **write_options: Any) -> None:
    """``to_arrow(path)`` written to the Parquet file `out` (zstd unless told otherwise)."""
    import pyarrow.parquet as pq

    write_options.setdefault("compression", "zstd")
    pq.write_table(to_arrow(path), out, **write_options)
