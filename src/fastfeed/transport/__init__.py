"""The transport layer: picows connections, redirects and authorize, TLS, reconnect policy,
request frames and subscription caps. Shared by every feed client."""
from .client import FeedClient
from .connection import ConnectOptions, ReconnectPolicy, Secret
from .requests import request, requests
from .subscriptions import CAPS, MODES, SubscriptionBook

__all__ = ["CAPS", "ConnectOptions", "FeedClient", "MODES", "ReconnectPolicy", "Secret",
           "SubscriptionBook", "request", "requests"]
