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
    def __init__(self, decoder: FeedDecoder, latency_samples: int = ...) -> None: ...
    def reset(self) -> None: ...
    def watch(self, sid: int, caught_up: bool) -> None: ...
    def take_applied(self) -> int: ...
    def latencies(self) -> npt.NDArray[np.int64]: ...
    def scan(self, data: bytes) -> list[bytes] | None: ...
