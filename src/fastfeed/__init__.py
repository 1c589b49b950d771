"""fastfeed: Upstox real-time feeds at native speed.

The public names below are loaded on first use (a module ``__getattr__``), so that
``import fastfeed`` costs little and ``fastfeed.sim`` runs without loading the client.
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastfeed._decode import FeedDecoder
    from fastfeed._render import to_dict
    from fastfeed._store import BAR_DTYPE, RECORD_DTYPE, ROW_DTYPE, RingReader, Store
    from fastfeed.errors import (AuthenticationError, CaptureError, DecodeError, FastfeedError,
                                 FeedClosedError, FeedConnectionError, HubGoneError,
                                 InstrumentLimitError, PermanentConnectionError,
                                 PortfolioDecodeError, ReconnectStoppedError, SeqlockTimeoutError,
                                 SubscriptionLimitError)
    from fastfeed.events import Gap
    from fastfeed.market import UPSTOX_MARKET_URL, MarketFeed, UpdateBatch
    from fastfeed.portfolio import PortfolioFeed
    from fastfeed.quote import Bar, Quote
    from fastfeed.shared import SharedFeed, attach
    from fastfeed.transport import FeedClient, ReconnectPolicy

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

# Public name -> the module that defines it.
_WHERE = {
    "AuthenticationError": "fastfeed.errors",
    "BAR_DTYPE": "fastfeed._store",
    "Bar": "fastfeed.quote",
    "CaptureError": "fastfeed.errors",
    "DecodeError": "fastfeed.errors",
    "FastfeedError": "fastfeed.errors",
    "FeedClient": "fastfeed.transport",
    "FeedClosedError": "fastfeed.errors",
    "FeedConnectionError": "fastfeed.errors",
    "FeedDecoder": "fastfeed._decode",
    "Gap": "fastfeed.events",
    "HubGoneError": "fastfeed.errors",
    "InstrumentLimitError": "fastfeed.errors",
    "MarketFeed": "fastfeed.market",
    "PermanentConnectionError": "fastfeed.errors",
    "PortfolioDecodeError": "fastfeed.errors",
    "PortfolioFeed": "fastfeed.portfolio",
    "Quote": "fastfeed.quote",
    "RECORD_DTYPE": "fastfeed._store",
    "ROW_DTYPE": "fastfeed._store",
    "ReconnectPolicy": "fastfeed.transport",
    "ReconnectStoppedError": "fastfeed.errors",
    "RingReader": "fastfeed._store",
    "SeqlockTimeoutError": "fastfeed.errors",
    "SharedFeed": "fastfeed.shared",
    "Store": "fastfeed._store",
    "SubscriptionLimitError": "fastfeed.errors",
    "UPSTOX_MARKET_URL": "fastfeed.market",
    "UpdateBatch": "fastfeed.market",
    "attach": "fastfeed.shared",
    "to_dict": "fastfeed._render",
}

# A literal list, so that type checkers see what is exported (a test checks it against _WHERE).
__all__ = [
    "AuthenticationError",
    "BAR_DTYPE",
    "Bar",
    "CaptureError",
    "DecodeError",
    "FastfeedError",
    "FeedClient",
    "FeedClosedError",
    "FeedConnectionError",
    "FeedDecoder",
    "Gap",
    "HubGoneError",
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
    "SharedFeed",
    "Store",
    "SubscriptionLimitError",
    "UPSTOX_MARKET_URL",
    "UpdateBatch",
    "attach",
    "to_dict",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fastfeed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
