"""Decode cost of fastfeed against the official SDK's path and upb, measured side by side."""
from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from typing import Callable

from google.protobuf import json_format

from fastfeed import FeedDecoder
from fastfeed.benchmark.frames import case_frames, frame, instrument_keys


# The extra that installs the official SDK, which the "sdk" path (and e2e's SDK client) needs.
SDK_EXTRA = "bench"


def sdk_available() -> bool:
    try:
        import upstox_client  # noqa: F401
    except ImportError:
        return False
    return True


def _upb_classes():
    # upb on the schema: the SDK's own generated classes when it is installed (as its streamer
    # uses them), else fastfeed's, which are wire-identical; the runtime is the same upb.
    if sdk_available():
        from upstox_client.feeder.proto import MarketDataFeedV3_pb2

        return MarketDataFeedV3_pb2
    from fastfeed.proto import fastfeed_market_v3_pb2

    return fastfeed_market_v3_pb2


def read_every_field(msg) -> float:
    """What a user of upb does to get at the data: touch every field from Python."""
    acc = float(msg.type + msg.currentTs)
    for key, feed in msg.feeds.items():
        acc += len(key) + feed.requestMode
        which = feed.WhichOneof("FeedUnion")
        if which == "ltpc":
            acc += _ltpc(feed.ltpc)
        elif which == "fullFeed":
            ff = feed.fullFeed
            m = ff.marketFF if ff.WhichOneof("FullFeedUnion") == "marketFF" else None
            if m is not None:
                acc += _ltpc(m.ltpc)
                for q in m.marketLevel.bidAskQuote:
                    acc += q.bidQ + q.bidP + q.askQ + q.askP
                g = m.optionGreeks
                acc += g.delta + g.theta + g.gamma + g.vega + g.rho
                for bar in m.marketOHLC.ohlc:
                    acc += len(bar.interval) + bar.open + bar.high + bar.low + bar.close
                    acc += bar.vol + bar.ts
                acc += m.atp + m.vtt + m.oi + m.iv + m.tbq + m.tsq + m.iep + m.rp
                acc += m.ieq + m.iiqTotal + m.iiqM + m.casEligible
            else:
                i = ff.indexFF
                acc += _ltpc(i.ltpc)
                for bar in i.marketOHLC.ohlc:
                    acc += bar.open + bar.high + bar.low + bar.close + bar.vol + bar.ts
        elif which == "firstLevelWithGreeks":
            f = feed.firstLevelWithGreeks
            acc += _ltpc(f.ltpc)
            q = f.firstDepth
            acc += q.bidQ + q.bidP + q.askQ + q.askP
            g = f.optionGreeks
            acc += g.delta + g.theta + g.gamma + g.vega + g.rho
            acc += f.vtt + f.oi + f.iv
    return acc


def _ltpc(l) -> float:
    return l.ltp + l.ltt + l.ltq + l.cp + (l.iep.value if l.HasField("iep") else 0.0)


def paths() -> dict[str, Callable[[bytes], object]]:
    """The decode paths compared, each a function of one frame; "sdk" only when the official
    SDK is installed (`pip install 'fastfeed[bench]'`)."""
    parse = _upb_classes().FeedResponse.FromString
    to_dict = json_format.MessageToDict
    decoder = FeedDecoder(max_instruments=8192, ring_capacity=1 << 16)
    out: dict[str, Callable[[bytes], object]] = {
        "fastfeed": decoder.decode,
        "upb": parse,
        "upb+fields": lambda b: read_every_field(parse(b)),
    }
    if sdk_available():
        out["sdk"] = lambda b: to_dict(parse(b))
    return out


def _calls_for(fn: Callable[[bytes], object], payload: bytes, budget_s: float) -> int:
    """Calls of `fn` that take about `budget_s`."""
    fn(payload)
    n = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(payload)
        dt = time.perf_counter_ns() - t0
        if dt > budget_s * 1e9 / 4 or n >= 1 << 24:
            break
        n *= 2
    return max(1, int(n * budget_s * 1e9 / max(dt, 1)))


def time_paths(fns: dict[str, Callable[[bytes], object]], payload: bytes,
               budget_s: float = 0.1, repeat: int = 5) -> dict[str, float]:
    """Best-of-`repeat` nanoseconds per call of each path, each round lasting about `budget_s`.
    The rounds take turns (every path's first round, then every path's second...), so that the
    machine's state changing during the measurement weighs on every path alike: on a shared VM
    one path's rounds alone can land in a slow spell that the next path's miss."""
    calls = {path: _calls_for(fn, payload, budget_s) for path, fn in fns.items()}
    best = {path: float("inf") for path in fns}
    for _ in range(repeat):
        for path, fn in fns.items():
            n = calls[path]
            t0 = time.perf_counter_ns()
            for _ in range(n):
                fn(payload)
            best[path] = min(best[path], (time.perf_counter_ns() - t0) / n)
    return best


