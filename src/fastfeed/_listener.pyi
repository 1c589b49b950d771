from typing import Any, Callable, Protocol

from picows import WSFrame, WSListener, WSTransport

from fastfeed._callbacks import FrameCallbacks
from fastfeed._decode import FeedDecoder
from fastfeed._tap import FrameTap

class _Owner(Protocol):
    # With a decoder, the owner also gets _market_info(listener) and _instruments_rejected(listener).
    def _ws_connected(self, listener: FeedListener) -> None: ...
    def _frame_failed(self, listener: FeedListener, exc: BaseException, size: int) -> None: ...
    def _callback_failed(self, exc: BaseException) -> None: ...

class FeedListener(WSListener):
    callbacks: FrameCallbacks | None
    on_message: Callable[[bytes, bool], Any] | None
    wake: Callable[[], Any] | None
    resume: Callable[[], Any] | None
    keep_sample: bool
    sample: bytes | None
    decoder: FeedDecoder | None
    tap: FrameTap | None
    transport: WSTransport | None
    max_message_size: int
    frames: int
    bytes: int
    fragments: int
    decode_errors: int
    oversized: int
    unexpected: int
    pings_received: int
    pings_sent: int
    pongs_received: int
    market_info_seen: int
    rejected_seen: int
    connected_ns: int
    last_frame_ns: int
    pong_timeout: bool
    detached: bool
    close_code: int
    close_reason: str
    def __init__(self, decoder: FeedDecoder | None, owner: _Owner,
                 max_message_size: int = 16 * 1024 * 1024) -> None: ...
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def detach(self) -> None: ...
    def feed_frame(self, payload: bytes | bytearray | memoryview, text: bool = False) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def touch(self) -> None: ...
