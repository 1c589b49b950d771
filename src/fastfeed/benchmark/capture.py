"""Capture benchmarks: replay rate against decoding the same payloads from memory, and bytes on
disk per update against the raw frame bytes.

The frames are seeded ``full`` frames (5 depth levels, OHLC) over 200 instruments, each with its
own prices, so that compression sees realistic, not repeated, data. Three paths decode the same
frames into a fresh decoder each round, best of ``rounds``:

- ``memory``: the C replay loop over one uncompressed in-memory Arrow batch (decode alone);
- ``replay``: ``fastfeed.capture.replay(path)`` (read, decompress, decode);
- ``decode()``: a Python loop calling ``FeedDecoder.decode(bytes)`` per frame.

    python -m fastfeed.benchmark.capture      # unpinned: replay decompresses on a second core
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from fastfeed._decode import FeedDecoder
from fastfeed._replay import feed_frames
from fastfeed._tap import FRAME
from fastfeed.benchmark.frames import frame, instrument_keys
from fastfeed.capture import replay
from fastfeed.capture.file import column_buffers, pyarrow, schema
from fastfeed.capture.recorder import Recorder


def make_frames(n: int, instruments: int = 200, per_frame: int = 1, mode: str = "full") -> list[bytes]:
    keys = instrument_keys(instruments)
    out = []
    for i in range(n):
        start = (i * per_frame) % instruments
        out.append(frame([keys[(start + j) % instruments] for j in range(per_frame)], mode,
                         seed=i, live=i > 0))
    return out


def write_capture(path: str, payloads: list[bytes], compression: str) -> dict[str, Any]:
    """A capture of `payloads` written through the recording path (tap, writer thread)."""
    recorder = Recorder(path, feed="market", url="ws://127.0.0.1/v3/feed/market-data-feed",
                        subscriptions={}, compression=compression, max_bytes=1 << 30)
    t = time.time_ns()
    for i, p in enumerate(payloads):
        recorder.tap.add(FRAME, p, t + i * 1000)
        if recorder.tap.pending_chunks > 8:  # a benchmark must not drop: let the writer catch up
            time.sleep(0.001)
    return recorder.close()


def _memory_batch(payloads: list[bytes]) -> Any:
    pa = pyarrow()
    n = len(payloads)
    t = time.time_ns()
    return pa.RecordBatch.from_arrays([
        pa.array([t + i * 1000 for i in range(n)], pa.int64()),
        pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int8()), pa.array(["frame", "request", "gap"])),
        pa.array(payloads, pa.binary())], schema=schema({}))


def _best(fn: Any, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(frames: int = 200_000, per_frame: int = 1, rounds: int = 5,
        compressions: tuple[str, ...] = ("zstd", "lz4")) -> dict[str, Any]:
    payloads = make_frames(frames, per_frame=per_frame)
    raw = sum(len(p) for p in payloads)
    updates = frames * per_frame
    batch = _memory_batch(payloads)
    recv, kind, offsets, data = column_buffers(batch)

    def from_memory() -> None:
        feed_frames(FeedDecoder(), recv, kind, offsets, data, 0, frames)

    def python_loop() -> None:
        d = FeedDecoder()
        for p in payloads:
            d.decode(p)

    out: dict[str, Any] = {"frames": frames, "updates": updates, "raw_bytes": raw,
                           "raw_bytes_per_update": raw / updates}
    out["memory_s"] = _best(from_memory, rounds)
    out["decode_loop_s"] = _best(python_loop, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        for comp in compressions:
            path = os.path.join(tmp, f"bench-{comp}.arrows")
            write_capture(path, payloads, comp)
            size = os.path.getsize(path)
            check = replay(path)
            assert check.frames == frames and check.updates == updates
            seconds = _best(lambda: replay(path), rounds)
            out[comp] = {"file_bytes": size, "bytes_per_update": size / updates,
                         "replay_s": seconds, "replay_vs_memory": out["memory_s"] / seconds,
                         "replay_updates_per_s": updates / seconds}
    return out


def format_result(r: dict[str, Any]) -> str:
    lines = [f"{r['frames']:,} full frames ({r['updates']:,} updates), "
             f"{r['raw_bytes_per_update']:.0f} raw bytes per update",
             f"{'path':<22}{'updates/s':>14}{'vs memory':>11}{'bytes/update':>14}{'vs raw':>8}",
             f"{'memory (C loop)':<22}{r['updates'] / r['memory_s']:>14,.0f}{'1.00':>11}"
             f"{r['raw_bytes_per_update']:>14.1f}{'1.00':>8}",
             f"{'decode() per frame':<22}{r['updates'] / r['decode_loop_s']:>14,.0f}"
             f"{r['memory_s'] / r['decode_loop_s']:>11.2f}{'-':>14}{'-':>8}"]
    for comp in ("zstd", "lz4"):
        if comp in r:
            c = r[comp]
            lines.append(f"{'replay, ' + comp:<22}{c['replay_updates_per_s']:>14,.0f}"
                         f"{c['replay_vs_memory']:>11.2f}{c['bytes_per_update']:>14.1f}"
                         f"{c['bytes_per_update'] / r['raw_bytes_per_update']:>8.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_result(run()))
