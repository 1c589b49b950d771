"""Serving a capture: each subscribing connection gets the recorded frames, from the first,
with only the entries of the keys it subscribed (re-encoded with the protobuf classes when some
are left out), paced as recorded (``speed``) or as fast as the socket drains (None)."""
from __future__ import annotations

import os
from typing import Iterator

from google.protobuf.message import DecodeError

from fastfeed.capture.file import frames, open_capture
from fastfeed.proto import fastfeed_market_v3_pb2 as pb


class CaptureSource:
    """A market capture to play. Checked when made: CaptureError if it is not one."""

    def __init__(self, path: str | os.PathLike[str], speed: float | None = None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive or None, not {speed}")
        self.path = os.fspath(path)
        self.speed = speed
        open_capture(self.path, feed="market")

    def frames(self) -> Iterator[tuple[int, bytes]]:
        return frames(self.path)


def keep_subscribed(payload: bytes, subscribed: set[str] | dict[str, str]) -> bytes | None:
    """`payload` with only the feeds of subscribed keys; None if none is left. Frames without
    feeds (market_info) and frames protobuf rejects (recorded faults) go as they are."""
    try:
        message = pb.FeedResponse.FromString(payload)
    except DecodeError:
        return payload
    keys = set(message.feeds)
    if not keys:
        return payload
    unwanted = [k for k in keys if k not in subscribed]
    if not unwanted:
        return payload
    if len(unwanted) == len(keys):
        return None
    for key in unwanted:
        del message.feeds[key]
    return message.SerializeToString()
