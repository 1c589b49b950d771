"""How a feed connects: tokens kept out of sight, TLS, the reconnect policy, the REST authorize
call and the picows connect with its redirect, pings and timeouts."""
from __future__ import annotations

import asyncio
import http.client
import inspect
import ipaddress
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
from urllib.parse import urljoin, urlsplit, urlunsplit

from fastfeed.errors import AuthenticationError, FeedConnectionError, PermanentConnectionError
from fastfeed.tokens import Scrubber, fingerprint

log = logging.getLogger(__name__)

TokenProvider = Callable[[], Union[str, Awaitable[str]]]
FATAL_STATUSES = (401, 403)
#: 4xx answers that a later attempt may not get (a timeout, too many connections): retried.
RETRYABLE_4XX = (408, 429)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


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
    None retries forever.

    n counts failed attempts in a row. A connection that opened counts as one too, unless it was
    stable: it lived ``stable_after`` seconds (default 5 s) or delivered data (a quote, a
    portfolio update). So a server that accepts and closes at once is backed off ever longer
    until ``max_attempts`` ends it, while the loss of a working connection restarts the count at
    attempt 1. Errors that retrying cannot cure (401/403, 4xx, an untrusted certificate) stop the
    feed at once whatever the policy.
    """

    enabled: bool = True
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None
    stable_after: float = 5.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and the multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")
        if self.stable_after < 0:
            raise ValueError("stable_after must be >= 0")

    @classmethod
    def sdk_defaults(cls) -> "ReconnectPolicy":
        """The official SDK's: a fixed 1 s interval, 5 attempts, the count restarted by every
        open (``stable_after=0``), however short-lived."""
        return cls(initial_delay=1.0, max_delay=1.0, multiplier=1.0, jitter=0.0, max_attempts=5,
                   stable_after=0.0)

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


# -- what a failed attempt raises ---------------------------------------------------------------------
class _ScrubbedCause(Exception):
    """Stands in for a cause whose text quoted a token (its traceback would show it)."""


def attempt_error(message: str, cause: BaseException | None, scrub: Callable[[str], str], *,
                  status: int | None = None, permanent: bool = False) -> FeedConnectionError:
    """A FeedConnectionError (PermanentConnectionError if `permanent`) saying `message`, with
    `cause` as its ``__cause__``. A cause whose text (its chain's included) shows a token this
    feed used is replaced by a scrubbed stand-in, so that no traceback prints the token."""
    cls = PermanentConnectionError if permanent else FeedConnectionError
    err = cls(scrub(message)[:600], status)
    if cause is not None:
        text = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        if scrub(text) != text:
            cause = _ScrubbedCause(scrub(f"{type(cause).__name__}: {cause}"))
        err.__cause__ = cause
    return err


def _where(url: str) -> str:
    """A URL without its query: a one-time URL's code stays out of messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _status_error(status: int, url: str, scrub: Callable[[str], str], detail: str,
                  feed_path: str, hint: bool, cause: BaseException | None = None) -> FeedConnectionError:
    """The error of an HTTP answer that is not the one wanted (401/403 are handled apart)."""
    if status < 300:
        return attempt_error(f"{_where(url)} is not a WebSocket endpoint: it answered the upgrade "
                             f"request with HTTP {status}", cause, scrub, status=status, permanent=True)
    text = f"{detail}: HTTP {status} from {_where(url)}"
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        if status == 404 and hint and feed_path and feed_path not in urlsplit(url).path:
            text += f"; the feed is at the path {feed_path} (wss://api.upstox.com{feed_path})"
        return attempt_error(text, cause, scrub, status=status, permanent=True)
    return attempt_error(text, cause, scrub, status=status)


def _tls_error(exc: BaseException, url: str, scrub: Callable[[str], str]) -> FeedConnectionError:
    if isinstance(exc, ssl_module.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return attempt_error(f"TLS certificate verification failed for {_where(url)}: {exc}. Give "
                             "ssl= an SSLContext that trusts the server's CA", exc, scrub, permanent=True)
    return attempt_error(f"TLS failed with {_where(url)}: {exc}", exc, scrub)


def may_carry_token(origin: str, target: str) -> bool:
    """Whether a request to host `target` may carry the token meant for host `origin`.

    The same host, or a host under the same registered domain, taken simply as the last two
    labels: api.upstox.com may hand it on to wsfeeder-api.upstox.com, never to another domain.
    IP addresses and localhost match only themselves. (Public suffixes of two labels, such as
    co.in, are not special-cased: Upstox's hosts are under upstox.com.)
    """
    a, b = _host(origin), _host(target)
    if not a or not b:
        return False
    if a == b:
        return True
    if _is_ip_or_local(a) or _is_ip_or_local(b):
        return False
    la, lb = a.split("."), b.split(".")
    return len(la) >= 2 and len(lb) >= 2 and la[-2:] == lb[-2:] and all(la[-2:])


def _host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _is_ip_or_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
        except (ValueError, FeedConnectionError, OSError, http.client.HTTPException):
            body = None
        finally:
            exc.close()
        return exc.code, body


async def authorize(feed_url: str, token: str, ctx: ssl_module.SSLContext | None,
                    timeout: float, scrub: Callable[[str], str], feed_path: str = "") -> str:
    """The one-time WebSocket URL from the feed's authorize endpoint.

    Raises AuthenticationError (401/403), PermanentConnectionError (another 4xx but 408/429, an
    untrusted certificate) or FeedConnectionError (anything else: worth another attempt).
    """
    url = authorize_url_for(feed_url)
    secure = url.startswith("https:")
    try:
        status, body = await asyncio.to_thread(_get_json, url, token, ctx if secure else None, timeout)
    except FeedConnectionError:
        raise
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else exc
        if isinstance(reason, ssl_module.SSLError):
            raise _tls_error(reason, url, scrub)
        raise attempt_error(f"authorize failed: {type(reason).__name__}: {reason}", reason, scrub)
    except Exception as exc:  # http.client's BadStatusLine, IncompleteRead, bad JSON, resets, ...
        raise attempt_error(f"authorize failed: {type(exc).__name__}: {exc}", exc, scrub)
    if status in FATAL_STATUSES:
        raise AuthenticationError(status, _error_message(body, scrub))
    if status >= 300:
        raise _status_error(status, url, scrub, "authorize failed", feed_path, hint=True)
    if status != 200 or not isinstance(body, dict):
        raise FeedConnectionError(f"authorize answered HTTP {status} without a JSON object", status)
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
                         scrub: Callable[[str], str], origin: str | None = None,
                         feed_path: str = "") -> tuple[Any, Any]:
    """Connect, following up to ``options.max_redirects`` redirects, and return
    (transport, listener), all within ``options.connect_timeout``.

    The Authorization header goes to `origin`'s host (default: `url`'s) and to hosts under the
    same registered domain (``may_carry_token``), never to any other host a redirect names; a
    redirect from wss:// to ws:// is refused. `feed_path` is where the feed lives, for the hint
    a 404 elsewhere gets.

    Raises AuthenticationError for 401/403, PermanentConnectionError for what retrying cannot
    cure (another 4xx but 408/429, an untrusted certificate, an answer that is no WebSocket
    upgrade) and FeedConnectionError for everything else.
    """
    try:
        return await asyncio.wait_for(
            _follow(listener_factory, url, token, ctx, options, logger, scrub,
                    urlsplit(origin or url).hostname or "", feed_path),
            options.connect_timeout)
    except asyncio.TimeoutError as exc:
        raise attempt_error(f"connect to {_where(url)} timed out after {options.connect_timeout} s",
                            exc, scrub)


