"""Seeded price paths: one random walk per instrument key, with depth, OHLC bars, volume, OI, greeks.

Each key's path is seeded from (simulator seed, key) through a stable hash, so the same seed gives
the same prices in every run and any well-formed key (`NSE_EQ|INE002A01018`, `NSE_INDEX|Nifty 50`)
gets a path of its own at a realistic level.
"""
from __future__ import annotations

import hashlib
import math
import random
import re

SEGMENTS = ("NSE_EQ", "NSE_FO", "NSE_INDEX", "NSE_COM", "NCD_FO", "BSE_EQ", "BSE_FO", "BSE_INDEX",
            "BCD_FO", "MCX_FO", "MCX_INDEX")
INDEX_SEGMENTS = frozenset({"NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDICATOR"})

# Upstox keys are `SEGMENT|IDENTIFIER`; the identifier may hold spaces ("Nifty 50") but no bar and
# no control characters.
_KEY_RE = re.compile(r"[A-Z][A-Z0-9_]{1,31}\|[^|\x00-\x1f\x7f]{1,64}")

IST_OFFSET_MS = 19_800_000
DAY_MS = 86_400_000
MINUTE_MS = 60_000

KNOWN = {
    "NSE_INDEX|Nifty 50": (24_000.0, "Nifty 50"),
    "NSE_INDEX|Nifty Bank": (52_000.0, "Nifty Bank"),
    "BSE_INDEX|SENSEX": (80_000.0, "SENSEX"),
    "NSE_EQ|INE002A01018": (1_290.0, "RELIANCE"),
    "NSE_EQ|INE467B01029": (3_900.0, "TCS"),
    "NSE_EQ|INE040A01034": (1_700.0, "HDFCBANK"),
    "NSE_EQ|INE848E01016": (92.9, "NHPC"),
}
LOT_SIZES = (15, 25, 50, 75, 250, 500, 1000)


