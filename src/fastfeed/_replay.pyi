from typing import Any, Callable

from fastfeed._decode import FeedDecoder

DONE: int
RECORD: int
FULL: int
EARLY: int

def feed_frames(decoder: FeedDecoder, recv_ns: Any, kind: Any, offsets: Any, data: Any, start: int,
                stop: int, max_updates: int = -1, on_update: Callable[[Any], Any] | None = None,
                speed: float = 0.0, origin_rec_ns: int = 0,
                origin_wall_ns: int = 0) -> tuple[int, int, int, int, int]: ...