async def _follow(listener_factory: Callable[[], Any], url: str, token: str,
                  ctx: ssl_module.SSLContext | None, options: ConnectOptions,
                  logger: logging.LoggerAdapter,  # type: ignore[type-arg]
                  scrub: Callable[[str], str], origin: str, feed_path: str) -> tuple[Any, Any]:
    from picows import WSHandshakeError, ws_connect

    ping = options.ping_interval
    kwargs: dict[str, Any] = dict(
        websocket_handshake_timeout=options.connect_timeout,
        logger_name=logger,
        enable_auto_ping=ping is not None,
        auto_ping_idle_timeout=ping or 10.0,
        auto_ping_reply_timeout=options.ping_timeout,  # <= ping_interval: FeedClient checks
        enable_auto_pong=False,  # the listener answers PINGs itself and counts them
        max_frame_size=options.max_frame_size,
        max_redirects=0,  # followed here, where the header is decided per host
        read_buffer_init_size=options.read_buffer_size,
        disconnect_on_exception=True,
    )
    current = url
    for hop in range(options.max_redirects + 1):
        target = urlsplit(current)
        headers = {"Authorization": f"Bearer {token}"} if may_carry_token(origin, target.hostname or "") else {}
        try:
            transport, listener = await ws_connect(
                listener_factory, current, extra_headers=headers,
                ssl_context=ctx if current.startswith("wss:") else None, **kwargs)
        except WSHandshakeError as exc:
            response = exc.response
            if response is None:  # not HTTP at all
                raise attempt_error(f"handshake with {_where(current)} failed: {exc}", exc, scrub)
            status = int(response.status)
            if status in FATAL_STATUSES:
                raise AuthenticationError(status, _body_message(exc.raw_body, scrub)) from None
            if status in REDIRECT_STATUSES:
                current = _redirect(current, response.headers.get("Location"), status, scrub)
                log.info("%s redirected (HTTP %d) to %s", _where(url), status, _where(current))
                continue
            raise _status_error(status, current, scrub, "handshake failed", feed_path,
                                hint=hop == 0, cause=exc)
        except ssl_module.SSLError as exc:
            raise _tls_error(exc, current, scrub)
        except OSError as exc:
            raise attempt_error(f"connect to {_where(current)} failed: {type(exc).__name__}: {exc}",
                                exc, scrub)
        if listener is None:
            # picows returns no listener when the peer closed before the upgrade completed.
            if not transport.is_disconnected:
                transport.disconnect(False)
            raise FeedConnectionError(f"{_where(current)}: connection closed during the handshake")
        return transport, listener
    raise FeedConnectionError(f"{_where(url)}: more than {options.max_redirects} redirects, not followed")


def _redirect(current: str, location: str | None, status: int, scrub: Callable[[str], str]) -> str:
    if not location:
        raise FeedConnectionError(f"{_where(current)} answered HTTP {status} (a redirect) without "
                                  "a Location", status)
    target = urlsplit(urljoin(current, location))
    scheme = {"https": "wss", "http": "ws"}.get(target.scheme, target.scheme)
    nxt = urlunsplit((scheme, target.netloc, target.path, target.query, ""))
    if scheme not in ("ws", "wss"):
        raise FeedConnectionError(scrub(f"{_where(current)} redirected to a {scheme}: URL"), status)
    if current.startswith("wss:") and scheme != "wss":
        raise FeedConnectionError(f"{_where(current)} redirected to {_where(nxt)}: not followed, "
                                  "the feed and the token would travel unencrypted", status)
    return nxt


def _body_message(raw_body: bytes | None, scrub: Callable[[str], str]) -> str:
    if not raw_body:
        return ""
    try:
        return _error_message(json.loads(raw_body), scrub)
    except ValueError:
        return ""
