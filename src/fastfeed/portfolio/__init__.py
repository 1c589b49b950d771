"""The Portfolio Stream Feed's typed side: records, the decoder and the live book.

    from fastfeed.portfolio import PortfolioBook, decode_update

    book = PortfolioBook()
    record = decode_update(frame)   # OrderUpdate | PositionUpdate | HoldingUpdate | GttUpdate
    book.apply(record)
    book.orders[record.order_id]    # latest state; the views are safe to read from any thread
"""
from fastfeed.errors import PortfolioDecodeError
from fastfeed.portfolio.book import PortfolioBook, PortfolioSnapshot
from fastfeed.portfolio.decode import decode_update, scrub
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
    "GttRule",
    "GttUpdate",
    "HoldingUpdate",
    "OrderUpdate",
    "PortfolioBook",
    "PortfolioDecodeError",
    "PortfolioSnapshot",
    "PortfolioUpdate",
    "PositionUpdate",
    "decode_update",
    "scrub",
]
