"""What a frame costs the decoder in memory is bounded by what it means (issue 8, item 3):
scratch grows with the distinct keys of a frame and the depth levels kept, not its length, and
shrinks back after an outlier frame."""
from __future__ import annotations

import os

import pytest

import fastfeed
import wire
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from wire import LEN, dbl, sub

MiB = 1 << 20
HOSTILE_SIZE = 4 * MiB


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc")


def market_ff(fields, live: bool = False) -> bytes:
    """One feed entry "K" whose MarketFullFeed body is `fields`, as a whole frame."""
    return wire.encode([(1, wire.VARINT, int(live)),
                        (2, LEN, [(1, LEN, "K"), sub(2, [sub(2, [sub(1, fields)])])])])





HOSTILE = {
    # 2 Mi empty map entries: one key ("")
    "empty-entries": b"\x12\x00" * (HOSTILE_SIZE // 2),
    # one feed, 2 Mi empty depth levels: 30 are kept
    "depth-levels": wire.encode(
        [(2, LEN, [(1, LEN, "K"), (2, LEN, wire.encode([(2, LEN, wire.encode([(1, LEN, wire.encode(
            [(2, LEN, b"\x0a\x00" * (HOSTILE_SIZE // 2))]))]))]))])]),
    # one feed, 2 Mi empty bars (interval ""): one is kept
    "bars": wire.encode(
        [(2, LEN, [(1, LEN, "K"), (2, LEN, wire.encode([(2, LEN, wire.encode([(1, LEN, wire.encode(
            [(4, LEN, b"\x0a\x00" * (HOSTILE_SIZE // 2))]))]))]))])]),
    # 2 Mi market status entries of one segment
    "market-status": wire.encode([(1, wire.VARINT, 2),
                                  (4, LEN, b"\x0a\x00" * (HOSTILE_SIZE // 2))]),
}


@needs_proc
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_frame_grows_rss_less_than_64_mib(name):
    payload = HOSTILE[name]
    assert len(payload) >= HOSTILE_SIZE - 16
    decoder = fastfeed.FeedDecoder(max_instruments=16, ring_capacity=64)
    decoder.decode(b"")  # lazily built state is not the frame's
    before = rss()
    decoder.decode(payload)
    grown = rss() - before
    assert grown < 64 * MiB, f"{name}: RSS grew by {grown / MiB:.0f} MiB"
    assert decoder.scratch_bytes < 2 * MiB


def test_hostile_frames_decode_as_protobuf_reads_them():
    decoder = fastfeed.FeedDecoder(max_instruments=16, ring_capacity=64)
    assert decoder.decode(HOSTILE["empty-entries"]) == 1
    assert decoder.store.instruments == [""]
    assert fastfeed.to_dict(HOSTILE["empty-entries"][:64]) == {"feeds": {"": {}}}
    assert decoder.decode(HOSTILE["depth-levels"]) == 1
    q = decoder.quote("K")
    assert len(q.bids) == 30 and q.bids[0] == (0.0, 0)
    decoder.decode(HOSTILE["bars"])
    assert list(decoder.quote("K").ohlc) == [""]
    decoder.decode(HOSTILE["market-status"])
    assert decoder.market_status == {"": "PRE_OPEN_START"}


def bar(interval: str, close: float):
    return sub(1, [(1, LEN, interval), dbl(5, close)])


def test_bars_merged_in_scratch_keep_protobuf_order_and_drop_counts():
    # 24 bars over 3 intervals: each interval holds its last bar.
    bars = [bar(iv, float(i)) for i in range(8) for iv in ("1d", "I1", "I30")]
    decoder = fastfeed.FeedDecoder(max_instruments=4, ring_capacity=16)
    decoder.decode(market_ff([sub(4, bars)]))
    ohlc = decoder.quote("K").ohlc
    assert list(ohlc) == ["1d", "I1", "I30"] and {b.close for b in ohlc.values()} == {7.0}
    assert decoder.snapshot["bars_dropped"][0] == 0
    # Then 8 distinct intervals, past the bars a feed keeps verbatim: the row's last slot goes to
    # the first new interval, which and 1d hold their last bars, and the rest count as dropped.
    many = [bar(f"X{i}", float(i)) for i in range(6)] + [bar("1d", 99.0), bar("X0", 98.0)]
    many += [bar("X5", 1.0)] * 3
    payload = market_ff([sub(4, many)], live=True)
    decoder.decode(payload)
    ohlc = decoder.quote("K").ohlc
    assert list(ohlc) == ["1d", "I1", "I30", "X0"]
    assert (ohlc["1d"].close, ohlc["X0"].close) == (99.0, 98.0)
    assert decoder.snapshot["bars_dropped"][0] == 5 + 3  # X1..X5, and X5 three times more
    # the same bytes through protobuf: the last bar of each interval
    msg = pb.FeedResponse.FromString(payload)
    closes = {b.interval: b.close for b in msg.feeds["K"].fullFeed.marketFF.marketOHLC.ohlc}
    assert closes["1d"] == 99.0 and closes["X0"] == 98.0
    # Past 8 distinct intervals in one feed of one frame, the newer ones are dropped (counted).
    decoder.decode(market_ff([sub(4, [bar(f"Y{i}", 1.0) for i in range(12)])], live=True))
    assert decoder.snapshot["bars_dropped"][0] == 8 + 12


def test_scratch_shrinks_back_after_an_outlier_frame():
    from fastfeed.benchmark.frames import frame, instrument_keys

    decoder = fastfeed.FeedDecoder(max_instruments=16, ring_capacity=64)
    small = frame(instrument_keys(4), "full")
    decoder.decode(small)
    baseline = decoder.scratch_bytes
    outlier = frame(instrument_keys(20_000), "ltpc")  # distinct keys: scratch must hold them
    decoder.decode(outlier)
    assert decoder.scratch_bytes > 4 * MiB
    assert decoder.rejected_keys == 20_000 - 16
    decoder.decode(small)
    assert decoder.scratch_bytes <= max(baseline, MiB)
