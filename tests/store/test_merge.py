"""Snapshot merging across sequences of frames, against a reference merge over protobuf objects.

The rules (documented in README): an initial_feed replaces the row; a live_feed merges: a part
(LTPC, depth, greeks, OHLC bars by interval) absent from a tick keeps its old value; the scalar
statistics of a present MarketFullFeed / FirstLevelWithGreeks are taken as sent (proto3 cannot
tell an absent scalar from zero).
"""
import math

import pytest
from hypothesis import given, settings, strategies as st
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as sdk

from fastfeed import FeedDecoder
from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.schema import MODES

KEYS = ["NSE_EQ|INE002A01018", "NSE_INDEX|Nifty 50", "NSE_FO|43919", "MCX_FO|434855"]
INTERVALS = ["1d", "I1", "I30", "1w", "I5", "an-interval-too-long"]
STATS = ["atp", "vtt", "oi", "iv", "tbq", "tsq", "iep", "rp", "ieq", "iiqTotal", "iiqM",
         "casEligible"]


def blank():
    return {"ltp": 0.0, "ltt": 0, "ltq": 0, "cp": 0.0, "ltpc_iep": None,
            **{s: 0 for s in STATS}, "greeks": (0.0,) * 5, "levels": [], "bars": {},
            "mode": "ltpc", "kind": "none", "server_ts": 0, "updates": 0}


def merge_ltpc(row, l):
    row.update(ltp=l.ltp, ltt=l.ltt, ltq=l.ltq, cp=l.cp,
               ltpc_iep=l.iep.value if l.HasField("iep") else None)


def merge_bars(row, market_ohlc):
    for bar in market_ohlc.ohlc:
        if len(bar.interval.encode()) >= 16:
            continue
        if bar.interval not in row["bars"] and len(row["bars"]) == 4:
            continue
        row["bars"][bar.interval] = (bar.open, bar.high, bar.low, bar.close, bar.vol, bar.ts)


def greeks(g):
    return (g.delta, g.theta, g.gamma, g.vega, g.rho)


def reference_apply(state, resp):
    """The merge rules, written plainly over the SDK's protobuf objects."""
    for key, feed in resp.feeds.items():
        row = state.get(key) or blank()
        if resp.type == 0:
            row = {**blank(), "updates": row["updates"]}  # the count survives a snapshot
        row["updates"] += 1
        row["server_ts"] = resp.currentTs
        row["mode"] = MODES[feed.requestMode]  # Quote.mode: the subscription words
        which = feed.WhichOneof("FeedUnion")
        if which == "ltpc":
            row["kind"] = "ltpc"
            merge_ltpc(row, feed.ltpc)
        elif which == "fullFeed" and feed.fullFeed.WhichOneof("FullFeedUnion") == "marketFF":
            m = feed.fullFeed.marketFF
            row["kind"] = "market"
            if m.HasField("ltpc"):
                merge_ltpc(row, m.ltpc)
            for s in STATS:
                row[s] = getattr(m, s)
            if m.HasField("marketLevel"):
                row["levels"] = [(q.bidP, q.bidQ, q.askP, q.askQ)
                                 for q in m.marketLevel.bidAskQuote][:30]
            if m.HasField("optionGreeks"):
                row["greeks"] = greeks(m.optionGreeks)
            if m.HasField("marketOHLC"):
                merge_bars(row, m.marketOHLC)
        elif which == "fullFeed" and feed.fullFeed.WhichOneof("FullFeedUnion") == "indexFF":
            i = feed.fullFeed.indexFF
            row["kind"] = "index"
            if i.HasField("ltpc"):
                merge_ltpc(row, i.ltpc)
            if i.HasField("marketOHLC"):
                merge_bars(row, i.marketOHLC)
        elif which == "firstLevelWithGreeks":
            f = feed.firstLevelWithGreeks
            row["kind"] = "option_greeks"
            if f.HasField("ltpc"):
                merge_ltpc(row, f.ltpc)
            row.update(vtt=f.vtt, oi=f.oi, iv=f.iv)
            if f.HasField("firstDepth"):
                q = f.firstDepth
                row["levels"] = [(q.bidP, q.bidQ, q.askP, q.askQ)]
            if f.HasField("optionGreeks"):
                row["greeks"] = greeks(f.optionGreeks)
        state[key] = row


