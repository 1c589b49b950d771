"""How a feed connects: tokens kept out of sight, TLS, the reconnect policy, the REST authorize
call and the picows connect with its redirect, pings and timeouts."""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import ssl as ssl_module
import sys
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Union
from urllib.parse import urlsplit, urlunsplit

from fastfeed.errors import AuthenticationError, FeedConnectionError
from fastfeed.tokens import Scrubber, fingerprint

log = logging.getLogger(__name__)

TokenProvider = Callable[[], Union[str, Awaitable[str]]]
FATAL_STATUSES = (401, 403)


# -- tokens ---------------------------------------------------------------------------------------
class Secret:
    """Holds an access token; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("an access token must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({fingerprint(self._value)})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # a token must not leak through pickling into a recording
        raise TypeError("Secret cannot be pickled")


class ScrubbingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Handed to picows, which logs its whole upgrade request (Authorization header included) at
    a level below DEBUG: every message is formatted and scrubbed before it reaches a handler, and
    so are a traceback (``exc_info``) and a stack (``stack_info``), which go into the message."""

    def __init__(self, logger: logging.Logger, scrub: Scrubber) -> None:
        super().__init__(logger, {})
        self._scrub = scrub

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except Exception:
            text = f"{msg} {args!r}"
        kwargs.pop("extra", None)
        exc_info = kwargs.pop("exc_info", None)
        stack_info = kwargs.pop("stack_info", False)
        if exc_info:
            # Formatted here rather than by the handler, so that the traceback's text (an
            # exception message may quote a request) is scrubbed too.
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
            if exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip("\n")
        if stack_info:
            stack = traceback.format_stack(sys._getframe(1))
            text += "\nStack (most recent call last):\n" + "".join(stack).rstrip("\n")
        self.logger.log(level, "%s", self._scrub(text), **kwargs)


async def resolve_token(token: Secret | None, provider: TokenProvider | None) -> Secret:
    """The token for the next attempt: the provider's answer (plain or async) if there is one."""
    if provider is None:
        if token is None:
            raise AuthenticationError(401, "no access token given")
        return token
    value = provider()
    if inspect.isawaitable(value):
        value = await value
    if isinstance(value, Secret):
        return value
    try:
        return Secret(value)  # type: ignore[arg-type]
    except ValueError:
        raise AuthenticationError(401, "token_provider returned no token") from None


# -- TLS ------------------------------------------------------------------------------------------
def tls_context(ssl: ssl_module.SSLContext | bool | None) -> ssl_module.SSLContext:
    """The client context: a verifying default unless told otherwise, loudly."""
    if ssl is None or ssl is True:
        return ssl_module.create_default_context()
    if ssl is False:
        log.warning("TLS certificate and hostname verification is OFF (ssl=False): the feed and "
                    "the access token can be intercepted")
        ctx = ssl_module.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl_module.CERT_NONE
        return ctx
    if isinstance(ssl, ssl_module.SSLContext):
        if ssl.verify_mode == ssl_module.CERT_NONE:
            log.warning("the SSLContext given does not verify certificates: the feed and the access "
                        "token can be intercepted")
        return ssl
    raise TypeError("ssl must be an SSLContext, True (verify) or False (no verification)")


# -- reconnect policy -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconnectPolicy:
    """When to try again after a connection is lost or an attempt fails.

    Attempt n (1-based) waits ``min(max_delay, initial_delay * multiplier ** (n - 1))``, spread
    by ±``jitter`` (a fraction) so that many clients do not reconnect in step. ``max_attempts``
    None retries forever; the count restarts after every successful open.
    """

    enabled: bool = True
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and the multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")

    @classmethod
    def sdk_defaults(cls) -> "ReconnectPolicy":
        """The official SDK's: a fixed 1 s interval, 5 attempts."""
        return cls(initial_delay=1.0, max_delay=1.0, multiplier=1.0, jitter=0.0, max_attempts=5)

    @classmethod
    def disabled(cls) -> "ReconnectPolicy":
        return cls(enabled=False, max_attempts=0)

    def allows(self, attempt: int) -> bool:
        return self.enabled and (self.max_attempts is None or attempt <= self.max_attempts)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, attempt - 1))
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)


