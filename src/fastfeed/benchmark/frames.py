"""Realistic, seeded FeedResponse frames for benchmarks, built with fastfeed's generated classes."""
from __future__ import annotations

import random
import time

from fastfeed.proto import fastfeed_market_v3_pb2 as pb
from fastfeed.schema import REQUEST_MODE



def instrument_keys(n: int, segment: str = "NSE_FO") -> list[str]:
    """n distinct keys shaped like Upstox's (`NSE_FO|43919`)."""
    return [f"{segment}|{40000 + i}" for i in range(n)]


def _ltpc(msg: pb.LTPC, rnd: random.Random, price: float, now_ms: int) -> None:
    msg.ltp = round(price, 2)
    msg.ltt = now_ms - rnd.randrange(1000)
    msg.ltq = rnd.randrange(1, 50) * 25
    msg.cp = round(price * (1 + rnd.uniform(-0.03, 0.03)), 2)


def _depth(quotes, rnd: random.Random, price: float, levels: int) -> None:
    for i in range(levels):
        q = quotes.add()
        q.bidQ = rnd.randrange(1, 400) * 25
        q.bidP = round(price - 0.05 * (i + 1), 2)
        q.askQ = rnd.randrange(1, 400) * 25
        q.askP = round(price + 0.05 * (i + 1), 2)


def _greeks(g: pb.OptionGreeks, rnd: random.Random) -> None:
    g.delta = rnd.uniform(-1, 1)
    g.theta = -rnd.uniform(0, 20)
    g.gamma = rnd.uniform(0, 0.01)
    g.vega = rnd.uniform(0, 15)
    g.rho = rnd.uniform(-5, 5)


def _ohlc(ohlc, rnd: random.Random, price: float, now_ms: int) -> None:
    for interval, vol in (("1d", 1_250_000), ("I1", 4_500)):
        bar = ohlc.add()
        bar.interval = interval
        bar.open = round(price * 0.99, 2)
        bar.high = round(price * 1.01, 2)
        bar.low = round(price * 0.98, 2)
        bar.close = round(price, 2)
        bar.vol = vol + rnd.randrange(1000)
        bar.ts = now_ms - now_ms % 60_000


def frame(keys: list[str], mode: str = "full", *, seed: int = 1, live: bool = True,
          levels: int | None = None) -> bytes:
    """One FeedResponse carrying every key in `keys`, every field a real feed of that mode has."""
    rnd = random.Random(seed)
    now_ms = int(time.time() * 1000)
    resp = pb.FeedResponse(type=pb.live_feed if live else pb.initial_feed, currentTs=now_ms)
    if levels is None:
        levels = 30 if mode == "full_d30" else 5
    for key in keys:
        price = rnd.uniform(50, 5000)
        feed = resp.feeds[key]
        feed.requestMode = REQUEST_MODE[mode]
        if mode == "ltpc":
            _ltpc(feed.ltpc, rnd, price, now_ms)
        elif mode == "option_greeks":
            flg = feed.firstLevelWithGreeks
            _ltpc(flg.ltpc, rnd, price, now_ms)
            d = flg.firstDepth
            d.bidQ, d.bidP = 75, round(price - 0.05, 2)
            d.askQ, d.askP = 150, round(price + 0.05, 2)
            _greeks(flg.optionGreeks, rnd)
            flg.vtt = rnd.randrange(10**7)
            flg.oi = float(rnd.randrange(10**6))
            flg.iv = rnd.uniform(0.1, 0.6)
        else:
            mff = feed.fullFeed.marketFF
            _ltpc(mff.ltpc, rnd, price, now_ms)
            _depth(mff.marketLevel.bidAskQuote, rnd, price, levels)
            _greeks(mff.optionGreeks, rnd)
            _ohlc(mff.marketOHLC.ohlc, rnd, price, now_ms)
            mff.atp = round(price * 0.995, 2)
            mff.vtt = rnd.randrange(10**7)
            mff.oi = float(rnd.randrange(10**6))
            mff.iv = rnd.uniform(0.1, 0.6)
            mff.tbq = float(rnd.randrange(10**6))
            mff.tsq = float(rnd.randrange(10**6))
    return resp.SerializeToString()


# The frame kinds the benchmarks compare: (name, mode, instruments per frame).
CASES = [
    ("ltpc x1", "ltpc", 1),
    ("ltpc x100", "ltpc", 100),
    ("full x1", "full", 1),
    ("full x100", "full", 100),
    ("option_greeks x10", "option_greeks", 10),
    ("full_d30 x50", "full_d30", 50),
]


def case_frames() -> dict[str, tuple[bytes, int]]:
    """Each benchmark case's frame and its instrument count."""
    return {name: (frame(instrument_keys(n), mode), n) for name, mode, n in CASES}
