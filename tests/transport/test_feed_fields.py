"""FeedClient and the feeds built on it share methods (the hooks and the accessors), never private
fields: what the connection keeps is FeedClient's own, what a feed keeps is the feed's."""
from __future__ import annotations

import ast
import inspect

import fastfeed.market
import fastfeed.portfolio.feed
from fastfeed.transport.client import FeedClient


def private_fields_assigned(cls: type) -> set[str]:
    tree = ast.parse(inspect.getsource(cls))
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id == "self"
            and node.attr.startswith("_") and not node.attr.startswith("__")}


def private_names_used(module: object) -> set[str]:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_")}


def test_the_feeds_touch_no_private_field_of_feed_client() -> None:
    base = private_fields_assigned(FeedClient)
    assert {"_state", "_listener", "_transport", "_loop", "_task"} <= base  # the check sees them
    for module in (fastfeed.market, fastfeed.portfolio.feed):
        shared = base & private_names_used(module)
        assert not shared, f"{module.__name__} uses FeedClient's private fields {sorted(shared)}"


def test_the_feeds_keep_their_own_fields_apart_from_feed_clients() -> None:
    base = private_fields_assigned(FeedClient)
    for cls in (fastfeed.market.MarketFeed, fastfeed.portfolio.feed.PortfolioFeed):
        assert not base & private_fields_assigned(cls), cls.__name__


def test_the_connection_state_is_one_composed_object() -> None:
    from fastfeed.transport.state import PHASES, ConnectionState
    feed = fastfeed.market.MarketFeed("token", url="ws://127.0.0.1:9/v3/feed/market-data-feed")
    assert isinstance(vars(feed)["_state"], ConnectionState)
    assert feed.state == "idle" and not feed.connected and not feed.running
    assert PHASES == ("idle", "connecting", "open", "backing off", "stopped")


def test_connection_state_transitions_and_the_stable_rule() -> None:
    import pytest
    from fastfeed.transport.state import ConnectionState
    state = ConnectionState()
    with pytest.raises(RuntimeError, match="idle -> open"):
        state.opened(0.0, 0)
    state.connecting()
    state.failed(OSError("refused"))
    assert (state.phase, state.failures) == ("backing off", 1)
    state.connecting()
    state.opened(10.0, delivered=7)
    # short and silent: one more failed attempt; long, or with data: the count restarts
    assert not state.lost(10.5, 7, stable_after=5.0, why=OSError("gone")) and state.failures == 2
    state.connecting()
    state.opened(20.0, 7)
    assert state.lost(20.1, 8, stable_after=5.0, why=OSError("gone")) and state.failures == 1
    state.connecting()
    state.opened(30.0, 8)
    assert state.lost(36.0, 8, stable_after=5.0, why=OSError("gone")) and state.failures == 1
    state.stopped(None)
    state.reset()
    assert (state.phase, state.failures, state.last_error) == ("idle", 0, None)
