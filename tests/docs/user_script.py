"""A typical user's script, for mypy (tests/docs/test_types.py): every public entry point used the
way the README shows, with the types a user's editor would see. It is also run, against the
embedded simulator, so that it stays true."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from fastfeed import (RECORD_DTYPE, ROW_DTYPE, DecodeError, FeedDecoder, Gap, MarketFeed,
                      PortfolioFeed, Quote, ReconnectPolicy, SubscriptionLimitError, UpdateBatch,
                      to_dict)
from fastfeed.portfolio import OrderUpdate, PortfolioUpdate
from fastfeed.schema import MODES
from fastfeed.sim import SimulatorThread

KEY = "NSE_EQ|INE002A01018"


def describe(q: Quote) -> str:
    bid = q.best_bid
    return f"{q.key} {q.ltp:.2f} ({q.change:+.2f}) bid {bid[0] if bid else '-'} mode {q.mode}"


def on_update(records: npt.NDArray[Any]) -> None:
    assert records.dtype == RECORD_DTYPE


def on_gap(gap: Gap) -> None:
    print(f"gap of {gap.seconds:.1f} s after {gap.attempts} attempt(s)")


async def market(url: str) -> Quote:
    async with MarketFeed("demo-token", url=url, instruments=[KEY], mode="full",
                          reconnect=ReconnectPolicy()) as feed:
        feed.on("gap", on_gap)
        feed.on_update(on_update)
        quote: Quote = await feed.wait_for(KEY, timeout=10)
        feed.subscribe(["NSE_INDEX|Nifty 50"], quote.mode)  # Quote.mode speaks subscribe's words
        assert quote.mode in MODES
        batch: UpdateBatch
        async for batch in feed.updates():
            ltps: npt.NDArray[np.float64] = batch.records["ltp"]
            print(len(batch), batch.missed, float(ltps.max()))
            break
        try:
            feed.subscribe([f"NSE_FO|{i}" for i in range(6000)], "ltpc")
        except SubscriptionLimitError as exc:
            print(exc.cap, exc.limit, exc.requested)
        print(feed.stats()["updates"], feed.latency()["recv_minus_server_ms"]["p50"])
        return quote


async def portfolio(url: str) -> str:
    async with PortfolioFeed("demo-token", url=url, order=True) as feed:
        update: PortfolioUpdate
        async for update in feed.updates():
            if isinstance(update, OrderUpdate):
                return f"{update.order_id} {update.status} {update.instrument_token}"
    return ""


def threaded(url: str) -> Quote | None:
    with MarketFeed("demo-token", url=url, instruments=KEY) as feed:
        deadline = time.monotonic() + 10
        while feed.quote(KEY) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        rows: npt.NDArray[Any] = feed.snapshot
        assert rows.dtype == ROW_DTYPE
        return feed.quote(KEY)


def decoder(frame: bytes) -> dict[str, Any]:
    d = FeedDecoder(max_instruments=16, ring_capacity=1024)
    reader = d.reader()
    try:
        d.decode(frame)
    except DecodeError as exc:
        print(exc.offset, exc.reason)
    records, missed = reader.read()
    print(len(records), missed, d.quote(KEY))
    return to_dict(frame)


def main() -> None:
    with SimulatorThread(portfolio_rate=50) as sim:
        print(describe(asyncio.run(market(sim.market_url))))
        print(asyncio.run(portfolio(sim.portfolio_url)))
        print(threaded(sim.market_url))
    print(decoder(b"\x08\x01"))


if __name__ == "__main__":
    main()
