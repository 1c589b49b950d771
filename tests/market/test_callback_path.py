"""The per-frame callback path (fastfeed._callbacks): on_update's reused view holds exactly the
frame's ring records (one record, many, past the reused buffer's 64, across the ring's end),
on_quote's row-indexed Quote equals the one the public constructor makes from the row, and the
path with a no-op on_update callback allocates nothing per frame, latency samples included.

Frames go in through the listener's ``feed_frame`` (the listener MarketFeed uses on a socket)."""
from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import numpy as np
import pytest

from fastfeed import MarketFeed, Quote
from fastfeed.benchmark.frames import frame, instrument_keys
from fastfeed.quote import Bar
from fastfeed.schema import KIND_NAMES, mode_of

TOKEN = "test-token-callbacks-0123456789"


def feed_for(**kwargs: Any) -> MarketFeed:
    return MarketFeed(TOKEN, url="ws://127.0.0.1:9", **kwargs)


def listener_of(feed: MarketFeed) -> Any:
    """A connection's listener, as the feed makes one: callbacks registered so far are armed."""
    return feed._make_listener()


def quote_from_row(feed: MarketFeed, row: int) -> Quote:
    """The Quote of a snapshot row, through Quote's own constructor."""
    r = feed.store.row_copy(row)
    n, bars = int(r["n_levels"]), r["bars"][:int(r["n_bars"])]
    return Quote(
        key=feed.store.key(row), ltp=float(r["ltp"]), ltt=int(r["ltt"]), ltq=int(r["ltq"]),
        cp=float(r["cp"]), ltpc_iep=float(r["ltpc_iep"]) if r["flags"] & 2 else None,
        atp=float(r["atp"]), vtt=int(r["vtt"]), oi=float(r["oi"]), iv=float(r["iv"]),
        tbq=float(r["tbq"]), tsq=float(r["tsq"]), iep=float(r["iep"]), rp=float(r["rp"]),
        ieq=int(r["ieq"]), iiq_total=int(r["iiq_total"]), iiq_m=int(r["iiq_m"]),
        cas_eligible=bool(r["cas_eligible"]), delta=float(r["delta"]), theta=float(r["theta"]),
        gamma=float(r["gamma"]), vega=float(r["vega"]), rho=float(r["rho"]),
        bids=tuple((float(p), int(q)) for p, q in zip(r["bid_p"][:n], r["bid_q"][:n])),
        asks=tuple((float(p), int(q)) for p, q in zip(r["ask_p"][:n], r["ask_q"][:n])),
        ohlc={b["interval"].decode(): Bar(float(b["open"]), float(b["high"]), float(b["low"]),
                                           float(b["close"]), int(b["vol"]), int(b["ts"])) for b in bars},
        mode=mode_of(int(r["mode"])), kind=KIND_NAMES[int(r["kind"])],
        server_ts=int(r["server_ts"]), recv_ns=int(r["recv_ns"]), updates=int(r["updates"]),
        stale=bool(r["flags"] & 1))


@pytest.mark.parametrize("mode", ["full", "ltpc", "option_greeks", "full_d30"])
def test_quote_at_builds_the_same_quote_as_the_constructor(mode: str) -> None:
    feed = feed_for()
    listener = listener_of(feed)
    keys = instrument_keys(3)
    listener.feed_frame(frame(keys, mode, live=False))
    listener.feed_frame(frame(keys[1:], mode, seed=2))
    feed.store.mark_stale()
    for row in range(len(keys)):
        q = feed.store.quote_at(row)
        expected = quote_from_row(feed, row)
        assert q == expected and type(q) is Quote
        assert dict(q.ohlc) == dict(expected.ohlc) and q.stale
        assert hash(q.bids) == hash(expected.bids)
        assert feed.quote(feed.store.key(row)) == q
    with pytest.raises(IndexError):
        feed.store.quote_at(3)
    with pytest.raises(IndexError):
        feed.store.quote_at(-1)


