"""The recorder's writer thread: its placement (``writer_cpus``) and the order it writes in."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import fastfeed.capture as capture
from fastfeed import MarketFeed
from fastfeed._tap import FRAME
from fastfeed.capture.recorder import Recorder

from capture_helpers import TOKEN, wait

URL = "ws://127.0.0.1/v3/feed/market-data-feed"
pinning = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux thread affinity")


@pinning
def test_writer_cpus_pins_only_the_writer_thread(sim: Any, tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=["NSE_EQ|INE002A01018"], mode="full")
    feed.start(timeout=20)
    try:
        recorder = feed.record(tmp_path / "pinned.arrows", writer_cpus=[cpu])
        assert recorder.writer_cpus == frozenset({cpu})
        writer = recorder._thread
        assert writer.name == "fastfeed-recorder" and writer.is_alive()
        assert writer.native_id is not None
        wait(lambda: os.sched_getaffinity(writer.native_id) == {cpu}, what="the writer pinned")
        # The tap is attached on the feed's loop, a moment after record() returns: count what
        # the recording took, not what the feed received.
        wait(lambda: recorder.tap.records > 50, what="frames while recording")
        stats = feed.stop_recording()
    finally:
        feed.stop()
    assert os.sched_getaffinity(0) == before  # the feed's own thread is left where it was
    assert stats is not None and stats["records"] > 50 and stats["error"] is None
    counts = capture.info(tmp_path / "pinned.arrows")["counts"]
    assert sum(counts.values()) == stats["records"] and counts["frame"] > 50


@pytest.mark.parametrize("cpus, error", [([], ValueError), ([-1], ValueError),
                                         ([os.cpu_count() or 1], ValueError), (["0"], ValueError),
                                         ([True], ValueError), (3, TypeError)])
def test_writer_cpus_must_be_this_machines_cpus(tmp_path: Path, cpus: Any, error: type) -> None:
    path = tmp_path / "never.arrows"
    with pytest.raises(error, match="writer_cpus"):
        Recorder(path, feed="market", url=URL, subscriptions={}, writer_cpus=cpus)
    assert not path.exists()  # nothing was opened


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_chunks_are_written_in_the_order_they_filled(tmp_path: Path, writer: str) -> None:
    # Small chunks and a flush every millisecond: the writer keeps taking the partly filled
    # chunk while this thread fills new ones, and several ready chunks go out in one write.
    path = tmp_path / "order.arrows"
    recorder = Recorder(path, feed="market", url=URL, subscriptions={}, chunk_bytes=4096,
                        max_bytes=1 << 20, flush_interval=0.001, writer=writer)
    assert recorder.wait_ready()
    payloads = [bytes([i % 251]) * (40 + i % 200) for i in range(20_000)]
    for i, p in enumerate(payloads):
        recorder.tap.add(FRAME, p, i + 1)
    stats = recorder.close()
    assert stats["error"] is None and stats["batches"] > 10
    got = list(capture.frames(path))
    kept = stats["records"]
    assert len(got) == kept and kept + stats["dropped"] == len(payloads)
    times = [t for t, _ in got]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(p == payloads[t - 1] for t, p in got)