# -- authorize --------------------------------------------------------------------------------------
def authorize_url_for(feed_url: str) -> str:
    """``wss://host/path?q`` -> ``https://host/path/authorize?q`` (Upstox's REST twin of a feed)."""
    parts = urlsplit(feed_url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/authorize", parts.query, ""))


#: The most of an authorize answer read (its JSON is a few hundred bytes).
MAX_AUTHORIZE_BODY = 64 * 1024


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """The authorize call carries the token: a redirect is an error, never followed (urllib would
    send the Authorization header on to wherever it points)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        fp.close()
        raise FeedConnectionError(f"authorize answered HTTP {code} (a redirect): not followed, "
                                  "the access token goes to the authorize URL only", code)


def _read_capped(stream: Any) -> bytes:
    body: bytes = stream.read(MAX_AUTHORIZE_BODY + 1) or b""
    if len(body) > MAX_AUTHORIZE_BODY:
        raise FeedConnectionError(f"authorize answered more than {MAX_AUTHORIZE_BODY} bytes")
    return body


def _get_json(url: str, token: str, ctx: ssl_module.SSLContext | None, timeout: float) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",
                                               "Accept": "application/json"})
    handlers: list[Any] = [_RefuseRedirects()]
    if ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as response:
            return response.status, json.loads(_read_capped(response) or b"null")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(_read_capped(exc) or b"null")
        except (ValueError, FeedConnectionError, OSError):
            body = None
        finally:
            exc.close()
        return exc.code, body


async def authorize(feed_url: str, token: str, ctx: ssl_module.SSLContext | None,
                    timeout: float, scrub: Callable[[str], str]) -> str:
    """The one-time WebSocket URL from the feed's authorize endpoint."""
    url = authorize_url_for(feed_url)
    secure = url.startswith("https:")
    try:
        status, body = await asyncio.to_thread(_get_json, url, token, ctx if secure else None, timeout)
    except FeedConnectionError:
        raise
    except (OSError, ValueError) as exc:
        # Built fresh, not chained: urllib's exceptions may carry the request.
        raise FeedConnectionError(scrub(f"authorize failed: {type(exc).__name__}: {exc}")) from None
    if status in FATAL_STATUSES:
        raise AuthenticationError(status, _error_message(body, scrub))
    if status != 200 or not isinstance(body, dict):
        raise FeedConnectionError(f"authorize answered HTTP {status}", status)
    data = body.get("data") or {}
    uri = data.get("authorized_redirect_uri") or data.get("authorizedRedirectUri")
    if not isinstance(uri, str) or not uri:
        raise FeedConnectionError("authorize answered without data.authorized_redirect_uri", status)
    return uri


def _error_message(body: Any, scrub: Callable[[str], str]) -> str:
    try:
        errors = body["errors"]
        return scrub(str(errors[0].get("message") or ""))[:200]
    except (TypeError, KeyError, IndexError, AttributeError):
        return ""


# -- the WebSocket connect --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectOptions:
    """What every attempt uses. ``ping_interval``: the client pings after this much silence;
    ``ping_timeout``: no PONG within it and the connection is declared dead."""

    connect_timeout: float = 10.0
    ping_interval: float | None = 10.0
    ping_timeout: float = 5.0
    max_frame_size: int = 16 * 1024 * 1024
    max_redirects: int = 5
    # picows's read buffer starts here and doubles as needed; bigger reads mean fewer syscalls
    # and wake-ups per frame when the feed is busy.
    read_buffer_size: int = 256 * 1024


async def open_websocket(listener_factory: Callable[[], Any], url: str, token: str, *,
                         ctx: ssl_module.SSLContext | None, options: ConnectOptions,
                         logger: logging.LoggerAdapter,  # type: ignore[type-arg]
                         scrub: Callable[[str], str]) -> tuple[Any, Any]:
    """Connect, follow redirects (the header goes again each time), and return (transport, listener).

    Raises AuthenticationError for 401/403 and FeedConnectionError for everything else.
    """
    from picows import WSHandshakeError, ws_connect

    ping = options.ping_interval
    kwargs: dict[str, Any] = dict(
        extra_headers={"Authorization": f"Bearer {token}"},
        websocket_handshake_timeout=options.connect_timeout,
        logger_name=logger,
        enable_auto_ping=ping is not None,
        auto_ping_idle_timeout=ping or 10.0,
        auto_ping_reply_timeout=options.ping_timeout,  # <= ping_interval: FeedClient checks
        enable_auto_pong=False,  # the listener answers PINGs itself and counts them
        max_frame_size=options.max_frame_size,
        max_redirects=options.max_redirects,
        read_buffer_init_size=options.read_buffer_size,
        disconnect_on_exception=True,
    )
    if url.startswith("wss:"):
        kwargs["ssl_context"] = ctx
    try:
        transport, listener = await asyncio.wait_for(ws_connect(listener_factory, url, **kwargs),
                                                     options.connect_timeout)
    except WSHandshakeError as exc:
        status = exc.response.status if exc.response is not None else None
        if status in FATAL_STATUSES:
            message = ""
            if exc.raw_body:
                try:
                    message = _error_message(json.loads(exc.raw_body), scrub)
                except ValueError:
                    pass
            raise AuthenticationError(int(status), message) from None
        text = f"handshake failed: HTTP {int(status)}" if status is not None else "handshake failed"
        raise FeedConnectionError(scrub(f"{text}: {exc}")[:300], status) from None
    except asyncio.TimeoutError:
        raise FeedConnectionError(f"connect timed out after {options.connect_timeout} s") from None
    except ssl_module.SSLError as exc:
        raise FeedConnectionError(scrub(f"TLS failed: {exc}")) from None
    except OSError as exc:
        raise FeedConnectionError(scrub(f"connect failed: {type(exc).__name__}: {exc}")) from None
    if listener is None:
        # picows returns no listener when the peer closed before the upgrade completed.
        if not transport.is_disconnected:
            transport.disconnect(False)
        raise FeedConnectionError("connection closed during the handshake")
    return transport, listener
