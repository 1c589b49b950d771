"""The latency benchmark's own parts (fastfeed.benchmark.latency), over real sockets: the send
time the server writes into a frame is what every client reads back, and a short run of a
MarketFeed client gives one sample per frame past the warm-up. Nothing here is timed."""
from __future__ import annotations

import itertools
import time

from fastfeed import FeedDecoder
from fastfeed.benchmark.latency import KEY, WARMUP, frame_prefixes, measure, percentiles, stamped
from fastfeed.proto import fastfeed_market_v3_pb2 as pb


def test_the_send_time_is_the_frames_current_ts_for_every_reader() -> None:
    prefixes = frame_prefixes(4)
    # Now, and send times of every varint length around the 7 bytes the fast path writes.
    times = [time.monotonic_ns(), 1, 127, 128, (1 << 42) - 1, 1 << 42, (1 << 49) - 1, 1 << 49]
    for prefix, ts in itertools.product(prefixes, times):
        f = stamped(prefix, ts)
        parsed = pb.FeedResponse.FromString(f)
        assert parsed.currentTs == ts and list(parsed.feeds) == [KEY]
        assert parsed.feeds[KEY].fullFeed.marketFF.ltpc.ltp > 0
        decoder = FeedDecoder()
        assert decoder.decode(f) == 1
        assert decoder.quote(KEY).server_ts == ts  # type: ignore[union-attr]
    assert len(set(prefixes)) == len(prefixes)  # a pool of distinct frames


def test_a_short_run_gives_one_sample_per_frame() -> None:
    frames = WARMUP + 100
    result = measure("busy_poll", rate=2000, frames=frames, timeout=60)
    assert result["errors"] == 0
    assert len(result["samples"]) == frames - WARMUP
    assert all(s > 0 for s in result["samples"])
    assert 0 < len(result["own"]) <= frames and all(s > 0 for s in result["own"])
    p = percentiles(result["samples"])
    assert p["p50"] <= p["p90"] <= p["p99"] <= p["p99.9"] <= p["max"]
