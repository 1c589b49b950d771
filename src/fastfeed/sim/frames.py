"""FeedResponse frames built with fastfeed's own generated protobuf classes (wire-identical to
Upstox's), from the instruments of `prices`."""
from __future__ import annotations

import random
from typing import Iterable, MutableMapping

from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.schema import DEPTH, REQUEST_MODE

from .prices import INDEX_SEGMENTS, SEGMENTS, Instrument

PHASES = ("open", "pre_open", "closed")

# A live `full` tick leaves out parts now and then, as Upstox's do; a snapshot never does. Depth
# is left out only while the price stays within the touch the client last got (see fill_feed).
_OMIT_DEPTH = 0.15
_OMIT_GREEKS = 0.30
_OMIT_OHLC = 0.20

# Bytes every protobuf parser rejects, for the malformed-frame fault: a length-delimited field
# that runs past the end, a varint longer than 10 bytes, and a field with wire type 7.
MALFORMED_TAILS = (b"\x12\x05ab", b"\x18" + b"\xff" * 10 + b"\x01", b"\x0f")


def market_info(now_ms: int, phase: str = "open") -> bytes:
    resp = pb.FeedResponse(type=pb.market_info, currentTs=now_ms)
    info = resp.marketInfo
    for segment in SEGMENTS:
        if phase == "pre_open" and not segment.startswith(("MCX", "NCD", "BCD")):
            status = pb.PRE_OPEN_START
        elif phase == "closed":
            status = pb.NORMAL_CLOSE
        else:
            status = pb.NORMAL_OPEN
        info.segmentStatus[segment] = status
    cas = "CAS_OPEN" if phase == "pre_open" else "CAS_CLOSED"
    pre = "PRE_OPEN_START" if phase == "pre_open" else "PRE_OPEN_END"
    for segment in ("NSE_EQ", "BSE_EQ"):
        info.casMarketStatus[segment].status = cas
        info.casMarketStatus[segment].updatedTime = now_ms
        info.preOpenSessionStatus[segment].status = pre
        info.preOpenSessionStatus[segment].updatedTime = now_ms
    return resp.SerializeToString()


def _fill_ltpc(msg: pb.LTPC, inst: Instrument, pre_open: bool, iep: float) -> None:
    msg.ltp = inst.ltp
    msg.ltt = inst.ltt
    msg.ltq = inst.ltq
    msg.cp = inst.cp
    if pre_open:
        msg.iep.value = iep


def _fill_ohlc(msg: pb.MarketOHLC, inst: Instrument) -> None:
    day = msg.ohlc.add()
    day.interval = "1d"
    day.open, day.high, day.low, day.close = inst.open, inst.high, inst.low, inst.ltp
    day.vol = inst.vtt
    day.ts = inst.day_ts
    minute = msg.ohlc.add()
    minute.interval = "I1"
    minute.open, minute.high, minute.low, minute.close = (inst.bar_open, inst.bar_high,
                                                          inst.bar_low, inst.ltp)
    minute.vol = inst.bar_vol
    minute.ts = inst.bar_ts


def _fill_greeks(msg: pb.OptionGreeks, inst: Instrument) -> None:
    msg.delta, msg.theta, msg.gamma, msg.vega, msg.rho = inst.greeks()


# Key -> (best bid, best ask) of the depth a connection last sent for it.
Touch = MutableMapping[str, "tuple[float, float]"]


def fill_feed(feed: pb.Feed, inst: Instrument, mode: str, *, snapshot: bool, phase: str,
              rng: random.Random, touch: Touch) -> None:
    """Fill `feed` with `inst` as a `mode` subscriber sees it. `touch` is what this subscriber
    holds: a tick leaves depth out only when the price is within the best bid and ask it was
    last sent, so a client merging ticks never holds an LTP outside its own best bid/ask."""
    pre_open = phase == "pre_open" and inst.kind == "equity"
    auction = inst.auction() if pre_open else None
    iep = auction[0] if auction else 0.0
    feed.requestMode = REQUEST_MODE[mode]
    if mode == "ltpc":
        _fill_ltpc(feed.ltpc, inst, pre_open, iep)
        return
    if mode == "option_greeks":
        flg = feed.firstLevelWithGreeks
        _fill_ltpc(flg.ltpc, inst, pre_open, iep)
        if inst.kind == "index":
            return
        bq, bp, aq, ap = inst.depth(1)[0]
        flg.firstDepth.bidQ, flg.firstDepth.bidP, flg.firstDepth.askQ, flg.firstDepth.askP = bq, bp, aq, ap
        flg.vtt = inst.vtt
        if inst.kind == "option":
            _fill_greeks(flg.optionGreeks, inst)
            flg.iv = round(inst.iv, 4)
        if inst.kind in ("option", "future"):
            flg.oi = inst.oi
        return
    # full / full_d30
    if inst.segment in INDEX_SEGMENTS:
        index = feed.fullFeed.indexFF
        _fill_ltpc(index.ltpc, inst, False, 0.0)
        if snapshot or rng.random() >= _OMIT_OHLC:
            _fill_ohlc(index.marketOHLC, inst)
        return
    ff = feed.fullFeed.marketFF
    _fill_ltpc(ff.ltpc, inst, pre_open, iep)
    held = touch.get(inst.key)
    if snapshot or held is None or not held[0] <= inst.ltp <= held[1] or rng.random() >= _OMIT_DEPTH:
        quotes = ff.marketLevel.bidAskQuote
        rows = inst.depth(DEPTH[mode])
        for bq, bp, aq, ap in rows:
            q = quotes.add()
            q.bidQ, q.bidP, q.askQ, q.askP = bq, bp, aq, ap
        touch[inst.key] = (rows[0][1], rows[0][3])
    if inst.kind == "option" and (snapshot or rng.random() >= _OMIT_GREEKS):
        _fill_greeks(ff.optionGreeks, inst)
    if snapshot or rng.random() >= _OMIT_OHLC:
        _fill_ohlc(ff.marketOHLC, inst)
    ff.atp = inst.atp
    ff.vtt = inst.vtt
    if inst.kind in ("option", "future"):
        ff.oi = inst.oi
    if inst.kind == "option":
        ff.iv = round(inst.iv, 4)
    ff.tbq = inst.tbq
    ff.tsq = inst.tsq
    if auction is not None:
        ff.iep, ff.ieq, ff.iiqTotal, ff.iiqM, ff.casEligible = auction
        ff.rp = inst.cp


def feed_frame(kind: int, items: Iterable[tuple[Instrument, str]], now_ms: int, *, phase: str,
               rng: random.Random, touch: Touch) -> bytes:
    """One FeedResponse of type `kind` (initial_feed or live_feed) for (instrument, mode) pairs."""
    resp = pb.FeedResponse(type=kind, currentTs=now_ms)
    snapshot = kind == pb.initial_feed
    feeds = resp.feeds
    for inst, mode in items:
        fill_feed(feeds[inst.key], inst, mode, snapshot=snapshot, phase=phase, rng=rng, touch=touch)
    return resp.SerializeToString()


def malformed(valid: bytes, n: int) -> bytes:
    """A frame no protobuf parser accepts: a valid frame with one of the broken tails after it."""
    return valid + MALFORMED_TAILS[n % len(MALFORMED_TAILS)]
