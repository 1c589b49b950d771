"""Recorder: a capture file being written, fed by a FrameTap, written by its own thread or process.

The feed's receive path only copies each message into the tap's C chunks (see ``_tap.pyx``).
With ``writer="thread"`` this module's writer thread takes whole chunks, hands their arrays to
pyarrow without a copy, and pyarrow compresses and writes them as one record batch (with the GIL
released). With ``writer="process"`` a thread that never takes the GIL moves the chunks into a
ring in shared memory and a writer process does the same there (see ``_spool.pyx``): the
compression, about as costly as receiving, then runs under a GIL of its own. A batch reaches
the operating system when written, so a crash of the process loses only what was still in the
chunks: at most one flush interval's worth, or the chunks the writer was behind by (with a
writer process, what had reached the ring is still written and the file finished).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Iterable

from fastfeed._tap import FrameTap
from fastfeed.events import Gap

from .file import COMPRESSIONS, GAP, KINDS, REQUEST, Path, proto_schema_hash, public_url, pyarrow, schema

log = logging.getLogger(__name__)

_open: "weakref.WeakSet[Recorder]" = weakref.WeakSet()


def _cpu_set(cpus: Iterable[int] | None) -> frozenset[int] | None:
    """`cpus` checked: a non-empty set of this machine's CPU numbers, or None."""
    if cpus is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("writer_cpus needs os.sched_setaffinity (Linux)")
    try:
        chosen = frozenset(cpus)
    except TypeError:
        raise TypeError(f"writer_cpus must be an iterable of CPU numbers, not {cpus!r}") from None
    count = os.cpu_count() or 1
    if not chosen or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < count
                             for c in chosen):
        raise ValueError(f"writer_cpus must be CPU numbers from 0 to {count - 1}, not {cpus!r}")
    return chosen


WRITERS = ("thread", "process")


def chunk_batch(pa: Any, sch: Any, kinds: Any, n: int, recv: Any, kind: Any, offsets: Any,
                data: Any) -> Any:
    """A record batch over one chunk's arrays (buffers, not copied)."""
    return pa.RecordBatch.from_arrays([
        pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(recv)]),
        pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int8(), n, [None, pa.py_buffer(kind)]), kinds),
        pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]),
    ], schema=sch)


def new_stream(pa: Any, path: str, sch: Any, compression: str) -> tuple[Any, Any]:
    """The file and its Arrow IPC stream writer."""
    sink = pa.OSFile(path, "wb")
    # Compression runs in the writer itself, not in Arrow's thread pool: its cost is then where
    # the writer is, and visible as the writer's.
    options = pa.ipc.IpcWriteOptions(compression=compression, use_threads=False)
    try:
        return sink, pa.ipc.new_stream(sink, sch, options=options)
    except BaseException:
        sink.close()
        raise


def _fastfeed_version() -> str:
    try:
        return version("fastfeed")
    except PackageNotFoundError:
        return "unknown"


