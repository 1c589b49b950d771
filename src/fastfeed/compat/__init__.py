"""fastfeed.compat: drop-in replacements for the official SDK's streamers.

    from fastfeed.compat import MarketDataStreamerV3     # was: from upstox_client import ...

Same constructor, methods, events and message shapes as ``upstox_client.MarketDataStreamerV3``
and ``PortfolioDataStreamer`` (upstox-python-sdk 2.30.0), on MarketFeed / PortfolioFeed.
``upstox_client`` is not needed: ``api_client`` may be an ``ApiClient`` or the access token.

Where to connect when no ``url=`` is given: these module attributes, read at ``connect()``.
"""
from fastfeed.errors import SubscriptionLimitError
from fastfeed.market import UPSTOX_MARKET_URL
from fastfeed.portfolio.feed import UPSTOX_PORTFOLIO_URL

from .market import MarketDataStreamerV3
from .portfolio import PortfolioDataStreamer

MARKET_DATA_URL = UPSTOX_MARKET_URL
PORTFOLIO_URL = UPSTOX_PORTFOLIO_URL

__all__ = ["MARKET_DATA_URL", "MarketDataStreamerV3", "PORTFOLIO_URL", "PortfolioDataStreamer",
           "SubscriptionLimitError"]
