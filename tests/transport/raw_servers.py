"""Servers written in the tests, over real sockets on 127.0.0.1, that misbehave in ways the
simulator cannot: garbage instead of HTTP, bare status lines, a WebSocket upgrade followed by an
instant close, a CLOSE frame without a status code, certificates nobody trusts."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
from typing import Any, Awaitable, Callable

import trustme

Handler = Callable[["Connection"], Awaitable[None]]
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Connection:
    """One accepted TCP connection: the request read, and ways to answer it."""

    def __init__(self, server: "RawServer", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.request_line = ""
        self.headers: dict[str, str] = {}

    async def read_request(self) -> None:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        line, *rest = head.split("\r\n")
        self.request_line = line
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (h.partition(":") for h in rest if h)}
        self.server.requests.append(self)

    @property
    def path(self) -> str:
        return self.request_line.split(" ")[1]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, status: int, reason: str, body: bytes = b"", **headers: str) -> None:
        """A plain HTTP answer, then the connection is closed."""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.close()

    async def accept_websocket(self, *messages: bytes) -> None:
        """The upgrade, with binary `messages` (unmasked, unfragmented) in the same write: the
        client reads them with the upgrade, before it can answer."""
        key = self.headers["sec-websocket-key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        frames = b"".join(server_frame(m) for m in messages)
        await self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode()
                        + frames)

    async def read_frame(self) -> tuple[int, bytes]:
        """One (masked) client frame: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        size = b1 & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        mask = await self.reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        data = await self.reader.readexactly(size)
        return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))

    def close(self) -> None:
        self.writer.close()


def server_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One unmasked, unfragmented server frame (0x2 binary, 0x9 PING, 0xA PONG...)."""
    return bytes([0x80 | opcode]) + _length(len(payload)) + payload


def _length(n: int) -> bytes:
    """A server frame's payload length, in the shortest form (RFC 6455 5.2)."""
    if n < 126:
        return bytes([n])
    return bytes([126]) + struct.pack("!H", n) if n < 1 << 16 else bytes([127]) + struct.pack("!Q", n)


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 that hands every connection to `handler`."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[Connection] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "RawServer":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 5)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/", scheme: str = "ws", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = Connection(self, reader, writer)
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass  # the client went away: what these tests look at is the client
        finally:
            writer.close()


def answering(status: int, reason: str, body: bytes = b"", **headers: str) -> Handler:
    """A handler that reads the request and gives one plain HTTP answer."""
    async def handler(conn: Connection) -> None:
        await conn.read_request()
        await conn.answer(status, reason, body, **headers)
    return handler


def sending(data: bytes) -> Handler:
    """A handler that reads the request and answers with raw bytes (garbage), then closes."""
    async def handler(conn: Connection) -> None:
        await conn.read_request()
        await conn.send(data)
        conn.close()
    return handler


def untrusted_tls() -> ssl.SSLContext:
    """A server context whose certificate comes from a CA that no client trusts."""
    ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


def feed_url(feed_cls: Any, server: RawServer, path: str | None = None, scheme: str = "ws") -> str:
    """The URL of `server` at the feed's own path (or `path`)."""
    from urllib.parse import urlsplit
    return server.url(path if path is not None else urlsplit(feed_cls.DEFAULT_URL).path, scheme)
