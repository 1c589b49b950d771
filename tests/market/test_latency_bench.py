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


def test_the_new_clients_give_one_sample_per_frame() -> None:
    # busy polling with on_quote, and the bare picows listener (the transport's floor).
    frames = WARMUP + 50
    for kind in ("busy_poll+on_quote", "picows"):
        result = measure(kind, rate=2000, frames=frames, timeout=60)
        assert result["errors"] == 0 and len(result["samples"]) == frames - WARMUP, kind
        assert all(s > 0 for s in result["samples"]), kind
    assert len(result.get("own", [])) == 0  # picows has no fastfeed share to report


def test_the_floor_is_measured_in_both_states_and_formatted() -> None:
    from fastfeed.benchmark.latency import cold_floor, format_floor

    floor = cold_floor(samples=50)
    for how in ("asleep", "spinning"):
        for what in ("clock", "decode"):
            values = floor[how][what]
            assert len(values) == 5 and 0 < values[0] <= values[1] <= values[2] <= values[4]
    assert "asleep in epoll" in format_floor(floor)
