"""Recorder(writer="process"): a real writer process fed through shared memory. The file is the
same as a writer thread's, and a crash of the feed's process still leaves a finished file. (The
order of chunks, a full disk and the portfolio feed are checked for both writers in
test_writer.py and test_portfolio_and_tap.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import fastfeed.capture as capture
from fastfeed import MarketFeed
from fastfeed._tap import FRAME
from fastfeed.capture.recorder import Recorder

from capture_helpers import KEYS, TOKEN, wait

URL = "ws://127.0.0.1/v3/feed/market-data-feed"


def test_live_recording_replays_to_every_live_quote(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "process.arrows"
    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS, mode="full")
    recorder = feed.record(path, writer="process", flush_interval=0.02)
    assert recorder.writer == "process"
    shm = recorder._shm.name
    feed.start(timeout=20)
    try:
        wait(lambda: feed.decoder.updates >= 3000 and recorder.batches >= 5,
             what="updates, and batches written by the process")
    finally:
        feed.stop()   # the recording ends with the feed: every frame it received is in the file
    stats = recorder.stats()
    assert stats["closed"] and stats["error"] is None and stats["dropped"] == 0
    assert stats["file_bytes"] == path.stat().st_size and stats["batches"] >= 5
    kinds = [k for _, k, _ in capture.records(path)]
    assert len(kinds) == stats["records"] and kinds.count("request") >= 1
    assert kinds.count("frame") == feed.decoder.frames
    replayed = capture.replay(path)
    for key in KEYS:
        assert replayed.quote(key) == feed.quote(key), key   # every field, recv_ns included
    assert not os.path.exists(f"/dev/shm/{shm.lstrip('/')}")   # the ring is gone


def test_a_crash_of_the_feeds_process_still_leaves_a_finished_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.arrows"
    code = textwrap.dedent(f"""
        import os, time
        from fastfeed._tap import FRAME
        from fastfeed.capture.recorder import Recorder
        r = Recorder({str(path)!r}, feed="market", url={URL!r}, subscriptions={{}},
                     flush_interval=0.01, writer="process")
        for i in range(5000):
            r.tap.add(FRAME, b"frame %d" % i, i + 1)
        deadline = time.monotonic() + 30
        while r.batches == 0 or r._spool.pending_bytes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        print(r._process.pid, flush=True)
        os._exit(9)   # no close, no atexit: as a crash
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 9, out.stderr
    writer_pid = int(out.stdout.split()[0])
    wait(lambda: not os.path.exists(f"/proc/{writer_pid}") or
         open(f"/proc/{writer_pid}/stat").read().split()[2] == "Z", what="the writer to finish")
    got = list(capture.frames(path))   # a whole stream: its end marker was written
    assert [p for _, p in got] == [b"frame %d" % i for i in range(5000)]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_writer_cpus_pin_the_process_and_its_feeder(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    recorder = Recorder(tmp_path / "pinned.arrows", feed="market", url=URL, subscriptions={},
                        writer="process", writer_cpus=[cpu])
    try:
        wait(lambda: os.sched_getaffinity(recorder._process.pid) == {cpu}, what="process pinned")
        feeder = recorder._thread.native_id
        assert feeder is not None
        wait(lambda: os.sched_getaffinity(feeder) == {cpu}, what="feeder pinned")
        assert os.sched_getaffinity(0) == before
    finally:
        assert recorder.close()["error"] is None


def test_bad_writer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writer"):
        Recorder(tmp_path / "x.arrows", feed="market", url=URL, subscriptions={}, writer="fork")
    assert not (tmp_path / "x.arrows").exists()
