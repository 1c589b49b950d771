from typing import Any

import numpy.typing as npt

from fastfeed._store import RingReader, Store
from fastfeed.quote import Quote

_Buffer = bytes | bytearray | memoryview

class FeedDecoder:
    store: Store
    frames: int
    bytes: int
    updates: int
    errors: int
    initial_frames: int
    live_frames: int
    market_info_frames: int
    other_frames: int
    rejected_keys: int
    rejected_updates: int
    market_status: dict[str, str | int]
    cas_market_status: dict[str, tuple[str, int]]
    pre_open_status: dict[str, tuple[str, int]]
    def __init__(self, max_instruments: int = 4096, ring_capacity: int = 65536,
                 store: Store | None = None) -> None: ...
    def decode(self, payload: _Buffer, recv_ns: int | None = None) -> int: ...
    def take_rejected(self) -> list[str]: ...
    @property
    def scratch_bytes(self) -> int: ...
    def quote(self, key: str | bytes) -> Quote | None: ...
    def reader(self, from_start: bool = False) -> RingReader: ...
    @property
    def snapshot(self) -> npt.NDArray[Any]: ...
    @property
    def ring(self) -> npt.NDArray[Any]: ...
    def stats(self) -> dict[str, int]: ...
    def touch(self) -> None: ...


