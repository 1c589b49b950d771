"""fastfeed: Upstox real-time feeds at native speed."""
import logging

from fastfeed._decode import FeedDecoder
from fastfeed._render import to_dict
from fastfeed._store import BAR_DTYPE, RECORD_DTYPE, ROW_DTYPE, RingReader, Store
from fastfeed.errors import (AuthenticationError, DecodeError, FastfeedError, FeedClosedError,
                             FeedConnectionError, InstrumentLimitError, PermanentConnectionError,
                             PortfolioDecodeError, ReconnectStoppedError, SeqlockTimeoutError,
                             SubscriptionLimitError)
from fastfeed.events import Gap
from fastfeed.market import UPSTOX_MARKET_URL, MarketFeed, UpdateBatch
from fastfeed.portfolio import PortfolioFeed
from fastfeed.quote import Bar, Quote
from fastfeed.transport import FeedClient, ReconnectPolicy

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BAR_DTYPE",
    "Bar",
    "DecodeError",
    "FastfeedError",
    "FeedClient",
    "FeedClosedError",
    "FeedConnectionError",
    "FeedDecoder",
    "Gap",
    "InstrumentLimitError",
    "MarketFeed",
    "PermanentConnectionError",
    "PortfolioDecodeError",
    "PortfolioFeed",
    "Quote",
    "RECORD_DTYPE",
    "ROW_DTYPE",
    "ReconnectPolicy",
    "ReconnectStoppedError",
    "RingReader",
    "SeqlockTimeoutError",
    "Store",
    "SubscriptionLimitError",
    "UPSTOX_MARKET_URL",
    "UpdateBatch",
    "to_dict",
]
