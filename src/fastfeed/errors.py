"""The exceptions fastfeed raises."""


class FastfeedError(Exception):
    """Base class of every error fastfeed raises on purpose."""


class DecodeError(FastfeedError, ValueError):
    """A frame that protobuf itself would reject. The decoder's state is left as it was."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"malformed frame at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class InstrumentLimitError(FastfeedError):
    """An instrument key that got no row: all ``max_instruments`` rows were taken. Its updates
    are dropped; every other instrument in the frame was applied. A feed reports each such key
    once, as an ``error`` event; ``FeedDecoder.take_rejected()`` lists them."""

    def __init__(self, max_instruments: int, key: str) -> None:
        super().__init__(
            f"instrument {key!r} dropped: all {max_instruments} rows (max_instruments) are taken"
        )
        self.max_instruments = max_instruments
        self.key = key


class SeqlockTimeoutError(FastfeedError, TimeoutError):
    """A snapshot row stayed mid-write (its ``seq`` odd) for longer than a live writer ever takes:
    the writer stopped inside it, or the memory was overwritten. Raised instead of spinning."""

    def __init__(self, row: int, seconds: float) -> None:
        super().__init__(f"snapshot row {row} stayed mid-write for over {seconds:g} s")
        self.row = row


class SubscriptionLimitError(FastfeedError, ValueError):
    """A subscription change would go over one of Upstox's caps (which the server enforces by
    silently dropping keys) or over the decoder's ``max_instruments``. Nothing was changed."""

    def __init__(self, cap: str, limit: int, requested: int, detail: str = "") -> None:
        message = f"subscription over the {cap} cap: {requested} > {limit}"
        super().__init__(message + (f" ({detail})" if detail else "")
                         + "; nothing was changed: the subscriptions are as they were")
        self.cap = cap
        self.limit = limit
        self.requested = requested


class AuthenticationError(FastfeedError):
    """The server refused the access token (401) or the permission / redirect code (403).
    Reconnecting stops: a new token is needed."""

    def __init__(self, status: int, message: str = "") -> None:
        reason = {401: "invalid or expired access token", 403: "forbidden"}.get(status, "refused")
        super().__init__(f"HTTP {status}: {reason}" + (f": {message}" if message else ""))
        self.status = status


class FeedConnectionError(FastfeedError, ConnectionError):
    """A connection attempt failed (network, TLS, handshake, an HTTP status other than 401/403, or
    any exception raised in the attempt, the token provider's included). The feed tries again;
    ``__cause__`` is what the attempt met, ``status`` the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ReconnectStoppedError(FastfeedError):
    """The feed gave up: its reconnect policy ran out of attempts, or reconnecting is disabled.
    ``__cause__`` is the last attempt's error, which the message quotes too."""


class PermanentConnectionError(FeedConnectionError, ReconnectStoppedError):
    """A connection attempt failed in a way that retrying cannot cure, so the feed stops at once:
    a 4xx answer other than 401/403/408/429 at the handshake or authorize call, a certificate that
    fails verification, a URL that is not a WebSocket endpoint, or Upstox's retired v2 market feed.
    The message says what to change."""


class FeedClosedError(ReconnectStoppedError, RuntimeError):
    """The feed is not running: ``close()`` or ``stop()`` ended it, or it was never started, so
    what was asked of it (``wait_for``) can never come."""


class PortfolioDecodeError(FastfeedError, ValueError):
    """A Portfolio Stream Feed frame that is not a valid update.

    `kind` is `json` (not JSON), `update_type` (missing or unknown), `missing` (a required field
    absent) or `type` (a value of the wrong type); `reason` is the decoder's message and `text` the
    frame, both scrubbed of anything that looks like a token, the frame cut to 2,000 characters.
    """

    def __init__(self, kind: str, reason: str, text: str) -> None:
        super().__init__(f"bad portfolio update ({kind}): {reason}; frame: {text}")
        self.kind = kind
        self.reason = reason
        self.text = text


class CaptureError(FastfeedError, ValueError):
    """A file that is not a fastfeed capture (or not the kind asked for), or pyarrow is missing."""


class HubGoneError(FastfeedError, ConnectionError):
    """The hub behind a shared feed stopped, died, or was replaced by a new one (`restarted`).
    The reader's view is frozen at the hub's last write: attach again to follow a new hub."""

    def __init__(self, name: str, reason: str, restarted: bool = False) -> None:
        super().__init__(f"shared feed {name!r}: {reason}")
        self.name = name
        self.restarted = restarted


class SegmentLayoutError(FastfeedError, ValueError):
    """A shared-memory segment that is not a fastfeed store this version can read."""
