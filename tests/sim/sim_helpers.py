"""Helpers for the simulator tests (imported by name: tests/sim has no __init__.py)."""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import uuid
from typing import Any

import websockets
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as up

from fastfeed.sim.bench import masked_frame, open_raw_websocket
from feed_helpers import run, wait_until  # noqa: F401 (re-exported)

TOKEN = "test-token-standard"
PLUS = "test-token-plus"


def request(method: str, keys: list[str], mode: str | None = None) -> bytes:
    data: dict[str, Any] = {"instrumentKeys": keys}
    if mode is not None:
        data["mode"] = mode
    return json.dumps({"guid": str(uuid.uuid4()), "method": method, "data": data}).encode()


def stalled_market_client(sim: Any, keys: list[str]) -> socket.socket:
    """Blocking: authorize, open a raw WebSocket, subscribe `keys` in full, and never read (so the
    server's writes back up). Run it in a thread."""
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", "/v3/feed/market-data-feed/authorize",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    uri = json.loads(conn.getresponse().read())["data"]["authorized_redirect_uri"]
    sock = open_raw_websocket(uri, None)
    sock.sendall(masked_frame(request("sub", keys, "full")))
    return sock


def connect(url: str, token: str = TOKEN, **kwargs: Any) -> Any:
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", 1 << 24)
    kwargs.setdefault("open_timeout", 5)
    # A test that stops reading while the server still pushes would otherwise leave websockets'
    # receive queue full, its reading paused, and the closing handshake waiting for close_timeout.
    kwargs.setdefault("max_queue", None)
    kwargs.setdefault("close_timeout", 2)
    return websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **kwargs)


async def recv_feed(ws: Any, timeout: float = 5.0) -> up.FeedResponse:
    """The next frame, parsed with the official SDK's generated class."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, bytes)
    return up.FeedResponse.FromString(raw)


async def recv_until(ws: Any, kind: int, timeout: float = 5.0) -> up.FeedResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await recv_feed(ws, max(0.01, deadline - loop.time()))
        if frame.type == kind:
            return frame


class RawFrames:
    """A picows client listener that records frames as they come off the wire, fragments and
    control frames included (websockets would reassemble them)."""

    def __init__(self) -> None:
        import picows

        class Listener(picows.WSListener):  # type: ignore[misc]
            def on_ws_connected(inner, transport: Any) -> None:
                self.transport = transport

            def on_ws_frame(inner, transport: Any, frame: Any) -> None:
                self.frames.append((frame.msg_type, frame.fin, frame.get_payload_as_bytes()))

            def on_ws_disconnected(inner, transport: Any) -> None:
                self.disconnected = True

        self.listener_class = Listener
        self.frames: list[tuple[Any, bool, bytes]] = []
        self.transport: Any = None
        self.disconnected = False

    async def connect(self, url: str, token: str = TOKEN, **kwargs: Any) -> "RawFrames":
        import picows
        await picows.ws_connect(self.listener_class, url,
                                extra_headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return self
