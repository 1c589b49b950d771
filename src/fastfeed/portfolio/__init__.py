"""The Portfolio Stream Feed: records, the decoder, the live book and the feed client.

    async with PortfolioFeed(token, order=True, position=True) as feed:
        async for update in feed.updates():
            ...

    from fastfeed.portfolio import PortfolioBook, decode_update

    book = PortfolioBook()
    record = decode_update(frame)   # OrderUpdate | PositionUpdate | HoldingUpdate | GttUpdate
    book.apply(record)
    book.orders[record.order_id]    # latest state; the views are safe to read from any thread
"""
from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio.book import PortfolioBook, PortfolioSnapshot
from fastfeed.portfolio.decode import decode_update, scrub
from fastfeed.portfolio.feed import UPDATE_TYPES, UPSTOX_PORTFOLIO_URL, PortfolioFeed, UpdateStream
from fastfeed.portfolio.records import (
    IST,
    REQUIRED,
    GttRule,
    GttUpdate,
    HoldingUpdate,
    OrderUpdate,
    PortfolioUpdate,
    PositionUpdate,
)

__all__ = [
    "IST",
    "REQUIRED",
    "UPDATE_TYPES",
    "UPSTOX_PORTFOLIO_URL",
    "GttRule",
    "GttUpdate",
    "HoldingUpdate",
    "OrderUpdate",
    "PortfolioBook",
    "PortfolioDecodeError",
    "PortfolioFeed",
    "PortfolioSnapshot",
    "PortfolioUpdate",
    "PositionUpdate",
    "UpdateStream",
    "decode_update",
    "scrub",
]