def as_row(q):
    return {
        "ltp": q.ltp, "ltt": q.ltt, "ltq": q.ltq, "cp": q.cp, "ltpc_iep": q.ltpc_iep,
        "atp": q.atp, "vtt": q.vtt, "oi": q.oi, "iv": q.iv, "tbq": q.tbq, "tsq": q.tsq,
        "iep": q.iep, "rp": q.rp, "ieq": q.ieq, "iiqTotal": q.iiq_total, "iiqM": q.iiq_m,
        "casEligible": q.cas_eligible,
        "greeks": (q.delta, q.theta, q.gamma, q.vega, q.rho),
        "levels": [(b[0], b[1], a[0], a[1]) for b, a in zip(q.bids, q.asks)],
        "bars": {k: tuple(v) for k, v in q.ohlc.items()},
        "mode": q.mode, "kind": q.kind, "server_ts": q.server_ts, "updates": q.updates,
    }


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
i64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def ltpc_msg(draw, msg):
    msg.ltp, msg.ltt, msg.ltq, msg.cp = draw(finite), draw(i64), draw(i64), draw(finite)
    if draw(st.booleans()):
        msg.iep.value = draw(finite)


@st.composite
def feed_response(draw):
    resp = pb.FeedResponse(type=draw(st.sampled_from([0, 1, 1, 1])), currentTs=draw(i64))
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True)):
        feed = resp.feeds[key]
        feed.requestMode = draw(st.integers(0, 3))
        kind = draw(st.sampled_from(["ltpc", "market", "index", "greeks", "none"]))
        present = draw(st.lists(st.booleans(), min_size=5, max_size=5))
        if kind == "ltpc":
            draw(ltpc_msg(feed.ltpc))
        elif kind == "market":
            m = feed.fullFeed.marketFF
            if present[0]:
                draw(ltpc_msg(m.ltpc))
            if present[1]:
                m.marketLevel.SetInParent()
                for _ in range(draw(st.integers(0, 32))):
                    m.marketLevel.bidAskQuote.add(bidQ=draw(i64), bidP=draw(finite),
                                                  askQ=draw(i64), askP=draw(finite))
            if present[2]:
                g = m.optionGreeks
                g.SetInParent()
                g.delta, g.theta, g.gamma, g.vega, g.rho = (draw(finite) for _ in range(5))
            if present[3]:
                m.marketOHLC.SetInParent()
                for iv in draw(st.lists(st.sampled_from(INTERVALS), max_size=3)):
                    m.marketOHLC.ohlc.add(interval=iv, open=draw(finite), close=draw(finite),
                                          vol=draw(i64), ts=draw(i64))
            m.atp, m.vtt, m.oi, m.ieq = draw(finite), draw(i64), draw(finite), draw(i64)
            m.iiqTotal, m.iiqM, m.casEligible = draw(i64), draw(i64), draw(st.booleans())
            m.rp, m.iep, m.tbq = draw(finite), draw(finite), draw(finite)
        elif kind == "index":
            i = feed.fullFeed.indexFF
            i.SetInParent()
            if present[0]:
                draw(ltpc_msg(i.ltpc))
            if present[3]:
                i.marketOHLC.ohlc.add(interval=draw(st.sampled_from(INTERVALS)),
                                      high=draw(finite), low=draw(finite))
        elif kind == "greeks":
            f = feed.firstLevelWithGreeks
            f.SetInParent()
            if present[0]:
                draw(ltpc_msg(f.ltpc))
            if present[1]:
                f.firstDepth.bidP, f.firstDepth.askQ = draw(finite), draw(i64)
            if present[2]:
                f.optionGreeks.delta = draw(finite)
            f.vtt, f.oi, f.iv = draw(i64), draw(finite), draw(finite)
    return resp.SerializeToString()


