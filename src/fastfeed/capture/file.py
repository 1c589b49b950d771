"""The capture file: an Arrow IPC stream of records, read back without fastfeed if need be.

Columns: ``recv_ns`` (int64, wall-clock receive time in ns), ``kind`` (dictionary of ``frame``,
``request``, ``gap``) and ``payload`` (binary: a frame exactly as received, a request as sent, a
gap as JSON). Schema metadata: ``fastfeed_version``, ``proto_schema_hash``, ``feed`` (market or
portfolio), ``feed_url`` (no credentials, no query), ``subscriptions`` (JSON, at the start),
``compression`` and ``started_ns``.

The stream format is written batch by batch, so a file cut short (a crash, a full disk) still
reads up to its last whole batch: the reader stops quietly at a torn tail.

This module needs only pyarrow and the standard library (the simulator reads captures with it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from fastfeed.errors import CaptureError

log = logging.getLogger(__name__)

#: Record kinds, in the order of the ``kind`` dictionary (the recording tap's codes).
KINDS = ("frame", "request", "gap")
FRAME, REQUEST, GAP = range(3)
COMPRESSIONS = ("zstd", "lz4")
COLUMNS = ("recv_ns", "kind", "payload")

Path = str | os.PathLike[str]


def pyarrow() -> Any:
    """The pyarrow module, or CaptureError naming the extra that installs it."""
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise CaptureError("captures need pyarrow: pip install 'fastfeed[capture]'") from None
    return pa


def schema(metadata: dict[str, str]) -> Any:
    pa = pyarrow()
    return pa.schema([
        pa.field("recv_ns", pa.int64(), nullable=False),
        pa.field("kind", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
    ], metadata=metadata)


def proto_schema_hash() -> str:
    """sha256 of the market feed's serialized proto file descriptor (what the frames follow)."""
    from fastfeed.proto import fastfeed_market_v3_pb2 as pb
    return "sha256:" + hashlib.sha256(pb.DESCRIPTOR.serialized_pb).hexdigest()


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: nothing secret goes into a file."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class Capture:
    """An open capture: its metadata, and its record batches read one at a time."""

    path: str
    metadata: dict[str, str]
    _reader: Any

    @property
    def feed(self) -> str:
        return self.metadata.get("feed", "")

    @property
    def subscriptions(self) -> Any:
        return json.loads(self.metadata.get("subscriptions", "null"))

    def batches(self) -> Iterator[Any]:
        """Record batches in file order; stops at a torn tail (logged at INFO)."""
        pa = pyarrow()
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError, EOFError) as exc:
                log.info("%s: stopped at a torn tail (%s)", self.path, exc)
                return
            yield batch

    def batches_ahead(self, depth: int = 2) -> Iterator[Any]:
        """As ``batches()``, read and decompressed by a helper thread up to `depth` batches
        ahead (pyarrow does it without the GIL), so that on a second core decompression overlaps
        the caller's decoding. Memory stays bounded by `depth` batches."""
        ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for batch in self.batches():
                    if not put(batch):
                        return
                put(_END)
            except BaseException as exc:  # handed to the caller's thread
                put(_Failed(exc))

        reader = threading.Thread(target=read, name="fastfeed-capture-reader", daemon=True)
        reader.start()
        try:
            while True:
                item = ahead.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            stop.set()
            reader.join()


_END = object()


@dataclass(frozen=True, slots=True)
class _Failed:
    exc: BaseException


def open_capture(path: Path, feed: str | None = None) -> Capture:
    """Open `path` for reading. CaptureError if it is not a capture (of `feed`, when given)."""
    pa = pyarrow()
    name = os.fspath(path)
    try:
        reader = pa.ipc.open_stream(pa.memory_map(name))
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise CaptureError(f"{name}: not a capture, or cut before its schema ({exc})") from None
    if tuple(reader.schema.names) != COLUMNS:
        raise CaptureError(f"{name}: not a fastfeed capture (columns {reader.schema.names})")
    meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
    capture = Capture(name, meta, reader)
    if feed is not None and capture.feed != feed:
        raise CaptureError(f"{name}: a {capture.feed or 'unknown'} feed capture, not a {feed} one")
    return capture


def column_buffers(batch: Any) -> tuple[Any, Any, Any, Any]:
    """``(recv_ns, kind indices, payload offsets, payload data)`` buffers of a record batch, with
    zero offsets (sliced batches are copied once so that they have)."""
    recv, kind, payload = batch.column(0), batch.column(1), batch.column(2)
    if recv.offset or kind.offset or payload.offset:
        pa = pyarrow()
        recv, kind, payload = (pa.concat_arrays([a]) for a in (recv, kind, payload))
    data = payload.buffers()[2]
    return recv.buffers()[1], kind.indices.buffers()[1], payload.buffers()[1], \
        data if data is not None else b""


def frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(recv_ns, payload)`` of every frame in `path`, in the order received."""
    import numpy as np

    for batch in open_capture(path).batches():
        n = batch.num_rows
        if not n:
            continue
        recv, kind, offsets, data = column_buffers(batch)
        rv = np.frombuffer(recv, dtype=np.int64, count=n).tolist()
        kv = np.frombuffer(kind, dtype=np.int8, count=n)
        ov = np.frombuffer(offsets, dtype=np.int32, count=n + 1).tolist()
        mv = memoryview(data)
        for i in np.flatnonzero(kv == FRAME).tolist():
            yield rv[i], bytes(mv[ov[i]:ov[i + 1]])


def records(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """``(recv_ns, kind, payload)`` of every record, requests and gaps included."""
    for batch in open_capture(path).batches():
        rows = batch.to_pydict()
        yield from zip(rows["recv_ns"], rows["kind"], rows["payload"])


def info(path: Path) -> dict[str, Any]:
    """Metadata, time range, counts by kind, bytes, batches, and whether the tail was torn."""
    import numpy as np

    capture = open_capture(path)
    counts = dict.fromkeys(KINDS, 0)
    first = last = None
    payload_bytes = batches = 0
    for batch in capture.batches():
        batches += 1
        n = batch.num_rows
        if not n:
            continue
        recv, kind, offsets, _ = column_buffers(batch)
        rv = np.frombuffer(recv, dtype=np.int64, count=n)
        found = np.bincount(np.frombuffer(kind, dtype=np.int8, count=n), minlength=len(KINDS))
        for k, c in zip(KINDS, found.tolist()):
            counts[k] += c
        lo, hi = int(rv.min()), int(rv.max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
        ov = np.frombuffer(offsets, dtype=np.int32, count=n + 1)
        payload_bytes += int(ov[n] - ov[0])
    file_bytes = os.path.getsize(capture.path)
    # A whole stream ends with its end-of-stream marker: 0xFFFFFFFF then a zero length.
    with open(capture.path, "rb") as f:
        f.seek(max(0, file_bytes - 8))
        complete = f.read(8) == b"\xff\xff\xff\xff\x00\x00\x00\x00"
    return {"path": capture.path, "metadata": capture.metadata, "first_ns": first, "last_ns": last,
            "seconds": (last - first) / 1e9 if first is not None else 0.0, "counts": counts,
            "payload_bytes": payload_bytes, "file_bytes": file_bytes, "batches": batches,
            "complete": complete}
