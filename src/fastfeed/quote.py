"""The immutable record a reader gets for one instrument."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple


class Bar(NamedTuple):
    """One OHLC bar (MarketOHLC.ohlc); the interval is the key it is filed under."""

    open: float
    high: float
    low: float
    close: float
    vol: int
    ts: int


class _Deferred:
    """Quote's one slot outside its fields. A Quote the store builds (fastfeed._store) leaves
    ``bids``, ``asks`` and ``ohlc`` unset and keeps the row's levels and bars here, copied; the
    store's descriptors for those three fields make them at the first read. So an ``on_quote``
    callback that looks only at prices pays for none of their 15-odd tuples, and a Quote made
    through the constructor is a plain dataclass instance."""

    __slots__ = ("_parts",)


@dataclass(frozen=True, slots=True)
class Quote(_Deferred):
    """The latest merged state of one instrument, copied consistently out of the snapshot table.

    Names follow the schema in snake_case. ``server_ts`` is the frame's ``currentTs`` (epoch ms),
    ``recv_ns`` the receive time (epoch ns). ``bids``/``asks`` are (price, quantity), best first.
    ``ltpc_iep`` is LTPC.iep, None when the feed did not send it. ``mode`` is the subscription
    mode that produced the row, in the words `subscribe` takes (``"full"`` for the frames'
    ``full_d5``), so ``feed.subscribe(key, quote.mode)`` asks for the same again.
    """

    key: str
    ltp: float
    ltt: int
    ltq: int
    cp: float
    ltpc_iep: float | None
    atp: float
    vtt: int
    oi: float
    iv: float
    tbq: float
    tsq: float
    iep: float
    rp: float
    ieq: int
    iiq_total: int
    iiq_m: int
    cas_eligible: bool
    delta: float
    theta: float
    gamma: float
    vega: float
    rho: float
    bids: tuple[tuple[float, int], ...]
    asks: tuple[tuple[float, int], ...]
    ohlc: Mapping[str, Bar]
    mode: str
    kind: str
    server_ts: int
    recv_ns: int
    updates: int
    stale: bool

    @property
    def change(self) -> float:
        """LTP minus the previous close."""
        return self.ltp - self.cp

    @property
    def best_bid(self) -> tuple[float, int] | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> tuple[float, int] | None:
        return self.asks[0] if self.asks else None
