"""The portfolio feed records the same way; the recording tap's memory bound and drop policy."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fastfeed.capture as capture
from fastfeed import CaptureError, PortfolioFeed
from fastfeed._tap import FRAME, GAP, REQUEST, FrameTap
from fastfeed.portfolio.decode import decode_update

from capture_helpers import TOKEN, wait


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_portfolio_recording(sim: Any, tmp_path: Path, writer: str) -> None:
    path = tmp_path / "portfolio.arrows"
    seen: list[Any] = []
    if writer == "thread":   # record= at construction
        feed = PortfolioFeed(TOKEN, url=sim.portfolio_url, order=True, position=True, record=path)
    else:
        feed = PortfolioFeed(TOKEN, url=sim.portfolio_url, order=True, position=True)
        feed.record(path, writer=writer)
    feed.on_update(seen.append)
    feed.start(timeout=20)
    try:
        wait(lambda: len(seen) >= 100, what="100 portfolio updates")
    finally:
        feed.stop()
    assert feed.recording is None
    data = path.read_bytes()
    assert TOKEN.encode() not in data
    info = capture.info(path)
    assert info["metadata"]["feed"] == "portfolio" and info["complete"]
    assert json.loads(info["metadata"]["subscriptions"]) == ["order", "position"]
    assert "update_types" not in info["metadata"]["feed_url"]  # no query in the file
    frames = list(capture.frames(path))
    assert len(frames) == len(seen)
    assert [decode_update(p) for _, p in frames] == seen


def test_a_portfolio_capture_is_not_replayed_as_market_data(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.arrows"
    feed = PortfolioFeed(TOKEN, url=sim.portfolio_url, record=path)
    feed.start(timeout=20)
    feed.stop()
    with pytest.raises(CaptureError, match="portfolio"):
        capture.replay(path)


def _drain(tap: FrameTap) -> list[tuple[int, int, bytes]]:
    out = []
    while (cid := tap.take(flush=True)) >= 0:
        n, recv, kind, offsets, data = tap.buffers(cid)
        rv = memoryview(recv).cast("q")
        kv = memoryview(kind).cast("b")
        ov = memoryview(offsets).cast("i")
        out += [(rv[i], kv[i], bytes(data[ov[i]:ov[i + 1]])) for i in range(n)]
        tap.give_back(cid)
    return out


def test_tap_drops_and_counts_past_its_bound_then_marks_the_gap() -> None:
    tap = FrameTap(chunk_bytes=4096, max_bytes=12_000)  # two chunks
    payload = b"x" * 1000
    for i in range(40):  # nobody writes: room for eight
        tap.add(FRAME, payload, recv_ns=1000 + i)
    assert tap.records == 8 and tap.dropped == 32 and tap.dropped_bytes == 32_000
    assert tap.allocated_bytes <= 12_000
    kept = _drain(tap)
    assert [r[2] for r in kept] == [payload] * tap.records
    tap.add(REQUEST, b"{}", recv_ns=5000)
    after = _drain(tap)
    assert [k for _, k, _ in after] == [GAP, REQUEST]
    gap = json.loads(after[0][2])
    assert gap == {"reason": "recording_overflow", "dropped": tap.dropped,
                   "stopped_ns": 1008, "restarted_ns": 5000}  # the first one dropped
    assert tap.tail_gap() is None  # only once closed
    for i in range(40):  # fill up again, and drop at the very end
        tap.add(FRAME, payload, recv_ns=6000 + i)
    tap.close()
    tap.add(FRAME, payload)
    assert len(_drain(tap)) == 8 and tap.closed
    assert json.loads(tap.tail_gap()) == {"reason": "recording_overflow", "dropped": 32,
                                          "stopped_ns": 6008, "restarted_ns": None}
    assert tap.tail_gap() is None


def test_tap_refuses_a_bound_below_two_chunks() -> None:
    with pytest.raises(ValueError):
        FrameTap(chunk_bytes=4096, max_bytes=8192)


def test_tap_takes_a_message_bigger_than_a_chunk() -> None:
    tap = FrameTap(chunk_bytes=4096, max_bytes=64 << 10)
    big = bytes(range(256)) * 40  # 10 KB
    tap.add(FRAME, b"small", recv_ns=1)
    tap.add(FRAME, big, recv_ns=2)
    assert [(t, p) for t, _, p in _drain(tap)] == [(1, b"small"), (2, big)]
    assert tap.dropped == 0


def test_an_unwritable_file_is_a_clear_error_and_changes_nothing(sim: Any, tmp_path: Path) -> None:
    from fastfeed import MarketFeed

    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=["NSE_EQ|INE002A01018"])
    with pytest.raises(OSError):
        feed.record(tmp_path / "no-such-dir" / "x.arrows")
    assert feed.recording is None
    with pytest.raises(ValueError):
        feed.record(tmp_path / "x.arrows", compression="gzip")
    assert feed.recording is None and not (tmp_path / "x.arrows").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_full_disk_stops_the_recording_not_the_feed(sim: Any, writer: str) -> None:
    from fastfeed import MarketFeed

    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=["NSE_EQ|INE002A01018"], mode="full")
    feed.start(timeout=20)
    try:
        recorder = feed.record("/dev/full", flush_interval=0.05, writer=writer)
        wait(lambda: recorder.error is not None, what="the write to fail")
        frames = feed.decoder.frames
        wait(lambda: feed.decoder.frames > frames + 20, what="the feed to go on")
        stats = feed.stop_recording()
    finally:
        feed.stop()
    assert stats is not None and "No space" in (stats["error"] or "")


def test_recording_memory_is_bounded_at_full_speed(tmp_path: Path) -> None:
    # The simulator's benchmark mode pushes as fast as the socket drains: the writer may fall
    # behind, memory may not grow past the bound, and no Python block is kept per frame.
    import gc
    import sys

    from fastfeed import MarketFeed, ReconnectPolicy
    from fastfeed.sim import SimulatorThread

    with SimulatorThread(tokens=[TOKEN], bench=True, instruments=50, instruments_per_frame=2,
                         ping_interval=None) as sim:
        feed = MarketFeed(TOKEN, url=sim.market_url, instruments=sim.instruments, mode="full",
                          reconnect=ReconnectPolicy.disabled(), ping_interval=None)
        feed.start(timeout=20)
        try:
            recorder = feed.record(tmp_path / "fast.arrows", max_bytes=16 << 20)
            wait(lambda: recorder.tap.records >= 20_000, what="warm-up")
            gc.collect()
            before, blocks = recorder.tap.records + recorder.tap.dropped, sys.getallocatedblocks()
            wait(lambda: recorder.tap.records + recorder.tap.dropped >= before + 100_000,
                 timeout=60, what="100k frames")
            gc.collect()
            grown = sys.getallocatedblocks() - blocks
            assert grown < 2_000, f"{grown} blocks"
            assert recorder.tap.allocated_bytes <= 16 << 20
            stats = feed.stop_recording()
        finally:
            feed.stop()
    assert stats is not None and stats["error"] is None
    kinds = [k for _, k, _ in capture.records(tmp_path / "fast.arrows")]
    assert kinds.count("frame") + stats["dropped"] >= 100_000
    assert (stats["dropped"] > 0) == ("gap" in kinds)  # a drop is always marked in the file
