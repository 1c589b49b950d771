import numpy as np
import numpy.typing as npt

from fastfeed._decode import FeedDecoder

class MsgScanner:
    sid: int
    next_dseq: int
    gap: bool
    caught_up: bool
    last_sseq: int
    messages: int
    heartbeats: int
    decode_errors: int
    applied: int
    last_activity_ns: int
    lat_n: int
    live_lo: int
    live_hi: int
    live_on: bool
    live_messages: int
    stale: int
    held_over: int
    held_count: int
    live_buffer: int
    def __init__(self, decoder: FeedDecoder, latency_samples: int = ..., *, prefix: str = "upstox",
                 live_buffer: int = ...) -> None: ...
    @property
    def held_bytes(self) -> int: ...
    def watch_live(self, lo: int, hi: int) -> None: ...
    def reset(self) -> None: ...
    def watch(self, sid: int, caught_up: bool) -> None: ...
    def take_applied(self) -> int: ...
    def latencies(self) -> npt.NDArray[np.int64]: ...
    def scan(self, data: bytes) -> list[bytes] | None: ...