@dataclass
class Row:
    case: str
    size: int
    updates: int
    ns: dict[str, float]

    def ratio(self, path: str) -> float:
        return self.ns[path] / self.ns["fastfeed"]

    @property
    def gb_per_s(self) -> float:
        return self.size / self.ns["fastfeed"]


# Rounds per path and case. Many short rounds rather than a few long ones: this VM's speed
# changes by up to 1.5x within a second, and each path's best round should come from one of its
# fast spells.
ROUNDS = 15


def compare(budget_s: float = 0.1, skip_sdk_over: int = 10_000) -> list[Row]:
    """Every case through every path, the paths' rounds interleaved (``time_paths``): ``ROUNDS``
    rounds of a third of `budget_s` each."""
    fns = paths()
    rows = []
    for name, (payload, n) in case_frames().items():
        chosen = {path: fn for path, fn in fns.items()
                  if not (path == "sdk" and len(payload) > skip_sdk_over and budget_s < 0.05)}
        rows.append(Row(name, len(payload), n,
                        time_paths(chosen, payload, budget_s / 3, ROUNDS)))
    return rows


def transient_bytes(fn: Callable[[bytes], object], payload: bytes, frames: int = 100_000) -> int:
    """Peak bytes of Python objects alive at once while `fn` runs over `frames` frames, beyond
    the same loop around `bool` (which allocates nothing). A per-frame temporary shows up here
    even when it is freed again; 0 means the path allocates nothing per frame."""
    import tracemalloc

    batch = [payload] * frames  # iterating a list allocates nothing per item

    def peak(call: Callable[[bytes], object]) -> int:
        for p in batch[:1000]:  # warm the interpreter's own caches for this call site
            call(p)
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        for p in batch:
            call(p)
        return tracemalloc.get_traced_memory()[1] - start

    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        peak(fn), peak(bool)  # the first rounds pay for the interpreter's one-time work
        return max(0, peak(fn) - peak(bool))
    finally:
        tracemalloc.stop()
        gc.enable()


def allocations_per_frame(frames: int = 200_000) -> tuple[int, float]:
    """(transient bytes, net memory blocks per frame) of decoding ten-instrument full frames."""
    decoder = FeedDecoder(max_instruments=1024)
    payload = frame(instrument_keys(10), "full")
    transient = transient_bytes(decoder.decode, payload, frames // 2)
    decode = decoder.decode
    gc.collect()
    gc.disable()
    try:
        before = sys.getallocatedblocks()
        for _ in range(frames):
            decode(payload)
        after = sys.getallocatedblocks()
    finally:
        gc.enable()
    return transient, (after - before) / frames


def _rss_bytes() -> int:
    import os
    import resource

    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the high-water mark is the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_growth(frames: int = 10_000_000, instruments: int = 100) -> tuple[int, int]:
    """Resident memory (bytes) before and after decoding `frames` full frames: memory is fixed at
    construction, so the two should match to within the allocator's noise."""
    keys = instrument_keys(instruments)
    payloads = [frame([k], "full", seed=i) for i, k in enumerate(keys)]
    decoder = FeedDecoder(max_instruments=instruments, ring_capacity=1 << 16)
    decode = decoder.decode
    for p in payloads:
        decode(p)
    gc.collect()
    before = _rss_bytes()
    for _ in range(frames // instruments):
        for p in payloads:
            decode(p)
    return before, _rss_bytes()


def cost_per_update(instruments: int, mode: str = "full", budget_s: float = 0.1) -> float:
    """ns per instrument update when one-instrument frames cycle over `instruments` keys."""
    keys = instrument_keys(instruments)
    frames = [frame([k], mode, seed=i) for i, k in enumerate(keys)]
    decoder = FeedDecoder(max_instruments=instruments)
    for f in frames:
        decoder.decode(f)
    decode = decoder.decode
    rounds = max(1, int(200_000 / instruments))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter_ns()
        for _ in range(rounds):
            for f in frames:
                decode(f)
        best = min(best, (time.perf_counter_ns() - t0) / (rounds * instruments))
    return best
