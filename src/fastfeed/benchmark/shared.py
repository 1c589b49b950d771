"""Delay from the hub's commit to a reader's read, in another process: shared memory (spinning
reader, polling reader) against a pyzmq PUB/SUB relay of the same updates, in one run.

The writer (this process) decodes a one-instrument ``ltpc`` frame at a steady rate, stamping it
with the wall clock just before the decode (the record's ``recv_ns``); each reader takes the wall
clock right after its read hands it the record. So every path's delay includes the same decode
(about 0.2 us) and the ZeroMQ relay also its send. The writer and the reader are pinned to
different cores when there are two. Readers run one at a time.

    python -m fastfeed bench --shared
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import struct
import time
import uuid
from typing import Any, Callable

import numpy as np

from fastfeed._decode import FeedDecoder
from fastfeed._store import RECORD_DTYPE
from fastfeed.benchmark.frames import frame, instrument_keys

BOOST = -15            # nice increment with boost=True (root or CAP_SYS_NICE)
WARMUP = 200            # samples dropped per path: connection set-up, cold caches
_CTX = multiprocessing.get_context("spawn")
_RECV_NS: int = RECORD_DTYPE.fields["recv_ns"][1]  # type: ignore[index]

PATHS = {
    "shm spin": "SharedFeed.reader(), read in a loop that never sleeps",
    "shm poll": "SharedFeed.updates(), polling every 1 ms (the default)",
    "zmq blocking": "pyzmq SUB over ipc://, blocking recv()",
    "zmq spin": "pyzmq SUB over ipc://, recv(NOBLOCK) in a loop that never sleeps",
}


def _pin(cpu: int | None, boost: bool = False) -> None:
    # Linux applies both to the calling thread only: threads started before (ZeroMQ's I/O
    # threads) keep every core and the ordinary priority.
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    if boost:
        try:  # a real-time class: no time-sharing task takes the core (the kernel keeps 5 %)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (AttributeError, OSError):
            os.nice(BOOST)


def _cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


# -- readers (each in its own process) -------------------------------------------------------------
def _shm_reader(name: str, n: int, spin: bool, cpu: int | None, boost: bool, conn: Any) -> None:
    from fastfeed import attach

    _pin(cpu, boost)
    feed = attach(name, timeout=30)
    lags: np.ndarray = np.empty(n + WARMUP, dtype=np.int64)
    got = 0
    conn.send("ready")
    if spin:
        reader = feed.reader()
        while got < len(lags):
            if reader.pending:
                records, _ = reader.read()
                now = time.time_ns()
                k = min(len(records), len(lags) - got)
                lags[got:got + k] = now - records["recv_ns"][:k]
                got += k
    else:
        async def poll() -> None:
            nonlocal got
            async for batch in feed.updates():
                now = time.time_ns()
                k = min(len(batch.records), len(lags) - got)
                lags[got:got + k] = now - batch.records["recv_ns"][:k]
                got += k
                if got >= len(lags):
                    return
        asyncio.run(poll())
    conn.send(lags[WARMUP:])


def _zmq_reader(endpoint: str, n: int, spin: bool, cpu: int | None, boost: bool,
                conn: Any) -> None:
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)  # its I/O thread starts here, before the pinning
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    _pin(cpu, boost)
    lags: np.ndarray = np.empty(n + WARMUP, dtype=np.int64)
    unpack = struct.Struct("<q").unpack_from
    conn.send("ready")
    got = 0
    while got < len(lags):
        if spin:
            try:
                message = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                continue
        else:
            message = sub.recv()
        now = time.time_ns()
        lags[got] = now - unpack(message, _RECV_NS)[0]
        got += 1
    sub.close(0)
    ctx.term()
    conn.send(lags[WARMUP:])


# -- the writer --------------------------------------------------------------------------------------
def _drive(decoder: FeedDecoder, rate: float, conn: Any, relay: Callable[[bytes], Any] | None,
           timeout: float = 120.0) -> np.ndarray:
    """Write paced updates until the reader sends its delays back."""
    frames = [frame(instrument_keys(1), "ltpc", seed=i) for i in range(64)]
    if not conn.poll(60) or conn.recv() != "ready":
        raise RuntimeError("the reader process did not start")
    period = int(1e9 / rate)
    next_t = time.perf_counter_ns()
    deadline = time.monotonic() + timeout
    i = 0
    while True:
        now = time.perf_counter_ns()
        while now < next_t:
            now = time.perf_counter_ns()
        # Descheduled for a while: go on from now rather than catch up in a burst.
        next_t = max(next_t, now - period) + period
        decoder.decode(frames[i & 63], time.time_ns())
        if relay is not None:
            relay(decoder.store.latest(1).tobytes())
        i += 1
        if i & 63 == 0:
            if conn.poll():
                lags: np.ndarray = conn.recv()
                return lags
            if time.monotonic() > deadline:
                raise TimeoutError("the reader did not finish")


def _row(path: str, lags: np.ndarray) -> dict[str, Any]:
    us = lags / 1e3
    p50, p99 = np.percentile(us, (50, 99))
    return {"path": path, "p50_us": float(p50), "p99_us": float(p99), "count": int(len(us))}


def _measure(target: Callable[..., None], args: tuple[Any, ...], decoder: FeedDecoder,
             rate: float, relay: Callable[[bytes], Any] | None = None) -> np.ndarray:
    parent, child = _CTX.Pipe()
    proc = _CTX.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    try:
        return _drive(decoder, rate, parent, relay)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def compare(samples: int = 5000, rate: float = 2000.0, boost: bool = False) -> list[dict[str, Any]]:
    """One row per path (PATHS): p50 and p99 delay in microseconds.

    `boost`: run each reader's reading thread in the real-time class (SCHED_FIFO; needs root or
    CAP_SYS_NICE), as a desk gives a spinning reader a core of its own. On a loaded machine a
    spinning process otherwise loses its core for milliseconds at a time. ZeroMQ's I/O threads
    and the writer keep the ordinary priority. The kernel gives real-time tasks 0.95 s of each
    second, so with `boost` each reader takes at most 0.7 s of samples.
    """
    try:
        import zmq
    except ImportError:
        raise RuntimeError("the ZeroMQ relay needs pyzmq: pip install 'fastfeed[zmq]'") from None

    from fastfeed.shared.host import ShareHost

    if boost:
        samples = max(100, min(samples, int(0.7 * rate) - WARMUP))
    writer_cpu, reader_cpu = _cpus()
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    name = f"ffbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    endpoint = f"ipc:///tmp/{name}.zmq"
    host = ShareHost(name, 16, 1 << 12)
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)  # its I/O thread starts before the writer is pinned
    rows = []
    try:
        pub.bind(endpoint)
        _pin(writer_cpu)
        for path, spin in (("shm spin", True), ("shm poll", False)):
            lags = _measure(_shm_reader, (name, samples, spin, reader_cpu, boost), host.decoder,
                            rate)
            rows.append(_row(path, lags))
        relayed = FeedDecoder(16, 1 << 12)
        for path, spin in (("zmq blocking", False), ("zmq spin", True)):
            lags = _measure(_zmq_reader, (endpoint, samples, spin, reader_cpu, boost), relayed,
                            rate, pub.send)
            rows.append(_row(path, lags))
    finally:
        pub.close(0)
        ctx.term()
        host.close()
        if endpoint.startswith("ipc://") and os.path.exists(endpoint[6:]):
            os.unlink(endpoint[6:])
        if before is not None:
            os.sched_setaffinity(0, before)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    by_path = {r["path"]: r for r in rows}
    spin = by_path["shm spin"]["p50_us"]
    lines = [f"{'path':<14}{'p50 us':>9}{'p99 us':>9}{'p50 vs shm spin':>17}  how"]
    for r in rows:
        lines.append(f"{r['path']:<14}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}"
                     f"{r['p50_us'] / spin:>16.1f}x  {PATHS[r['path']]}")
    return "\n".join(lines)
