"""A reader in another process sees exactly what the hub wrote: snapshot, keys, market status,
and the ring, where it gets every update or counts the ones it missed."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fastfeed import FastfeedError, HubGoneError, MarketFeed, attach
from fastfeed.sim import SimulatorThread
from fastfeed.shared.segment import segment_path, socket_path
from shared_helpers import Reader, hub_for, quiesce, share_name, wait


def test_reader_mirrors_the_hubs_snapshot_once_the_feed_is_quiet() -> None:
    name = share_name()
    with SimulatorThread(rate=100, instruments=40, instruments_per_frame=8) as sim:
        keys = sim.instruments[:30]
        with hub_for(sim, name, instruments=keys, max_instruments=64) as feed:
            with Reader(name) as reader:
                wait(lambda: feed.store.updates_written > 300, what="traffic")
                head = quiesce(sim, feed)
                snapshot, instruments, status, stats = reader.ok("snapshot", head)
                assert instruments == feed.instruments and len(instruments) == len(keys)
                assert snapshot == feed.snapshot.tobytes()  # every row, byte for byte
                assert status == feed.market_status and status
                assert stats["updates"] == feed.decoder.updates
                assert stats["frames"] == feed.decoder.frames
                assert stats["connected"] is True
            assert reader.process.exitcode == 0
            # The reader process has exited (Python's resource tracker included): the hub's
            # segment is still there under its name, for the next reader.
            assert os.path.exists(segment_path(name))
            with Reader(name) as again:
                assert again.ok("snapshot", head)[0] == feed.snapshot.tobytes()
    assert not os.path.exists(segment_path(name))
    assert not os.path.exists(socket_path(name))


def test_ring_reader_gets_every_update_or_counts_what_it_missed() -> None:
    name = share_name()
    written: list[np.ndarray] = []
    with SimulatorThread(rate=400, instruments=20, instruments_per_frame=5) as sim:
        feed = hub_for(sim, name, instruments=sim.instruments, ring_capacity=64)
        feed.on_update(lambda records: written.append(records[["seq", "row", "ltp"]].copy()))
        with feed, Reader(name) as reader:
            # Pauses long enough that the ring (64) laps the reader between some reads.
            reader.conn.send(("read_all", 0.05))
            wait(lambda: feed.store.updates_written > 2000, what="the ring lapped many times")
            head = quiesce(sim, feed)
            reader.conn.send(head)
            seqs, fields, missed, cursor = reader.result()
    assert cursor == head
    assert len(seqs) + missed == head  # the reader started at the first update
    assert missed > 0  # it did fall behind
    assert np.all(np.diff(seqs.astype(np.int64)) > 0)  # in order, never twice
    everything = np.concatenate(written)
    assert np.array_equal(everything["seq"], np.arange(1, head + 1))
    got = everything[seqs.astype(np.int64) - 1]
    assert np.array_equal(got["row"], fields[:, 0].astype(np.int32))
    assert np.array_equal(got["ltp"], fields[:, 1])  # each record is the update its seq names


def test_attach_waits_for_a_hub_started_later_and_times_out_without_one() -> None:
    name = share_name()
    with pytest.raises(TimeoutError, match="no hub shares"):
        attach(name, timeout=0.2)
    with SimulatorThread(rate=50) as sim:
        reader = Reader(name, wait=False)  # attach(timeout=60) starts before the hub exists
        try:
            key = sim.instruments[0]
            assert not reader.conn.poll(0.5)  # still waiting
            with hub_for(sim, name, instruments=[key]) as feed:
                attached = reader.reply()
                assert attached[0] == "ok" and attached[2] == os.getpid()
                assert reader.ok("wait_for", key, 30)[0] == key
                for busy in (False, True):
                    (seqs,) = reader.ok("updates", 20, busy)
                    assert len(seqs) >= 20 and np.all(np.diff(seqs.astype(np.int64)) == 1)
                # Attached before the hub's control socket opened, it connected on a later read.
                assert feed.stats()["readers"] == 1
        finally:
            reader.close()


def test_readers_cannot_write_the_hubs_memory() -> None:
    name = share_name()
    with SimulatorThread(rate=100) as sim:
        with hub_for(sim, name, instruments=sim.instruments[:5]) as feed:
            wait(lambda: feed.store.updates_written > 20, what="traffic")
            reader = Reader(name)
            try:
                assert reader.ok("write")[0] == "read-only"
                reader.process.join(30)  # the raw write faults the reader, and only the reader
                assert reader.process.exitcode == -11
            finally:
                reader.close()
            before = feed.store.updates_written
            wait(lambda: feed.store.updates_written > before + 20, what="the hub goes on")
            seqs = feed.ring["seq"][: feed.store.updates_written]
            assert seqs.min() > 0


def test_a_stopped_hub_is_a_clear_error_for_its_readers() -> None:
    name = share_name()
    with SimulatorThread(rate=50) as sim:
        feed = hub_for(sim, name, instruments=sim.instruments[:3])
        feed.start()
        shared = attach(name, timeout=10)
        try:
            assert shared.alive and shared.generation == 1
            wait(lambda: shared.quote(sim.instruments[0]) is not None, what="a quote")
        finally:
            feed.stop()
        assert not shared.alive
        with pytest.raises(HubGoneError, match="stopped"):
            shared.quote(sim.instruments[0])
        with pytest.raises(HubGoneError):
            shared.reader()
        # A new hub of the same name: the old view still says gone; a new attach follows it.
        with hub_for(sim, name, instruments=sim.instruments[:3]):
            with pytest.raises(HubGoneError):
                shared.snapshot
            again = attach(name, timeout=10)
            assert again.alive and again.writer_pid == os.getpid()
            again.close()
        shared.close()


def test_a_refused_hub_leaves_no_segment_behind() -> None:
    name = share_name()
    with pytest.raises(ValueError, match="instrument key"):
        MarketFeed("t", url="ws://127.0.0.1:1/", share=name, instruments=["no-separator"])
    assert not os.path.exists(segment_path(name))
    feed = MarketFeed("t", url="ws://127.0.0.1:1/", share=name)  # the name is free
    with pytest.raises(FastfeedError, match="already served"):
        MarketFeed("t", url="ws://127.0.0.1:1/", share=name)
    assert attach(name, timeout=5).alive
    del feed  # dropped without close(): the name goes with it
    assert not os.path.exists(segment_path(name))


def test_share_names_are_checked() -> None:
    for bad in ("", "../etc", "a/b", "x.sock", "-x", "n" * 81):
        with pytest.raises(ValueError, match="share name"):
            MarketFeed("t", url="ws://127.0.0.1:1/", share=bad)
        with pytest.raises(ValueError, match="share name"):
            attach(bad, timeout=0)
