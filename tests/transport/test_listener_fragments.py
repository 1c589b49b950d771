"""The listener's message reassembly against a real picows server that breaks the rules."""
from __future__ import annotations

import asyncio

import picows

from fastfeed import MarketFeed, ReconnectPolicy
from fastfeed.benchmark.frames import frame, instrument_keys
from feed_helpers import run, wait_until

KEYS = instrument_keys(3)


class RuleBreaker(picows.WSListener):
    """Starts a fragmented message, then sends whole messages without finishing it."""

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        first, second = frame(KEYS[:1], "full", seed=1), frame(KEYS[1:], "full", seed=2)
        transport.send(picows.WSMsgType.BINARY, first[:10], fin=False)
        transport.send(picows.WSMsgType.BINARY, second)          # abandons the fragment
        transport.send(picows.WSMsgType.BINARY, first)           # an ordinary message after it
        transport.send(picows.WSMsgType.BINARY, second[:7], fin=False)
        transport.send(picows.WSMsgType.CONTINUATION, second[7:], fin=True)


def test_a_new_message_abandons_an_unfinished_fragmented_one() -> None:
    async def main() -> None:
        server = await picows.ws_create_server(lambda request: RuleBreaker(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        feed = MarketFeed("tok", url=f"ws://127.0.0.1:{port}/", reconnect=ReconnectPolicy.disabled(),
                          ping_interval=None)
        try:
            await feed.connect()
            await wait_until(lambda: feed.decoder.frames >= 3, what="three whole messages")
            assert feed.decoder.errors == 0
            assert sorted(feed.instruments) == sorted(KEYS)
            assert feed.quote(KEYS[0]).updates == 1 and feed.quote(KEYS[2]).updates == 2
            assert feed._live_listener().stats()["unexpected"] == 1
        finally:
            await feed.close()
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)

    run(main())
