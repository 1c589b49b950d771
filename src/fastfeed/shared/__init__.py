"""One connection, many processes: the store in named shared memory, readers in other processes.

``MarketFeed(..., share="NAME")`` is the hub: it writes the snapshot rows, the ring, the key
table, the market status and its counters into the segment /dev/shm/NAME and answers readers'
subscription requests on the Unix socket beside it. ``attach("NAME")`` gives any local process a
read-only :class:`SharedFeed` over the same memory, with its own cursors.
"""
from fastfeed.shared.feed import SharedFeed, SharedRingReader, attach

__all__ = ["SharedFeed", "SharedRingReader", "attach"]
