"""Capture and replay: a feed's raw frames in an Arrow IPC file, replayed through the decoder.

    feed = MarketFeed(token, instruments=keys, mode="full", record="session.arrows")
    ...
    decoder = fastfeed.capture.replay("session.arrows")       # the snapshot at the end
    table = fastfeed.capture.to_arrow("session.arrows")       # every update, with its key

Needs pyarrow (``pip install 'fastfeed[capture]'``). Submodules load on first use, so that the
simulator can read captures (``capture.file``) without the client.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "frames": "file", "records": "file", "info": "file", "open_capture": "file",
    "Capture": "file", "KINDS": "file",
    "replay": "playback", "play": "playback", "to_arrow": "playback", "to_parquet": "playback",
    "ReplayCounts": "playback",
    "Recorder": "recorder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastfeed.capture' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fastfeed.capture.{module}"), name)


def __dir__() -> list[str]:
    return __all__
