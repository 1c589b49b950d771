"""`PortfolioBook`: the latest state of every order, position, holding and GTT order, from records.

One thread applies updates; any number of threads read. Each view (`orders`, `positions`,
`holdings`, `gtt_orders`) is a read-only mapping (`MappingProxyType`) over a dict that is never
changed once handed out, so a reader holds a consistent snapshot for as long as it keeps the view
and can iterate it while updates arrive (no "dictionary changed size during iteration").

Writes are O(1): `apply` sets the entry in a private dict under a lock and marks that map changed.
A read returns the last snapshot when nothing changed since (no lock, no copy), and otherwise
copies the dict once under the lock (about a microsecond per hundred entries). So a map is copied
at most once per read that follows a change, never once per update: a burst of fills costs one
copy at the next read, and a book nobody reads costs no copies at all.

Nothing is ever removed: a complete, rejected or cancelled order, a closed position (quantity 0)
and a sold holding stay, showing their final state, as Upstox's own order book and positions do.
"""
from __future__ import annotations

import threading
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
    """One map: the writer's dict, and the snapshot last handed to readers."""

    __slots__ = ("live", "view", "changed")

    def __init__(self) -> None:
        self.live: dict = {}
        self.view: Mapping = MappingProxyType({})
        self.changed = False


class PortfolioBook:
    """The live view of one account's portfolio, kept from Portfolio Stream Feed records.

    - `orders`: order_id -> latest `OrderUpdate`
    - `positions`: (instrument_token, product) -> latest `PositionUpdate`
    - `holdings`: instrument_token -> latest `HoldingUpdate`
    - `gtt_orders`: gtt_order_id -> latest `GttUpdate`

    Each property returns an immutable snapshot (a `MappingProxyType`) that later updates do not
    touch; read the property again for newer state. `snapshot()` returns all four as of one moment.
    """

    __slots__ = ("_lock", "_orders", "_positions", "_holdings", "_gtt_orders", "_updates",
                 "_route")

    def __init__(self) -> None:
        self._lock = threading.Lock()
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

    def _view(self, table: _Table) -> Mapping:
        if not table.changed:  # the common case: no lock, no copy
            return table.view
        with self._lock:
            return self._refresh(table)

    @staticmethod
    def _refresh(table: _Table) -> Mapping:  # with the lock held
        if table.changed:
            table.view = MappingProxyType(table.live.copy())
            table.changed = False
        return table.view

    @property
    def orders(self) -> Mapping[str, OrderUpdate]:
        return self._view(self._orders)

    @property
    def positions(self) -> Mapping[PositionKey, PositionUpdate]:
        return self._view(self._positions)

    @property
    def holdings(self) -> Mapping[str, HoldingUpdate]:
        return self._view(self._holdings)

    @property
    def gtt_orders(self) -> Mapping[str, GttUpdate]:
        return self._view(self._gtt_orders)

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
        with self._lock:
            live = table.live
            previous = live.get(key)
            live[key] = record
            table.changed = True
            self._updates += 1
        return previous

    def snapshot(self) -> PortfolioSnapshot:
        """All four views and the update count, as of one moment between two updates."""
        with self._lock:
            refresh = self._refresh
            return PortfolioSnapshot(refresh(self._orders), refresh(self._positions),
                                     refresh(self._holdings), refresh(self._gtt_orders),
                                     self._updates)

    def __repr__(self) -> str:
        with self._lock:
            sizes = (len(self._orders.live), len(self._positions.live),
                     len(self._holdings.live), len(self._gtt_orders.live), self._updates)
        return ("<PortfolioBook orders={} positions={} holdings={} gtt_orders={} updates={}>"
                .format(*sizes))
