"""The control channel between a hub and its readers: JSON lines over a Unix socket beside the
segment.

A reader asks for keys (``subscribe``) and lets them go (``unsubscribe``); the hub applies the
change to its MarketFeed, which checks Upstox's caps, and answers with the keys or the error.
Interest is counted per key across readers: a key is dropped upstream only when no reader wants
it any more (and the hub did not want it itself), and it is subscribed in the richest mode any
reader asked for. A reader's connection closing (a crash included) lets go of everything it held.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections import Counter
from typing import Any, Iterable

from fastfeed.errors import FastfeedError, HubGoneError, SubscriptionLimitError
from fastfeed.transport.subscriptions import check_mode, normalize_keys

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20  # 5,000 keys of Upstox's longest fit many times over
# The richer of two modes wins when readers ask for one key in different modes.
RANK = {"ltpc": 0, "option_greeks": 1, "full": 2, "full_d30": 3}


def _error_reply(exc: Exception) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SubscriptionLimitError):
        reply.update(cap=exc.cap, limit=exc.limit, requested=exc.requested)
    return reply


def _raise_reply(reply: dict[str, Any]) -> None:
    message = str(reply.get("message", "the hub refused the request"))
    kind = reply.get("error")
    exc: Exception
    if kind == "SubscriptionLimitError":
        exc = SubscriptionLimitError(str(reply.get("cap")), int(reply.get("limit", 0)),
                                     int(reply.get("requested", 0)))
        exc.args = (message,)
    elif kind == "ValueError":
        exc = ValueError(message)
    else:
        exc = FastfeedError(message)
    raise exc


class Interest:
    """Which reader wants which key in which mode, and what that asks of the feed.

    `feed` is anything with MarketFeed's ``subscribe``, ``unsubscribe`` and ``subscriptions``.
    Runs on the hub's loop only.
    """

    def __init__(self, feed: Any) -> None:
        self.feed = feed
        self._modes: dict[str, Counter[str]] = {}    # key -> readers' modes, counted
        self._own: dict[str, str | None] = {}        # key -> the hub's own mode before readers came

    def wanted_by(self, key: str) -> int:
        """How many readers want `key`."""
        return sum(self._modes.get(key, Counter()).values())

    def _effective(self, key: str, modes: Counter[str]) -> str | None:
        candidates = [m for m, n in modes.items() if n > 0]
        own = self._own.get(key)
        if own is not None:
            candidates.append(own)
        return max(candidates, key=RANK.__getitem__) if candidates else None

    def add(self, reader: dict[str, str], keys: list[str], mode: str) -> list[str]:
        """`reader` (its key -> mode) now wants `keys` in `mode`. All or nothing."""
        mode = check_mode(mode)
        upstream = self.feed.subscriptions
        plan: dict[str, str] = {}
        for key in keys:
            modes = Counter(self._modes.get(key, Counter()))
            old = reader.get(key)
            if old is not None:
                modes[old] -= 1
            modes[mode] += 1
            own = self._own[key] if key in self._own else upstream.get(key)
            self._own.setdefault(key, own)
            target = self._effective(key, modes)
            if target is not None and upstream.get(key) != target:
                plan[key] = target
        try:
            for target in sorted(set(plan.values()), key=RANK.__getitem__, reverse=True):
                self.feed.subscribe([k for k, m in plan.items() if m == target], target)
        except Exception:
            for key in keys:
                if key not in self._modes:
                    self._own.pop(key, None)
            raise
        for key in keys:
            modes = self._modes.setdefault(key, Counter())
            old = reader.get(key)
            if old is not None:
                modes[old] -= 1
            modes[mode] += 1
            reader[key] = mode
        return keys

    def remove(self, reader: dict[str, str], keys: Iterable[str]) -> list[str]:
        """`reader` lets go of `keys`; returns those it held."""
        released = []
        for key in keys:
            mode = reader.pop(key, None)
            if mode is None:
                continue
            released.append(key)
            modes = self._modes[key]
            modes[mode] -= 1
            modes = +modes
            if modes:
                self._modes[key] = modes
            else:
                del self._modes[key]
            target = self._effective(key, modes)
            current = self.feed.subscriptions.get(key)
            if not modes:
                self._own.pop(key, None)
            if target is None:
                if current is not None:
                    self.feed.unsubscribe([key])
            elif target != current:
                try:
                    self.feed.subscribe([key], target)
                except SubscriptionLimitError as exc:  # keep the richer mode rather than fail
                    log.info("kept %s in %s: %s", key, current, exc)
        return released


class ControlServer:
    """The hub's side: a Unix socket server on the feed's loop."""

    def __init__(self, feed: Any, path: str, hello: dict[str, Any]) -> None:
        self.path = path
        self.interest = Interest(feed)
        self._hello = hello
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.readers = 0  # connections now open

    async def start(self) -> None:
        if os.path.exists(self.path):  # left by a killed hub: the segment's check said so
            os.unlink(self.path)
        old = os.umask(0o177)  # owner only, like the segment
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE)
        finally:
            os.umask(old)
        self._inode = os.stat(self.path).st_ino

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        try:
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.readers += 1
        wants: dict[str, str] = {}
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):  # a line over MAX_LINE
                    break
                if not line:
                    break
                reply = self._handle(line, wants)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.readers -= 1
            self._tasks.discard(task)
            try:
                self.interest.remove(wants, list(wants))
            except Exception:
                log.exception("releasing a reader's subscriptions failed")
            writer.close()

    def _handle(self, line: bytes, wants: dict[str, str]) -> dict[str, Any]:
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            request_id = request.get("id")
            op = request.get("op")
            if op == "hello":
                reply: dict[str, Any] = {"ok": True, **self._hello}
            elif op == "subscribe":
                keys = normalize_keys(request.get("keys", []))
                mode = request.get("mode", "ltpc")
                if not isinstance(mode, str):
                    raise ValueError("mode must be a string")
                reply = {"ok": True, "keys": self.interest.add(wants, keys, mode)}
            elif op == "unsubscribe":
                keys = normalize_keys(request.get("keys", []))
                reply = {"ok": True, "keys": self.interest.remove(wants, keys)}
            elif op == "subscriptions":
                reply = {"ok": True, "subscriptions": dict(wants)}
            else:
                raise ValueError(f"unknown request {op!r}")
        except (ValueError, FastfeedError) as exc:  # SubscriptionLimitError is a ValueError
            reply = _error_reply(exc)
        except Exception as exc:  # a bug: the reader gets an answer, the hub goes on
            log.exception("a control request failed")
            reply = {"ok": False, "error": "FastfeedError", "message": f"hub error: {exc}"}
        reply["id"] = request_id
        return reply


class ControlClient:
    """A reader's side: one blocking connection, one request at a time (any thread)."""

    def __init__(self, name: str, path: str, timeout: float = 10.0) -> None:
        self.name = name
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise
        self._file = self._sock.makefile("rb")
        self._lock = threading.Lock()
        self._next_id = 0

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            message = {"id": self._next_id, "op": op, **fields}
            try:
                self._sock.sendall(json.dumps(message).encode() + b"\n")
                line = self._file.readline(MAX_LINE)
            except OSError as exc:
                raise HubGoneError(self.name, f"control channel failed: {exc}") from None
            if not line:
                raise HubGoneError(self.name, "the hub closed the control channel")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            _raise_reply(reply)
        return reply

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sock.close()