def is_valid_key(key: object) -> bool:
    return isinstance(key, str) and _KEY_RE.fullmatch(key) is not None and not key.endswith(" ")


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from the parts; unlike hash(), the same in every process."""
    text = "\x00".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def day_start_ms(now_ms: int) -> int:
    """Midnight IST, in epoch ms, of the trading day that holds `now_ms`."""
    return (now_ms + IST_OFFSET_MS) // DAY_MS * DAY_MS - IST_OFFSET_MS


def universe(n: int, seed: int = 0) -> list[str]:
    """`n` distinct, well-formed instrument keys: a few real ones first, then generated equities,
    F&O contracts, commodities and indices. The same (n, seed) gives the same list."""
    keys: list[str] = list(KNOWN)[:n]
    seen = set(keys)
    rng = random.Random(stable_seed("universe", seed))
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while len(keys) < n:
        r = rng.random()
        if r < 0.40:
            key = f"NSE_EQ|INE{rng.randrange(1000):03d}{rng.choice(letters)}01{rng.randrange(100):02d}{rng.randrange(10)}"
        elif r < 0.80:
            key = f"NSE_FO|{rng.randrange(10_000, 999_999)}"
        elif r < 0.88:
            key = f"BSE_EQ|INE{rng.randrange(1000):03d}{rng.choice(letters)}01{rng.randrange(100):02d}{rng.randrange(10)}"
        elif r < 0.95:
            key = f"MCX_FO|{rng.randrange(100_000, 999_999)}"
        else:
            key = f"NSE_INDEX|Nifty Sim {rng.randrange(1000)}"
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


class Instrument:
    """The state of one instrument's market: moved one tick at a time by `step`."""

    __slots__ = ("key", "segment", "kind", "option_type", "symbol", "tick", "lot", "rng", "sigma",
                 "cp", "ltp", "ltt", "ltq", "open", "high", "low", "vtt", "turnover", "oi", "iv",
                 "tbq", "tsq", "delta", "day_ts", "bar_ts", "bar_open", "bar_high", "bar_low",
                 "bar_vol")

    def __init__(self, key: str, seed: int, now_ms: int) -> None:
        self.key = key
        self.segment, _, ident = key.partition("|")
        rng = self.rng = random.Random(stable_seed(seed, key))
        known = KNOWN.get(key)
        self.option_type: str | None = None
        if self.segment in INDEX_SEGMENTS:
            self.kind = "index"
            level = rng.uniform(20_000, 60_000)
            if self.segment == "GLOBAL_INDICATOR":
                level = rng.uniform(50, 120)
            elif self.segment == "MCX_INDEX":
                level = rng.uniform(10_000, 25_000)
        elif self.segment.endswith("_FO") or self.segment == "NSE_COM":
            if rng.random() < 0.75:
                self.kind = "option"
                self.option_type = rng.choice(("CE", "PE"))
                level = math.exp(rng.uniform(math.log(1.0), math.log(600.0)))
            else:
                self.kind = "future"
                level = rng.uniform(100, 5_000) if self.segment != "MCX_FO" else rng.uniform(1_000, 90_000)
        else:
            self.kind = "equity"
            level = rng.uniform(100, 5_000)
        if known is not None:
            level, self.symbol = known
        else:
            self.symbol = "SIM" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
        self.tick = 0.05
        self.lot = 1 if self.kind in ("equity", "index") else rng.choice(LOT_SIZES)
        self.sigma = {"index": 0.0003, "equity": 0.0006, "future": 0.0006, "option": 0.004}[self.kind]
        self.cp = self._round(level)
        self.ltp = self._round(level * math.exp(rng.gauss(0.0, 0.005)))
        self.open = self.high = self.low = self.ltp
        self.ltt = now_ms
        self.ltq = 0 if self.kind == "index" else self.lot * rng.randint(1, 20)
        self.vtt = 0 if self.kind == "index" else self.lot * rng.randint(1_000, 200_000)
        self.turnover = self.vtt * self.ltp
        self.oi = float(self.lot * rng.randint(1_000, 100_000)) if self.kind in ("option", "future") else 0.0
        self.iv = rng.uniform(0.10, 0.45) if self.kind == "option" else 0.0
        self.tbq = float(self.lot * rng.randint(1_000, 500_000)) if self.kind != "index" else 0.0
        self.tsq = float(self.lot * rng.randint(1_000, 500_000)) if self.kind != "index" else 0.0
        self.delta = rng.uniform(0.05, 0.95)
        self.day_ts = day_start_ms(now_ms)
        self.bar_ts = now_ms // MINUTE_MS * MINUTE_MS
        self.bar_open = self.bar_high = self.bar_low = self.ltp
        self.bar_vol = 0

    def _round(self, price: float) -> float:
        ticks = max(1, round(price / self.tick))
        return round(ticks * self.tick, 2)

    def step(self, now_ms: int) -> None:
        """One trade: the price moves, volume, OI, IV and the bars follow."""
        rng = self.rng
        self.ltp = self._round(self.ltp * math.exp(rng.gauss(0.0, self.sigma)))
        self.ltt = now_ms
        if self.kind != "index":
            self.ltq = self.lot * rng.randint(1, 20)
            self.vtt += self.ltq
            self.turnover += self.ltq * self.ltp
            self.tbq = max(float(self.lot), self.tbq + self.lot * rng.randint(-50, 50))
            self.tsq = max(float(self.lot), self.tsq + self.lot * rng.randint(-50, 50))
        if self.kind in ("option", "future"):
            self.oi = max(0.0, self.oi + self.lot * rng.randint(-5, 6))
        if self.kind == "option":
            self.iv = min(1.5, max(0.05, self.iv + rng.gauss(0.0, 0.002)))
            self.delta = min(0.98, max(0.02, self.delta + rng.gauss(0.0, 0.01)))
        self.high = max(self.high, self.ltp)
        self.low = min(self.low, self.ltp)
        bar_ts = now_ms // MINUTE_MS * MINUTE_MS
        if bar_ts != self.bar_ts:
            self.bar_ts = bar_ts
            self.bar_open = self.bar_high = self.bar_low = self.ltp
            self.bar_vol = 0
        self.bar_high = max(self.bar_high, self.ltp)
        self.bar_low = min(self.bar_low, self.ltp)
        self.bar_vol += self.ltq

    @property
    def atp(self) -> float:
        return round(self.turnover / self.vtt, 2) if self.vtt else self.ltp

    def depth(self, levels: int) -> list[tuple[int, float, int, float]]:
        """`levels` rows of (bidQ, bidP, askQ, askP): bids below asks, both moving away from the
        touch, quantities in whole lots."""
        rng = self.rng
        bid = self.ltp - self.tick * rng.randint(0, 2)
        ask = self.ltp + self.tick * rng.randint(1, 3)
        rows = []
        for _ in range(levels):
            bid = max(self.tick, bid)
            rows.append((self.lot * rng.randint(1, 100), round(bid, 2),
                         self.lot * rng.randint(1, 100), round(ask, 2)))
            bid -= self.tick * rng.randint(1, 4)
            ask += self.tick * rng.randint(1, 4)
        return rows

    def greeks(self) -> tuple[float, float, float, float, float]:
        """(delta, theta, gamma, vega, rho), signed as for a call or a put."""
        d = self.delta if self.option_type != "PE" else self.delta - 1.0
        bell = 1.0 - abs(2.0 * self.delta - 1.0)
        gamma = 0.0005 + 0.002 * bell
        theta = -(0.5 + self.ltp * 0.03 * bell)
        vega = 0.5 + 10.0 * bell
        rho = d * 0.5
        return (round(d, 4), round(theta, 4), round(gamma, 6), round(vega, 4), round(rho, 4))

    def auction(self) -> tuple[float, int, int, int, bool]:
        """Pre-open (call auction) figures: (iep, ieq, iiqTotal, iiqM, casEligible)."""
        rng = self.rng
        iep = self._round(self.ltp * (1.0 + rng.gauss(0.0, 0.001)))
        ieq = self.lot * rng.randint(100, 10_000)
        iiq_total = self.lot * rng.randint(-50_000, 50_000)
        iiq_m = self.lot * rng.randint(-5_000, 5_000)
        return iep, ieq, iiq_total, iiq_m, rng.random() < 0.3


class Market:
    """Every instrument the simulator has been asked about, shared by all connections."""

    def __init__(self, seed: int, max_instruments: int = 200_000) -> None:
        self.seed = seed
        self.max_instruments = max_instruments
        self._instruments: dict[str, Instrument] = {}

    def get(self, key: str, now_ms: int) -> Instrument:
        inst = self._instruments.get(key)
        if inst is None:
            if len(self._instruments) >= self.max_instruments:
                # Bounded memory: forget the oldest; it restarts from its seed if asked for again.
                self._instruments.pop(next(iter(self._instruments)))
            inst = self._instruments[key] = Instrument(key, self.seed, now_ms)
        return inst

    def __len__(self) -> int:
        return len(self._instruments)
