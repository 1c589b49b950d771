"""The reading side every local-store feed shares: quotes and zero-copy views over its Store."""
from __future__ import annotations

from typing import Any

import numpy.typing as npt

from fastfeed._store import Store
from fastfeed.quote import Quote


class StoreReading:
    """``quote``, ``snapshot``, ``ring`` and ``instruments`` over ``self.store``, for MarketFeed
    and NatsFeed (one definition, so that both read the same way)."""

    store: Store

    def quote(self, key: str) -> Quote | None:
        """The latest Quote of `key` (None if it never arrived). Safe from any thread.
        A key that is not a string raises TypeError."""
        return self.store.quote(key)

    @property
    def snapshot(self) -> npt.NDArray[Any]:
        """Zero-copy view of the snapshot table (``ROW_DTYPE``), one row per instrument seen."""
        return self.store.snapshot

    @property
    def ring(self) -> npt.NDArray[Any]:
        """Zero-copy view of the update ring (``RECORD_DTYPE``)."""
        return self.store.ring

    @property
    def instruments(self) -> list[str]:
        """Keys data arrived for, in snapshot row order: ``snapshot[i]`` is ``instruments[i]``.
        A row stays after its key is unsubscribed (rows are never freed), and a subscribed key
        has no row until its first update."""
        return self.store.instruments