class Recorder:
    """Writes one capture file. ``tap`` goes to the feed's listener; ``close()`` finishes the file.

    ``compression``: "lz4" (the default: replays at memory speed) or "zstd" (a few per cent
    smaller, but decompressing costs about as much as decoding).
    ``chunk_bytes``/``max_bytes``: the tap's chunk size and its memory bound (past it, messages
    are dropped and counted rather than the receive path waiting). ``flush_interval``: the
    longest a recorded message waits in memory before it is written.
    ``writer_cpus``: CPU numbers the writer thread is pinned to (Linux), e.g. ``{1}`` when the
    feed's process is pinned to CPU 0. Compression costs more per frame than decoding (lz4 runs
    at a few hundred MB/s on frames of live prices), so a writer sharing the receiving core
    takes that time from the feed; placed on another core it does not. None: wherever the
    process may run (the operating system moves it to an idle core unless the process is
    pinned).
    ``writer``: "thread" (the default) or "process". A writer thread on another core still
    needs the GIL at each pyarrow call, and each time the receiving thread is stopped to hand
    it over; at a few hundred thousand frames per second that costs the feed more than the
    compression would. A writer process (``writer_cpus`` pins it and the thread that feeds it)
    has its own: half of ``max_bytes`` is then the tap, half the ring in shared memory.
    """

    def __init__(self, path: Path, *, feed: str, url: str, subscriptions: Any,
                 compression: str = "lz4", chunk_bytes: int = 4 << 20, max_bytes: int = 64 << 20,
                 flush_interval: float = 0.25, writer_cpus: Iterable[int] | None = None,
                 writer: str = "thread") -> None:
        if writer not in WRITERS:
            raise ValueError(f"writer must be one of {WRITERS}, not {writer!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be positive, not {flush_interval}")
        self.writer_cpus = _cpu_set(writer_cpus)
        pa = pyarrow()
        self._pa = pa
        self.path = os.fspath(path)
        self.flush_interval = flush_interval
        self.writer = writer
        self.tap = FrameTap(chunk_bytes, max_bytes if writer == "thread" else max_bytes // 2)
        self.started_ns = time.time_ns()
        self.metadata = {
            "fastfeed_version": _fastfeed_version(), "proto_schema_hash": proto_schema_hash(),
            "feed": feed, "feed_url": public_url(url),
            "subscriptions": json.dumps(subscriptions, sort_keys=True),
            "compression": compression, "started_ns": str(self.started_ns),
        }
        self._batches = 0
        self._file_bytes: int | None = None  # known once finished; os.path.getsize until then
        self._error: BaseException | None = None
        self._closed = False
        self._spool: Any = None
        if writer == "process":
            pa.OSFile(self.path, "wb").close()  # an unwritable path raises here, as for a thread
            # The ring holds any chunk the tap's half can make, with its record's framing.
            self._start_process(compression, max_bytes - max_bytes // 2 + 4096)
            target = self._forward
        else:   # the writer process makes its own schema and dictionary
            self._schema = schema(self.metadata)
            self._kinds = pa.array(KINDS, pa.string())
            self._sink, self._writer = new_stream(pa, self.path, self._schema, compression)
            target = self._run
        self._thread = threading.Thread(target=target, name="fastfeed-recorder", daemon=True)
        self._thread.start()
        _open.add(self)

    def _start_process(self, compression: str, ring_bytes: int) -> None:
        from multiprocessing import shared_memory

        from fastfeed.capture._spool import HEADER_BYTES, Spool

        size = HEADER_BYTES + ring_bytes - ring_bytes % 8
        self._shm = shared_memory.SharedMemory(create=True, size=size)
        try:
            if hasattr(os, "posix_fallocate"):
                # Reserve the pages now: a full /dev/shm is an error here, not a SIGBUS later.
                os.posix_fallocate(self._shm._fd, 0, size)  # type: ignore[attr-defined]
            self._spool = Spool(self._shm.buf)
            self._spool.beat()   # the writer beats from its first turn on
            spec = {"shm": self._shm.name, "path": self.path, "compression": compression,
                    "metadata": self.metadata, "parent": os.getpid(),
                    "cpus": sorted(self.writer_cpus) if self.writer_cpus is not None else None}
            self._process = subprocess.Popen(
                [sys.executable, "-m", "fastfeed.capture.spool_writer", json.dumps(spec)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            self._release_spool()
            raise

    def _release_spool(self) -> None:
        if self._spool is not None:
            self._spool.release_buffer()
        self._shm.close()
        self._shm.unlink()

    # -- the feed's side ---------------------------------------------------------------------------
    def request(self, payload: bytes) -> None:
        """A request the feed sent (subscribe, unsubscribe, change mode)."""
        self.tap.add(REQUEST, payload)

    def gap(self, gap: Gap) -> None:
        """The connection was down from ``gap.stopped_ns`` to ``gap.restarted_ns``."""
        self.tap.add(GAP, json.dumps({"reason": "reconnect", "stopped_ns": gap.stopped_ns,
                                      "restarted_ns": gap.restarted_ns,
                                      "attempts": gap.attempts}).encode())

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """Why the recording stopped (a write that failed), or None."""
        if self._error is None and self._spool is not None and self._spool.error is not None:
            self._error = OSError(f"the writer process failed: {self._spool.error}")
        return self._error

    @property
    def ready(self) -> bool:
        """The writer takes messages: always for a thread; for a process, once it has started
        (about half a second: until then messages wait in memory, up to ``max_bytes``)."""
        spool = self._spool
        return spool is None or spool.ready or spool.done

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until ``ready`` (or `timeout` seconds); whether it is."""
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.ready

    @property
    def batches(self) -> int:
        """Record batches written so far."""
        return int(self._spool.batches) if self._spool is not None else self._batches

    def close(self, timeout: float = 30.0) -> dict[str, Any]:
        """Stop taking messages, write what is left, end the stream; returns ``stats()``. Never
        raises for the disk's sake: a write that failed is logged and kept in ``error``."""
        if not self._closed:
            self._closed = True
            self.tap.close()
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: the writer did not finish within %.1f s", self.path, timeout)
            elif self._spool is not None:
                self._finish_process(timeout)
            else:
                try:
                    self._finish()
                except Exception as exc:  # a full disk: the file reads up to its last batch
                    self._error = self._error or exc
                    log.error("%s: finishing the file failed: %s", self.path, exc)
            _open.discard(self)
        return self.stats()

    def stats(self) -> dict[str, Any]:
        """Records and bytes taken, dropped (the writer was too far behind), batches and bytes
        written."""
        tap = self.tap
        return {"path": self.path, "records": tap.records, "bytes": tap.bytes,
                "dropped": tap.dropped, "batches": self.batches, "file_bytes": self.file_bytes,
                "buffer_bytes": tap.allocated_bytes, "closed": self._closed,
                "error": repr(self.error) if self.error is not None else None}

    def __repr__(self) -> str:
        return f"<Recorder {self.path} records={self.tap.records} batches={self.batches}>"

    # -- the writer thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        if self.writer_cpus is not None:
            try:
                os.sched_setaffinity(0, self.writer_cpus)  # 0: this thread, on Linux
            except OSError as exc:  # a cpuset without them: record anyway, wherever it runs
                log.warning("%s: could not pin the writer to CPUs %s: %s", self.path,
                            sorted(self.writer_cpus), exc)
        tap = self.tap
        interval = self.flush_interval
        next_flush = time.monotonic() + interval
        try:
            while True:
                closed = tap.closed
                now = time.monotonic()
                due = closed or now >= next_flush
                cids = self._take(due)
                if cids:
                    self._write(cids)
                    continue
                if closed:
                    gap = tap.tail_gap()  # drops after the last message that fitted
                    if gap is not None:
                        self._write_gap(gap)
                    return
                if due:
                    next_flush = now + interval
                tap.wait(max(0.0, next_flush - time.monotonic()))
        except BaseException as exc:  # a full disk, say: stop taking messages, keep the feed going
            self._error = exc
            tap.close()
            log.error("%s: recording stopped: %s", self.path, exc)

    def _take(self, flush: bool) -> list[int]:
        """Every chunk ready to write, oldest first: the full ones, and with `flush` the partly
        filled active one too."""
        tap = self.tap
        cids = []
        while (cid := tap.take(False)) >= 0:
            cids.append(cid)
        if flush and (cid := tap.take(True)) >= 0:
            cids.append(cid)
            while (cid := tap.take(False)) >= 0:  # held behind an older one that raced in
                cids.append(cid)
        return cids

    def _write(self, cids: list[int]) -> None:
        """Write chunks `cids` as one record batch each, in one call: pyarrow compresses and
        writes them with the GIL released, and this thread takes the GIL back once for them
        all (each time it does, it may wait for the receiving thread to let go of it)."""
        pa = self._pa
        try:
            batches = [chunk_batch(pa, self._schema, self._kinds, *self.tap.buffers(cid))
                       for cid in cids]
            self._writer.write_table(pa.Table.from_batches(batches, schema=self._schema))
            del batches
        finally:
            for cid in cids:
                self.tap.give_back(cid)
        self._batches += len(cids)

    # -- writer="process": the forwarding thread, and the end ------------------------------------
    def _forward(self) -> None:
        if self.writer_cpus is not None:
            try:
                os.sched_setaffinity(0, self.writer_cpus)
            except OSError as exc:
                log.warning("%s: could not pin the writer to CPUs %s: %s", self.path,
                            sorted(self.writer_cpus), exc)
        spool, tap = self._spool, self.tap
        went = spool.forward(tap, self.flush_interval)   # without the GIL, until tap.close()
        if went:
            gap = tap.tail_gap()  # drops after the last message that fitted
            went = gap is None or spool.put_message(GAP, time.time_ns(), gap)
        if not went:  # the writer process is gone: stop taking messages, keep the feed going
            tap.close()
            log.error("%s: recording stopped: %s", self.path,
                      self.error or "the writer process is gone")
        spool.close()

    def _finish_process(self, timeout: float) -> None:
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s: the writer process did not finish within %.1f s", self.path, timeout)
            self._process.kill()
            self._process.wait()
        spool = self._spool
        self._error = self.error   # the process's, read while the spool is there
        if self._error is None and not spool.done:
            self._error = OSError(f"the writer process ended with {self._process.returncode} "
                                  "before finishing the file")
        self._batches = int(spool.batches)
        self._file_bytes = int(spool.file_bytes) if spool.done else None
        self._release_spool()
        self._spool = None

    @property
    def file_bytes(self) -> int:
        """Bytes in the file so far (all of it once closed)."""
        if self._file_bytes is None:
            try:
                return os.path.getsize(self.path)
            except OSError:
                return 0
        return self._file_bytes

    def _write_gap(self, payload: bytes) -> None:
        pa = self._pa
        self._writer.write_batch(pa.RecordBatch.from_arrays([
            pa.array([time.time_ns()], pa.int64()),
            pa.DictionaryArray.from_arrays(pa.array([GAP], pa.int8()), self._kinds),
            pa.array([payload], pa.binary())], schema=self._schema))
        self._batches += 1

    def _finish(self) -> None:
        try:
            self._writer.close()
            self._file_bytes = self._sink.tell()
        finally:
            self._sink.close()


@atexit.register
def _close_open_recorders() -> None:
    # A script that forgot to stop still gets a whole file (a crash would lose the last batch).
    for recorder in list(_open):
        recorder.close(timeout=5.0)