@pytest.mark.parametrize("per_frame", [1, 3, 64, 65, 100])
def test_on_update_gets_exactly_the_frames_records_across_the_rings_end(per_frame: int) -> None:
    feed = feed_for(ring_capacity=128)
    keys = instrument_keys(per_frame)
    got: list[tuple[np.ndarray, np.ndarray]] = []

    def on_update(records: np.ndarray) -> None:
        assert not records.flags.writeable
        got.append((records.copy(), feed.store.latest(len(records)).copy()))

    feed.on_update(on_update)
    listener = listener_of(feed)
    frames = [frame(keys, "full", seed=i) for i in range(8)]  # 8 x per_frame: wraps the ring
    for f in frames:
        listener.feed_frame(f)
    assert len(got) == len(frames)
    seqs = np.concatenate([view for view, _ in got])["seq"]
    assert (np.diff(seqs) == 1).all() and seqs[-1] == feed.store.updates_written
    for view, ring in got:
        assert len(view) == per_frame
        assert view.tobytes() == ring.tobytes()
    last = got[-1][0]
    assert sorted(feed.store.key(int(r)) for r in last["row"]) == sorted(keys)
    first_key = feed.store.key(int(last["row"][0]))
    assert float(last["ltp"][0]) == feed.quote(first_key).ltp  # type: ignore[union-attr]


def test_on_quote_gets_rows_registered_before_they_exist_and_only_those() -> None:
    feed = feed_for()
    keys = instrument_keys(4)
    got: list[Quote] = []
    feed.on_quote(keys[2], got.append)
    listener = listener_of(feed)
    listener.feed_frame(frame(keys[:2], "ltpc"))  # not there yet
    assert got == []
    listener.feed_frame(frame(keys, "ltpc", seed=3))
    listener.feed_frame(frame(keys[1:3], "ltpc", seed=4))
    assert [q.key for q in got] == [keys[2], keys[2]]
    assert got[-1] == feed.quote(keys[2]) and got[-1].updates == 2
    lat = feed.latency()
    assert lat["frame_to_on_quote_us"]["count"] == 2
    assert lat["frame_to_callback_us"]["count"] == 2
    assert lat["frame_to_on_update_us"]["count"] == 0
    feed.off_quote(keys[2])
    listener = listener_of(feed)
    assert listener.callbacks is None  # nobody listens: no Python per frame
    listener.feed_frame(frame(keys, "ltpc", seed=5))
    assert len(got) == 2


def test_a_no_op_on_update_path_allocates_nothing_per_frame() -> None:
    feed = feed_for()
    last: list[Any] = [None]

    def no_op(records: np.ndarray) -> None:
        last[0] = records  # the same view object every frame: no allocation

    feed.on_update(no_op)
    listener = listener_of(feed)
    payload = frame(instrument_keys(1), "full")
    for _ in range(1000):  # warm: the key registered, every buffer grown
        listener.feed_frame(payload)
    view = last[0]
    feed_frame = listener.feed_frame
    frames = 20_000
    repeat = itertools.repeat(None, frames)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in repeat:
            feed_frame(payload)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last[0] is view and feed.decoder.frames == 1000 + frames
    assert feed.latency()["frame_to_on_update_us"]["count"] == 4096  # the reservoir is full
    # Not one object per frame, not even a temporary that is freed again.
    assert current - base <= 0
    assert peak - base == 0


def test_a_stored_quote_makes_its_levels_and_bars_once_at_the_first_read() -> None:
    import dataclasses
    import gc
    import threading

    feed = feed_for()
    listener = listener_of(feed)
    keys = instrument_keys(2)
    listener.feed_frame(frame(keys, "full_d30"))
    assert [f.name for f in dataclasses.fields(Quote)][23:26] == ["bids", "asks", "ohlc"]
    expected = quote_from_row(feed, 0)
    q = feed.store.quote_at(0)
    assert not gc.is_tracked(q._parts)  # the copy of the levels gives the cyclic GC nothing
    asks = q.asks  # the first read makes all three
    assert len(asks) == 30 and asks == expected.asks and q.bids == expected.bids
    assert q.asks is asks and q.ohlc is q.ohlc and dict(q.ohlc) == dict(expected.ohlc)
    assert not hasattr(q, "_parts")  # the copy is dropped once made into objects
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.bids = ()  # type: ignore[misc]
    # Threads racing for the first read all see the same objects.
    q = feed.store.quote_at(1)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(q.bids)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(seen) == 8 and all(b is seen[0] for b in seen)
    # A Quote from the constructor is a plain instance; a descriptor of Quote reads no other type.
    made = dataclasses.replace(q, updates=0)
    assert made.bids is q.bids and made.ohlc is q.ohlc and not hasattr(made, "_parts")
    with pytest.raises(TypeError):
        type(q).__dict__["bids"].__get__(object(), Quote)
