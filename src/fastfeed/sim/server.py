"""The simulator's server: picows on 127.0.0.1, routing of Upstox's URLs, authorization with
redirects to one-time URLs, the authorize JSON endpoints, and the life of the sessions."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import ssl
import time
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from picows import (WSListener, WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener,
                    ws_create_server)

from fastfeed.schema import CAPS

from .auth import MARKET, PORTFOLIO, CodeBook, ConnectionCaps, Grant, TokenBook, bearer_token
from .connection import Session
from .counters import Counters
from .faults import Faults
from .frames import PHASES
from .market import MarketSession
from .portfolio import UPDATE_TYPES, PortfolioSession, parse_update_types
from .prices import Market, universe
from .redact import picows_logger, redacting_logger
from .replay import CaptureSource
from .tls import LocalCA

log = redacting_logger(__name__)  # no token may reach a log, even by mistake

MARKET_PATH = "/v3/feed/market-data-feed"
PORTFOLIO_PATH = "/v2/feed/portfolio-stream-feed"
MARKET_FEEDS_PATH = "/market-data-feeder/v3/upstox-developer-api/feeds"
PORTFOLIO_FEEDS_PATH = "/portfolio-stream-feeder/v2/upstox-developer-api/feeds"
_FEEDS_PATH = {MARKET: MARKET_FEEDS_PATH, PORTFOLIO: PORTFOLIO_FEEDS_PATH}
_ERROR_CODES = {401: "UDAPI100050"}  # Upstox's "Invalid token used to access API"
# How long stop() waits for aborted connections to be reported lost, and for cancelled session
# tasks to end.
_SHUTDOWN_GRACE = 2.0

T = TypeVar("T")


class Simulator:
    """An Upstox-compatible market-data and portfolio feed server on a local port.

    Use `async with Simulator(...) as sim:` inside an event loop, or `SimulatorThread` from
    synchronous code. Everything that changes state can be called from any thread.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] | Mapping[str, bool] | None = None,
        plus_tokens: Iterable[str] = (),
        instruments: int = 100,
        rate: float = 20.0,
        instruments_per_frame: int = 5,
        seed: int = 0,
        tls: bool = False,
        redirect_status: int = 302,
        ping_interval: float | None = 10.0,
        ping_timeout: float = 5.0,
        faults: Faults | None = None,
        phase: str = "open",
        bench: bool = False,
        bench_frames: int | None = None,
        bench_pool_size: int = 64,
        bench_rate: float | None = None,
        portfolio_rate: float = 5.0,
        caps: Mapping[str, tuple[int, int]] | None = None,
        code_ttl: float = 60.0,
        max_frame_size: int = 1 << 20,
        replay: str | os.PathLike[str] | None = None,
        replay_speed: float | None = None,
    ) -> None:
        if redirect_status not in (301, 302, 303, 307, 308):
            raise ValueError("redirect_status must be a 3xx redirect")
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}")
        if ping_interval is not None and ping_interval <= 0:
            raise ValueError("ping_interval must be positive (or None to send no pings)")
        if bench_rate is not None and not bench_rate > 0:
            raise ValueError("bench_rate must be positive frames per second (or None: unpaced)")
        self.host = host
        self.requested_port = port
        self.tokens = TokenBook(tokens, plus_tokens)
        self.codes = CodeBook(ttl=code_ttl)
        self.conn_caps = ConnectionCaps()
        self.seed = seed
        self.market = Market(seed)
        self.instruments: list[str] = universe(instruments, seed)
        self.rate = rate
        self.instruments_per_frame = instruments_per_frame
        self.tls = tls
        self.redirect_status = redirect_status
        self.ping_interval = ping_interval
        # picows requires the reply timeout to be no longer than the idle period.
        self.ping_timeout = min(ping_timeout, ping_interval) if ping_interval else ping_timeout
        self.faults = faults or Faults()
        self.phase = phase
        self.bench = bench
        self.bench_frames = bench_frames
        self.bench_pool_size = bench_pool_size
        # Benchmark mode at a fixed pace (frames per second) rather than as fast as the socket
        # drains: a paced source leaves the clients the CPU it would otherwise take.
        self.bench_rate = bench_rate
        self.portfolio_rate = portfolio_rate
        self.caps: dict[str, tuple[int, int]] = dict(CAPS)
        if caps:
            self.caps.update(caps)
        self.max_frame_size = max_frame_size
        # A capture to serve instead of the generated market (see sim/replay.py).
        self.replay = CaptureSource(replay, replay_speed) if replay is not None else None
        self.counters = Counters()
        self.sessions: set[Session] = set()
        # Tasks of sessions already gone, cancelled but not yet ended: stop() waits for them too.
        self._ending: set[asyncio.Task[Any]] = set()
        self.refuse_until = 0.0
        self._ca = LocalCA() if tls else None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serial = 0
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> "Simulator":
        self._loop = asyncio.get_running_loop()
        ssl_ctx = self._ca.server_context() if self._ca else None
        self._server = await ws_create_server(
            self._route, self.host, self.requested_port,
            ssl=ssl_ctx,
            enable_auto_ping=self.ping_interval is not None,
            auto_ping_idle_timeout=self.ping_interval or 20.0,
            auto_ping_reply_timeout=self.ping_timeout,
            enable_auto_pong=False,  # sessions answer PINGs themselves, so the switch can refuse
            max_frame_size=self.max_frame_size,
            websocket_handshake_timeout=5,
            # picows logs the raw upgrade request, token included, below DEBUG: scrub it.
            logger_name=picows_logger("picows.fastfeed.sim"),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("simulator listening on %s", self.base_url)
        return self

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, close every session with 1001, abort those that do not go in time,
        and wait (bounded) for every session's tasks to end, so none is left pending when the
        loop closes."""
        if self._server is None:
            return
        self._server.close()
        sessions = list(self.sessions)
        for s in sessions:
            s.close(1001, reason="simulator shutting down")
        waits = {asyncio.ensure_future(s.transport.wait_disconnected())
                 for s in sessions if s.transport is not None}
        pending: set[asyncio.Future[Any]] = set()
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
        if pending or self.sessions:
            # Too slow to close, or accepted after the list above was taken: drop the socket.
            late = [s for s in self.sessions if s not in sessions]
            sessions.extend(late)
            for s in list(self.sessions):
                s.abort()
            pending |= {asyncio.ensure_future(s.transport.wait_disconnected())
                        for s in late if s.transport is not None}
            # An aborted connection is lost on a later turn of the loop: give it that turn.
            if pending:
                _, pending = await asyncio.wait(pending, timeout=_SHUTDOWN_GRACE)
        for p in pending:
            p.cancel()
        # on_ws_disconnected cancels a session's tasks, but a cancelled task only ends on a
        # later turn of the loop (a few, when it was inside wait_for); a session picows has not
        # yet reported lost still has them running. Cancel what is left and wait for all of it.
        tasks = list({t for s in sessions for t in s._tasks if not t.done()} | self._ending)
        for t in tasks:
            t.cancel()
        if tasks:
            done, left = await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE)
            await asyncio.gather(*done, return_exceptions=True)  # collect, so none is unretrieved
            if left:
                log.warning("%d session task(s) did not end within %.1f s of being cancelled",
                            len(left), _SHUTDOWN_GRACE)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> "Simulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- addresses --------------------------------------------------------------------------
    @property
    def _url_host(self) -> str:
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    @property
    def base_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self._url_host}:{self.port}"

    @property
    def http_base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._url_host}:{self.port}"

    @property
    def market_url(self) -> str:
        return self.base_url + MARKET_PATH

    @property
    def portfolio_url(self) -> str:
        return self.base_url + PORTFOLIO_PATH

    def portfolio_url_for(self, update_types: Iterable[str] = UPDATE_TYPES) -> str:
        return f"{self.portfolio_url}?update_types={quote(','.join(update_types), safe='')}"

    def authorize_url(self, feed: str = MARKET, update_types: Iterable[str] | None = None) -> str:
        """The http(s) URL of the authorize endpoint of `feed` ("market" or "portfolio")."""
        if feed == MARKET:
            return self.http_base_url + MARKET_PATH + "/authorize"
        url = self.http_base_url + PORTFOLIO_PATH + "/authorize"
        if update_types:
            url += f"?update_types={quote(','.join(update_types), safe='')}"
        return url

    # -- TLS --------------------------------------------------------------------------------
    @property
    def ca_pem(self) -> bytes | None:
        """The PEM of the throwaway CA that signed the server certificate (None without TLS)."""
        return self._ca.ca_pem if self._ca else None

    def write_ca(self, path: str) -> str:
        """Write the CA PEM to `path` (for clients configured by file) and return the path."""
        if self._ca is None:
            raise RuntimeError("the simulator was started without tls=True")
        return str(self._ca.write_ca(path))

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client SSLContext, verification on, that trusts this simulator's CA."""
        if self._ca is None:
            raise RuntimeError("the simulator was started without tls=True")
        return self._ca.client_context()

    # -- control (any thread) ---------------------------------------------------------------
    def expire_token(self, token: str) -> None:
        """Every later handshake with `token` gets 401; open connections are left alone."""
        self._on_loop(self.tokens.expire, token)

    def add_token(self, token: str, *, plus: bool = False) -> None:
        self._on_loop(lambda: self.tokens.add(token, plus=plus))

    def refuse_connections(self, seconds: float) -> None:
        """Answer every request with 503 for `seconds` from now."""
        self.refuse_until = time.monotonic() + seconds

    def close_all(self, code: int = 1000) -> None:
        self._on_loop(lambda: [s.close(code) for s in list(self.sessions)])

    def abort_all(self) -> None:
        self._on_loop(lambda: [s.abort("abort_all") for s in list(self.sessions)])

    @property
    def market_sessions(self) -> list[MarketSession]:
        return [s for s in list(self.sessions) if isinstance(s, MarketSession)]

    @property
    def portfolio_sessions(self) -> list[PortfolioSession]:
        return [s for s in list(self.sessions) if isinstance(s, PortfolioSession)]

    def _on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running():
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result(timeout=10)

    # -- HTTP side --------------------------------------------------------------------------
    def _answer(self, status: int, body: Any = None, **headers: str) -> WSUpgradeResponseWithListener:
        self.counters.http_status[status] += 1
        if status >= 400:
            message = body or HTTPStatus(status).phrase
            code = _ERROR_CODES.get(status, f"SIMULATOR_{status}")
            payload = {"status": "error", "errors": [{"errorCode": code, "message": message,
                                                      "propertyPath": None, "invalidValue": None}]}
            response = WSUpgradeResponse.create_error_response(
                status, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        elif status < 300:
            response = WSUpgradeResponse.create_ok_response(
                json.dumps(body).encode(), {"Content-Type": "application/json"})
        else:
            response = WSUpgradeResponse.create_redirect_response(status, headers["location"])
        return WSUpgradeResponseWithListener(response, None)

    def _route(self, request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
        target = urlsplit(request.path.decode("latin-1"))
        path = target.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(target.query).items()}
        if time.monotonic() < self.refuse_until:
            self.counters.connections_refused += 1
            self.counters.faults["refuse_connections"] += 1
            return self._answer(503, "Service temporarily unavailable (simulated)")
        token = bearer_token(request.headers.get("Authorization"))
        if path == MARKET_PATH:
            return self._entry(MARKET, token, (), authorize=False)
        if path == MARKET_PATH + "/authorize":
            return self._entry(MARKET, token, (), authorize=True)
        if path in (PORTFOLIO_PATH, PORTFOLIO_PATH + "/authorize"):
            types = parse_update_types(query.get("update_types"))
            return self._entry(PORTFOLIO, token, types, authorize=path != PORTFOLIO_PATH)
        if path == MARKET_FEEDS_PATH:
            return self._accept(MARKET, token, query, request)
        if path == PORTFOLIO_FEEDS_PATH:
            return self._accept(PORTFOLIO, token, query, request)
        return self._answer(404, "Not found")

    def _entry(self, kind: str, token: str | None, update_types: tuple[str, ...], *,
               authorize: bool) -> WSUpgradeResponseWithListener:
        grant = self.tokens.grant(token)
        if grant is None or token is None:
            log.info("%s %s: 401 for an invalid or expired token", kind, "authorize" if authorize else "upgrade")
            return self._answer(401, "Invalid token used to access API")
        code = self.codes.issue(kind, token, update_types)
        uri = f"{self.base_url}{_FEEDS_PATH[kind]}?requestId={code.request_id}&code={code.code}"
        if authorize:
            self.counters.authorize_calls += 1
            return self._answer(200, {"status": "success", "data": {
                "authorized_redirect_uri": uri, "authorizedRedirectUri": uri}})
        self.counters.redirects += 1
        return self._answer(self.redirect_status, location=uri)

    def _accept(self, kind: str, token: str | None, query: dict[str, str],
                request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
        headers = request.headers
        if ("websocket" not in headers.get("Upgrade", "").lower()
                or not headers.get("Sec-WebSocket-Key")
                or headers.get("Sec-WebSocket-Version") != "13"):
            return self._answer(400, "Expected a WebSocket upgrade")
        # The one-time code authorizes the request; a client that sends its token again (the
        # SDK does) must send a valid one, and the same one that got the code.
        if token is not None and self.tokens.grant(token) is None:
            return self._answer(401, "Invalid token used to access API")
        record = self.codes.redeem(query.get("code"), query.get("requestId"), kind)
        if record is None or (token is not None and token != record.token):
            log.info("%s: 403 for an unknown, used or expired code", kind)
            return self._answer(403, "Invalid or expired redirect code")
        grant = self.tokens.grant(record.token)
        if grant is None:
            return self._answer(401, "Invalid token used to access API")
        if not self.conn_caps.try_acquire(grant, kind):
            self.counters.connections_refused += 1
            log.info("%s: 429, %s already has %d connection(s)", kind, grant.fingerprint,
                     grant.max_connections)
            return self._answer(429, f"Connection limit of {grant.max_connections} reached")
        self.counters.http_status[101] += 1
        session = self._new_session(kind, grant, record.update_types)
        self.sessions.add(session)
        return session

    def _new_session(self, kind: str, grant: Grant, update_types: tuple[str, ...]) -> Session:
        serial = self._serial
        self._serial += 1
        if kind == MARKET:
            return MarketSession(self, grant, self.faults.copy(), serial)
        return PortfolioSession(self, grant, self.faults.copy(), serial, update_types)

    def _session_closed(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self.conn_caps.release(session.grant, session.kind)
        for task in session._tasks:
            if not task.done():
                self._ending.add(task)
                task.add_done_callback(self._ending.discard)
