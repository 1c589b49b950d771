"""fastfeed beyond one machine: a hub's feed bridged to NATS JetStream, rebuilt by remote readers.

``Bridge(feed, servers, prefix="upstox")`` publishes; ``NatsFeed(servers, prefix="upstox")``
reads. Needs the ``nats`` extra: ``pip install 'fastfeed[nats]'``. Subjects: see ``subjects``.
"""
from fastfeed.nats.bridge import Bridge
from fastfeed.nats.feed import NatsFeed
from fastfeed.nats.subjects import key_of, token_of

__all__ = ["Bridge", "NatsFeed", "key_of", "token_of"]