@settings(max_examples=150, deadline=None)
@given(st.lists(feed_response(), min_size=1, max_size=8))
def test_snapshot_merge_matches_reference(frames):
    dec = FeedDecoder(16, 64)
    state = {}
    for payload in frames:
        assert dec.decode(payload) == len(sdk.FeedResponse.FromString(payload).feeds)
        reference_apply(state, sdk.FeedResponse.FromString(payload))
    for key, expected in state.items():
        got = as_row(dec.quote(key))
        assert same(got, expected), (key, got, expected)
    assert sorted(dec.store.instruments) == sorted(state)


def test_tick_without_depth_keeps_depth_and_snapshot_replaces():
    from fastfeed.benchmark.frames import frame

    key = "NSE_FO|43919"
    dec = FeedDecoder(4, 16)
    dec.decode(frame([key], "full", live=False, seed=3))
    full = dec.quote(key)
    assert len(full.bids) == 5 and set(full.ohlc) == {"1d", "I1"}
    tick = pb.FeedResponse(type=1, currentTs=5)
    tick.feeds[key].fullFeed.marketFF.ltpc.ltp = 99.5
    tick.feeds[key].requestMode = 1
    dec.decode(tick.SerializeToString())
    q = dec.quote(key)
    assert q.ltp == 99.5 and q.bids == full.bids and q.ohlc == full.ohlc
    assert q.server_ts == 5 and q.updates == 2
    snap = pb.FeedResponse(type=0, currentTs=6)
    snap.feeds[key].ltpc.ltp = 1.0
    dec.decode(snap.SerializeToString())
    q = dec.quote(key)
    assert q.ltp == 1.0 and q.bids == () and q.ohlc == {} and q.kind == "ltpc" and q.updates == 3


def test_repeated_key_in_one_frame_last_entry_wins_whole():
    # Concatenated messages merge; their map entries for one key: the last wins whole.
    from fastfeed.benchmark.frames import frame

    key = "NSE_FO|43919"
    second = pb.FeedResponse(type=1, currentTs=7)
    second.feeds[key].ltpc.ltp = 42.0
    payload = frame([key], "full") + second.SerializeToString()
    dec = FeedDecoder(4, 16)
    assert dec.decode(payload) == 1
    q = dec.quote(key)
    assert (q.kind, q.ltp, q.bids, q.mode) == ("ltpc", 42.0, (), "ltpc")
    assert dec.store.updates_written == 1


def test_rows_running_out_keeps_the_known_keys():
    from fastfeed.benchmark.frames import frame, instrument_keys

    dec = FeedDecoder(3, 16)
    dec.decode(frame(instrument_keys(2), "ltpc"))
    # Two new keys, one row left: the first new key on the wire gets it, the other is refused.
    assert dec.decode(frame(instrument_keys(4), "ltpc")) == 3
    kept, refused = dec.store.instruments[2], dec.take_rejected()
    assert sorted(dec.store.instruments[:2]) == instrument_keys(2)
    assert sorted([kept, *refused]) == instrument_keys(4)[2:]
    assert dec.errors == 0 and dec.rejected_keys == 1
    assert dec.quote(refused[0]) is None and dec.quote(kept).updates == 1


def test_quote_of_unknown_key_is_none_and_quote_is_immutable():
    from fastfeed.benchmark.frames import frame

    dec = FeedDecoder(4, 16)
    assert dec.quote("NSE_EQ|NOPE") is None
    dec.decode(frame(["NSE_EQ|X"], "full"))
    q = dec.quote("NSE_EQ|X")
    with pytest.raises(AttributeError):
        q.ltp = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        q.ohlc["1d"] = None  # type: ignore[index]
