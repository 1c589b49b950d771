"""The writing side of a shared feed: what ``MarketFeed(share=NAME)`` holds.

The segment is laid out and published when the feed is built, so readers can attach at once;
the control socket listens while the feed runs; closing the feed marks the segment closed and
unlinks it and the socket. A hub killed outright leaves both behind: the next hub of that name
sees the writer's pid gone and replaces them.
"""
from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import Any

from fastfeed._shared import SharedDecoder, open_writer
from fastfeed.shared.control import ControlServer
from fastfeed.shared.segment import WriterSegment, socket_path

log = logging.getLogger(__name__)

STATE_INTERVAL = 0.2  # how often the feed's connection state is published to readers


def _release(decoder: SharedDecoder, segment: WriterSegment) -> None:
    decoder.close()
    segment.unlink()


class ShareHost:
    def __init__(self, name: str, max_instruments: int, ring_capacity: int) -> None:
        self.name = name
        self.segment = WriterSegment(name, max_instruments, ring_capacity)
        try:
            self.decoder: SharedDecoder = open_writer(self.segment.map, max_instruments,
                                                      ring_capacity, self.segment.generation,
                                                      os.getpid())
            self.segment.publish()
        except BaseException:
            self.segment.unlink()
            raise
        self.generation = self.segment.generation
        self.control: ControlServer | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._closed = False
        # A feed dropped without close() (or alive at exit) still takes its names away.
        self._finalizer = weakref.finalize(self, _release, self.decoder, self.segment)
        log.info("sharing the store as %s (generation %d)", self.segment.path, self.generation)

    @property
    def readers(self) -> int:
        """Readers connected to the control socket now."""
        return self.control.readers if self.control is not None else 0

    async def start(self, feed: Any) -> None:
        """Open the control socket on the feed's loop and publish the feed's connection state."""
        if self._closed:
            raise RuntimeError(f"shared feed {self.name!r} was closed; build a new MarketFeed")
        if self._publisher is None:
            self._publisher = asyncio.ensure_future(self._publish_state(feed))
        if self.control is None:
            self.control = ControlServer(feed, socket_path(self.name),
                                         {"pid": os.getpid(), "generation": self.generation})
            await self.control.start()

    async def _publish_state(self, feed: Any) -> None:
        # Polled, not hooked into the connection's steps: a few stores every STATE_INTERVAL.
        while True:
            self.decoder.set_connection(feed.connected, feed.reconnects, feed.gaps)
            await asyncio.sleep(STATE_INTERVAL)

    async def stop(self) -> None:
        """Close the socket, then the segment (see `close`)."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.cancel()
        control, self.control = self.control, None
        if control is not None:
            await control.stop()
        self.close()

    def close(self) -> None:
        """Mark the segment closed and unlink it: readers see the hub gone."""
        self._closed = True
        self._finalizer()

