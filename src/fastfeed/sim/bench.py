"""How fast the simulator can push: a benchmark-mode server against a client that only counts
bytes (no WebSocket parsing, no decoding), so the number is the server's ceiling.

    python -c "from fastfeed.sim.bench import measure_push_rate; print(measure_push_rate())"
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from typing import Any
from urllib.parse import urlsplit

from .runner import SimulatorThread

_TOKEN = "bench-token"


def masked_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One final client-to-server WebSocket frame (clients must mask)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + body


def authorized_uri(sim: Any, token: str, ssl_ctx: ssl.SSLContext | None) -> str:
    parts = urlsplit(sim.authorize_url())
    conn: http.client.HTTPConnection
    if ssl_ctx is not None:
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ssl_ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path, headers={"Authorization": f"Bearer {token}",
                                                 "Accept": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    return str(body["data"]["authorized_redirect_uri"])


def open_raw_websocket(uri: str, ssl_ctx: ssl.SSLContext | None, timeout: float = 10.0) -> socket.socket:
    """A socket past the WebSocket handshake to `uri`, with nothing else read."""
    parts = urlsplit(uri)
    sock: socket.socket = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    if ssl_ctx is not None:
        sock = ssl_ctx.wrap_socket(sock, server_hostname=parts.hostname)
    key = b64encode(os.urandom(16)).decode()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: not a single frame byte may be consumed here
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        status_line = head.split(b"\r\n", 1)[0]
        raise ConnectionError(f"handshake refused: {status_line!r}")
    return sock


def count_bytes(uri: str, request: bytes, cafile: str | None = None) -> dict[str, float]:
    """The client side: handshake, send `request`, then count bytes until the server closes."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    sock = open_raw_websocket(uri, ctx)
    sock.sendall(masked_frame(request))
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    total = 0
    n = sock.recv_into(view)
    start = time.perf_counter()
    while n:
        total += n
        n = sock.recv_into(view)
    elapsed = time.perf_counter() - start
    sock.close()
    return {"bytes": float(total), "seconds": elapsed}


def measure_push_rate(frames: int = 2_000_000, mode: str = "full", instruments_per_frame: int = 1,
                      subscribe: int = 100, tls: bool = False, seed: int = 0,
                      in_process: bool = False) -> dict[str, float]:
    """Frames per second (and MB/s) a benchmark-mode simulator pushes to a byte-counting client.

    The simulator runs in a thread of this process; the client runs in a child process (so the
    two do not share a GIL), unless `in_process`.
    """
    with SimulatorThread(tokens=[_TOKEN], bench=True, bench_frames=frames, seed=seed, tls=tls,
                         instruments=subscribe, instruments_per_frame=instruments_per_frame,
                         ping_interval=None) as sim:
        ctx = sim.client_ssl_context() if tls else None
        uri = authorized_uri(sim, _TOKEN, ctx)
        request = json.dumps({"guid": "bench", "method": "sub", "data": {
            "instrumentKeys": sim.instruments[:subscribe], "mode": mode}}).encode()
        if in_process:
            result = count_bytes(uri, request, None)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                cafile = None
                if tls:
                    cafile = os.path.join(tmp, "ca.pem")
                    with open(cafile, "wb") as f:
                        f.write(sim.ca_pem or b"")
                code = ("import json,sys; from fastfeed.sim.bench import count_bytes; "
                        "print(json.dumps(count_bytes(sys.argv[1], sys.argv[2].encode(), "
                        "sys.argv[3] or None)))")
                out = subprocess.run([sys.executable, "-c", code, uri, request.decode(), cafile or ""],
                                     check=True, capture_output=True, text=True, timeout=600)
                result = json.loads(out.stdout)
        sent = sim.counters.frames_sent
    elapsed = result["seconds"]
    return {"frames": float(sent), "bytes": result["bytes"], "seconds": elapsed,
            "frames_per_s": sent / elapsed if elapsed else 0.0,
            "mb_per_s": result["bytes"] / elapsed / 1e6 if elapsed else 0.0}


if __name__ == "__main__":
    for use_tls in (False, True):
        result = measure_push_rate(tls=use_tls)
        print(("TLS " if use_tls else "TCP ") + " ".join(f"{k}={v:,.1f}" for k, v in result.items()))
