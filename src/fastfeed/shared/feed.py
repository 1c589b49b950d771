"""SharedFeed: a read-only view of a hub's store from another process (``fastfeed.attach``).

    feed = fastfeed.attach("desk", timeout=10)
    feed.subscribe(["NSE_EQ|INE002A01018"], "full")
    q = await feed.wait_for("NSE_EQ|INE002A01018")

The reading API is MarketFeed's: ``quote``, ``snapshot``, ``ring``, ``instruments``,
``market_status``, ``reader()``, ``updates()``, ``wait_for()``. Nothing is copied until you read:
the rows and the ring are the hub's own memory, mapped read-only (a write would fault, never
corrupt). Each reader keeps its own cursor in its own process. Once the hub stops, dies or is
replaced, every read raises :class:`HubGoneError`; ``alive`` says so without raising.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Any, AsyncIterator, Iterable

import numpy.typing as npt

from fastfeed._shared import STATE_CLOSED, SegmentView
from fastfeed.errors import HubGoneError
from fastfeed.market import UpdateBatch
from fastfeed.quote import Quote
from fastfeed.shared.control import ControlClient
from fastfeed.shared.segment import inode_of, map_reader, pid_alive, socket_path
from fastfeed.transport.subscriptions import check_mode, normalize_keys

log = logging.getLogger(__name__)


class SharedFeed:
    """One process's view of a shared store. Build it with :func:`attach`."""

    def __init__(self, name: str, view: SegmentView, inode: int, *, timeout: float = 10.0,
                 poll_interval: float = 0.001, busy_poll: bool = False) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, not {poll_interval}")
        self.name = name
        self.poll_interval = poll_interval
        self.busy_poll = busy_poll
        self._inode = inode
        self._view = view
        self._store = self._view.store
        self._timeout = timeout
        self._control: ControlClient | None = None
        # Why the hub is gone, once it is: (reason, restarted). Kept as plain values and raised
        # afresh each time, so that no traceback ties this feed into a reference cycle.
        self._gone: tuple[str, bool] | None = None
        self._try_control()

    # -- liveness -----------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The hub's generation: one more than that of the stale segment it replaced."""
        return self._view.generation

    @property
    def writer_pid(self) -> int:
        return self._view.writer_pid

    @property
    def alive(self) -> bool:
        """The hub that wrote this segment still runs and still owns the name."""
        return self._probe() is None

    @property
    def connected(self) -> bool:
        """The hub's upstream connection is open."""
        self._check()
        return self._view.connected

    def _probe(self) -> tuple[str, bool] | None:
        if self._gone is not None:
            return self._gone
        view = self._view
        gone = None
        if view.state == STATE_CLOSED:
            gone = ("the hub was stopped", False)
        else:
            inode = inode_of(self.name)
            if inode is not None and inode != self._inode:
                gone = ("a new hub serves this name; attach again", True)
            elif not pid_alive(view.writer_pid):
                gone = (f"the hub (pid {view.writer_pid}) died", False)
            elif inode is None:
                gone = ("the hub's segment was removed", False)
        self._gone = gone
        return gone

    def _check(self) -> None:
        # Every read: one look at the header's state; the pid and the name every 50 ms.
        if self._gone is None and not self._view.due():
            return
        gone = self._probe()
        if gone is not None:
            raise HubGoneError(self.name, *gone)
        if self._control is None:
            self._try_control()  # the hub's socket may have opened since: be counted, be ready

    # -- reading ------------------------------------------------------------------------------------
    def quote(self, key: str) -> Quote | None:
        """The latest Quote of `key` (None if the hub never received it)."""
        self._check()
        view, store = self._view, self._store
        view.sync()
        row = store.row(key)
        if row < 0 or row >= len(store):
            return None  # registered by a frame still being written
        return store.quote(key)

    @property
    def snapshot(self) -> npt.NDArray[Any]:
        """Zero-copy, read-only view of the hub's snapshot table (``ROW_DTYPE``)."""
        self._check()
        self._view.sync()
        return self._store.snapshot

    @property
    def ring(self) -> npt.NDArray[Any]:
        """Zero-copy, read-only view of the hub's update ring (``RECORD_DTYPE``)."""
        self._check()
        return self._store.ring

    @property
    def instruments(self) -> list[str]:
        self._check()
        self._view.sync()
        return self._store.instruments

    @property
    def market_status(self) -> dict[str, Any]:
        self._check()
        return dict(self._view.market_status())

    def stats(self) -> dict[str, Any]:
        """The hub's counters as it last published them."""
        self._check()
        return self._view.counters()

    def reader(self, from_start: bool = False) -> SharedRingReader:
        """A cursor over the ring in this process, as ``MarketFeed.store.reader()``."""
        self._check()
        self._view.sync()
        return SharedRingReader(self, from_start)

    # -- async --------------------------------------------------------------------------------------
    async def updates(self, limit: int | None = None, from_start: bool = False, *,
                      poll_interval: float | None = None,
                      busy_poll: bool | None = None) -> AsyncIterator[UpdateBatch]:
        """Batches of ring records as the hub writes them, read with this iterator's own cursor.

        Polls every `poll_interval` seconds (the feed's by default), or, with `busy_poll`, keeps
        the loop spinning (one core) for the lowest delay. Raises HubGoneError when the hub goes.
        """
        reader = self.reader(from_start)
        limit = self._store.ring_capacity if limit is None or limit <= 0 else limit
        pause = self._pause(poll_interval, busy_poll)
        while True:
            if reader.pending:
                records, missed = reader.read(limit)
                yield UpdateBatch(records, int(missed))
                continue
            await asyncio.sleep(pause)

    async def wait_for(self, key: str, timeout: float | None = None, *,
                       poll_interval: float | None = None, busy_poll: bool | None = None) -> Quote:
        """The quote of `key` once the hub has it (at once if it already has)."""
        pause = self._pause(poll_interval, busy_poll)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            quote = self.quote(key)
            if quote is not None and quote.updates > 0:
                return quote
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"no quote of {key!r} within {timeout} s")
            await asyncio.sleep(pause)

    def _pause(self, poll_interval: float | None, busy_poll: bool | None) -> float:
        if busy_poll if busy_poll is not None else self.busy_poll:
            return 0.0
        pause = self.poll_interval if poll_interval is None else poll_interval
        if pause <= 0:
            raise ValueError(f"poll_interval must be positive, not {pause}")
        return pause

    # -- subscriptions ------------------------------------------------------------------------------
    def subscribe(self, keys: str | Iterable[str], mode: str = "ltpc") -> list[str]:
        """Ask the hub for `keys` in `mode`. The hub checks Upstox's caps as MarketFeed does:
        SubscriptionLimitError (nothing changed) or the keys, once they are subscribed."""
        keys = normalize_keys(keys)
        mode = check_mode(mode)
        return list(self._channel().request("subscribe", keys=keys, mode=mode)["keys"])

    def unsubscribe(self, keys: str | Iterable[str]) -> list[str]:
        """Let go of `keys`; the hub drops each one only when no other reader wants it.
        Returns the keys this reader held."""
        keys = normalize_keys(keys)
        return list(self._channel().request("unsubscribe", keys=keys)["keys"])

    @property
    def subscriptions(self) -> dict[str, str]:
        """What this reader has asked the hub for, key to mode."""
        return dict(self._channel().request("subscriptions")["subscriptions"])

    def _channel(self) -> ControlClient:
        self._check()
        if self._control is None:
            deadline = time.monotonic() + self._timeout
            while not self._try_control():
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"the hub of {self.name!r} opened no control socket "
                                       f"within {self._timeout} s")
                time.sleep(0.01)
                self._check()
        assert self._control is not None
        return self._control

    def _try_control(self) -> bool:
        try:
            client = ControlClient(self.name, socket_path(self.name), self._timeout)
        except OSError:
            return False
        try:
            hello = client.request("hello")
        except Exception:
            client.close()
            return False
        if hello.get("generation") != self.generation or hello.get("pid") != self.writer_pid:
            client.close()  # the socket of another hub than the one whose segment we mapped
            return False
        self._control = client
        return True

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Let go of every subscription this reader asked for and of the control channel. The
        mapping goes when the last view of it (snapshot, ring, readers) is dropped."""
        control, self._control = self._control, None
        if control is not None:
            control.close()

    def __enter__(self) -> SharedFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "alive" if self._gone is None else "gone"
        return (f"<SharedFeed {self.name!r} generation={self.generation} pid={self.writer_pid} "
                f"{state} instruments={len(self._store)}>")


class SharedRingReader:
    """One consumer's cursor over a shared ring: ``read()``, ``pending``, ``missed`` as the
    decoder's RingReader (it is one, over the hub's memory)."""

    def __init__(self, feed: SharedFeed, from_start: bool) -> None:
        self._feed = feed
        self._view = feed._view
        self._store = feed._store
        self._reader = feed._store.reader(from_start)

    @property
    def pending(self) -> int:
        """Updates the hub has written since this reader's cursor."""
        self._feed._check()
        self._view.sync()
        return self._reader.pending

    @property
    def missed(self) -> int:
        return int(self._reader.missed)

    @property
    def cursor(self) -> int:
        return self._reader.cursor

    def read(self, limit: int = -1) -> tuple[npt.NDArray[Any], int]:
        """``(records, missed_now)`` as ``RingReader.read``."""
        self._feed._check()
        self._view.sync()
        # RingReader.read checks each record's seq after its copy, so the hub's overwriting a
        # slot mid-copy shows in `lost` and `missed` here as in one process.
        return self._reader.read(limit)


def attach(name: str, timeout: float | None = 10.0, *, poll_interval: float = 0.001,
           busy_poll: bool = False) -> SharedFeed:
    """Attach to the hub sharing `name`, waiting up to `timeout` seconds for it to appear
    (None: wait as long as it takes). TimeoutError if no hub serves it by then."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            mapping, inode = map_reader(name)
            view = SegmentView(mapping)  # SegmentLayoutError: not one this version can read
            if view.state != STATE_CLOSED and pid_alive(view.writer_pid):
                return SharedFeed(name, view, inode, timeout=timeout or 10.0,
                                  poll_interval=poll_interval, busy_poll=busy_poll)
            last = HubGoneError(name, "only a stale segment (its hub is gone)")
        except FileNotFoundError as exc:
            last = exc
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            last = exc
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"no hub shares {name!r} (waited {timeout} s): {last}")
        time.sleep(0.01)


__all__ = ["SharedFeed", "SharedRingReader", "attach"]
