"""`PortfolioBook`: the latest state of every order, position, holding and GTT order, from records.

One thread applies updates; any number of threads read. Each view (`orders`, `positions`,
`holdings`, `gtt_orders`) is a read-only mapping (`MappingProxyType`) over a dict that is never
changed once handed out, so a reader holds a consistent snapshot for as long as it keeps the view
and can iterate it while updates arrive (no "dictionary changed size during iteration").

The writer never waits on a reader. `apply` sets the entry in the map's private dict and bumps
the map's version (O(1)); readers take no lock the writer takes. A read returns the last
snapshot when the version did not change since (no copy), and otherwise copies the dict once
(`dict.copy()` of a dict with str/tuple keys runs without releasing the GIL, so the copy is the
dict as of one moment between two updates; about a microsecond per hundred entries). So a map is
copied at most once per read that follows a change, never once per update: a burst of fills
costs one copy at the next read, and a book nobody reads costs no copies at all.

`snapshot()` (all four maps as of one moment) reads optimistically, seqlock-style: the writer
bumps a sequence number before and after each update, and a read that saw it change (or odd)
reads again; after a few tries it goes on trying under a lock that only readers take, yielding
to the writer in between. Two writers are serialized by a lock only writers take.

Nothing is ever removed: a complete, rejected or cancelled order, a closed position (quantity 0)
and a sold holding stay, showing their final state, as Upstox's own order book and positions do.
"""
from __future__ import annotations

import threading
import time
from types import MappingProxyType
from typing import Mapping, NamedTuple, Optional, Tuple

from fastfeed.portfolio.records import (
    GttUpdate,
    HoldingUpdate,
    OrderUpdate,
    PortfolioUpdate,
    PositionUpdate,
)

__all__ = ["PortfolioBook", "PortfolioSnapshot"]

PositionKey = Tuple[str, Optional[str]]  # (instrument_token, product)


class PortfolioSnapshot(NamedTuple):
    """The four views as of one moment between two updates."""

    orders: Mapping[str, OrderUpdate]
    positions: Mapping[PositionKey, PositionUpdate]
    holdings: Mapping[str, HoldingUpdate]
    gtt_orders: Mapping[str, GttUpdate]
    updates: int


class _Table:
    """One map: the writer's dict, its version, and the snapshot last handed to readers."""

    __slots__ = ("live", "version", "published")

    def __init__(self) -> None:
        self.live: dict = {}
        self.version = 0  # bumped by the writer after each change of `live`
        # (version the view was copied at, the view): one attribute, so it is replaced whole
        self.published: tuple[int, Mapping] = (0, MappingProxyType({}))

    def view(self) -> Mapping:
        version, view = self.published
        if version == self.version:  # the common case: no copy
            return view
        version = self.version  # read before the copy: the label is never newer than the data
        view = MappingProxyType(self.live.copy())
        self.published = (version, view)
        return view


_OPTIMISTIC_TRIES = 8


class PortfolioBook:
    """The live view of one account's portfolio, kept from Portfolio Stream Feed records.

    - `orders`: order_id -> latest `OrderUpdate`
    - `positions`: (instrument_token, product) -> latest `PositionUpdate`
    - `holdings`: instrument_token -> latest `HoldingUpdate`
    - `gtt_orders`: gtt_order_id -> latest `GttUpdate`

    Each property returns an immutable snapshot (a `MappingProxyType`) that later updates do not
    touch; read the property again for newer state. `snapshot()` returns all four as of one moment.
    """

    __slots__ = ("_write_lock", "_read_lock", "_seq", "_orders", "_positions", "_holdings",
                 "_gtt_orders", "_updates", "_route")

    def __init__(self) -> None:
        self._write_lock = threading.Lock()  # writers only: two writers must not interleave
        self._read_lock = threading.Lock()   # readers only: the writer never takes it
        self._seq = 0  # odd while the writer is changing the book
        self._orders = _Table()
        self._positions = _Table()
        self._holdings = _Table()
        self._gtt_orders = _Table()
        self._updates = 0
        self._route = {
            OrderUpdate: (self._orders, lambda r: r.order_id),
            PositionUpdate: (self._positions, lambda r: (r.instrument_token, r.product)),
            HoldingUpdate: (self._holdings, lambda r: r.instrument_token),
            GttUpdate: (self._gtt_orders, lambda r: r.gtt_order_id),
        }

    @property
    def orders(self) -> Mapping[str, OrderUpdate]:
        return self._orders.view()

    @property
    def positions(self) -> Mapping[PositionKey, PositionUpdate]:
        return self._positions.view()

    @property
    def holdings(self) -> Mapping[str, HoldingUpdate]:
        return self._holdings.view()

    @property
    def gtt_orders(self) -> Mapping[str, GttUpdate]:
        return self._gtt_orders.view()

    @property
    def updates(self) -> int:
        """How many records have been applied (a cheap "anything new?" for pollers)."""
        return self._updates

    def apply(self, record: PortfolioUpdate) -> PortfolioUpdate | None:
        """Make `record` the latest state of its order / position / holding / GTT order.

        Returns the record it replaced, or None if it is the first for its key.
        """
        route = self._route.get(type(record))
        if route is None:
            route = next((v for cls, v in self._route.items() if isinstance(record, cls)), None)
            if route is None:
                raise TypeError(f"not a portfolio update: {type(record).__name__}")
        table, key_of = route
        key = key_of(record)
        with self._write_lock:  # uncontended with one writer; readers never hold it
            self._seq += 1
            live = table.live
            previous = live.get(key)
            live[key] = record
            table.version += 1
            self._updates += 1
            self._seq += 1
        return previous

    def _try_snapshot(self) -> PortfolioSnapshot | None:
        seq = self._seq
        if seq & 1:
            return None
        snap = PortfolioSnapshot(self._orders.view(), self._positions.view(),
                                 self._holdings.view(), self._gtt_orders.view(), self._updates)
        return snap if self._seq == seq else None

    def snapshot(self) -> PortfolioSnapshot:
        """All four views and the update count, as of one moment between two updates."""
        for _ in range(_OPTIMISTIC_TRIES):
            snap = self._try_snapshot()
            if snap is not None:
                return snap
        with self._read_lock:  # readers queue here, one at a time; the writer goes on
            while True:
                time.sleep(0)  # let the writer finish its update
                snap = self._try_snapshot()
                if snap is not None:
                    return snap

    def __repr__(self) -> str:
        sizes = (len(self._orders.live), len(self._positions.live),
                 len(self._holdings.live), len(self._gtt_orders.live), self._updates)
        return ("<PortfolioBook orders={} positions={} holdings={} gtt_orders={} updates={}>"
                .format(*sizes))
