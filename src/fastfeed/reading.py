"""The reading side every local-store feed shares: quotes and zero-copy views over its Store."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import numpy.typing as npt

from fastfeed._store import Store
from fastfeed.quote import Quote


@dataclass(frozen=True, slots=True)
class UpdateBatch:
    """What one read of the ring gave an ``updates()`` consumer.

    ``records``: a copy of the ring records (``RECORD_DTYPE``), oldest first, safe to keep.
    ``missed``: updates overwritten before this consumer got to them (it fell a ring behind).
    """

    records: npt.NDArray[Any]
    missed: int

    def __len__(self) -> int:
        return len(self.records)


class StoreReading:
    """``quote``, ``snapshot``, ``ring``, ``instruments`` and the ``updates()`` loop over
    ``self.store``, for MarketFeed and NatsFeed (one definition, so that both read the same way)."""

    store: Store
    ring_overruns: int

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

    async def _ring_batches(self, limit: int | None, from_start: bool,
                            more: Callable[[], Awaitable[bool]]) -> AsyncIterator[UpdateBatch]:
        """``updates()``'s loop: ring batches read with a cursor of this iterator's own, what a
        reader a whole ring behind lost totalled in ``ring_overruns``; when nothing is pending,
        ``more()`` waits for data, or says (False) that the feed has ended."""
        reader = self.store.reader(from_start)
        limit = self.store.ring_capacity if limit is None or limit <= 0 else limit
        while True:
            if reader.pending:
                records, missed = reader.read(limit)
                if missed:
                    self.ring_overruns += missed
                yield UpdateBatch(records, int(missed))
                continue
            if not await more():
                return
