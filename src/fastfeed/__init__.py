"""fastfeed: Upstox real-time feeds at native speed."""
import logging

from fastfeed._decode import FeedDecoder
from fastfeed._render import to_dict
from fastfeed._store import BAR_DTYPE, RECORD_DTYPE, ROW_DTYPE, RingReader, Store
from fastfeed.errors import DecodeError, FastfeedError, InstrumentLimitError
from fastfeed.quote import Bar, Quote

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "BAR_DTYPE",
    "Bar",
    "DecodeError",
    "FastfeedError",
    "FeedDecoder",
    "InstrumentLimitError",
    "Quote",
    "RECORD_DTYPE",
    "ROW_DTYPE",
    "RingReader",
    "Store",
    "to_dict",
]

from fastfeed.errors import (AuthenticationError, FeedConnectionError, ReconnectStoppedError,
                             SubscriptionLimitError)
from fastfeed.events import Gap
from fastfeed.market import UPSTOX_MARKET_URL, MarketFeed, UpdateBatch
from fastfeed.transport import FeedClient, ReconnectPolicy

__all__ += [
    "AuthenticationError",
    "FeedClient",
    "FeedConnectionError",
    "Gap",
    "MarketFeed",
    "ReconnectPolicy",
    "ReconnectStoppedError",
    "SubscriptionLimitError",
    "UPSTOX_MARKET_URL",
    "UpdateBatch",
]

from fastfeed.portfolio import PortfolioFeed

__all__ += ["PortfolioFeed"]
