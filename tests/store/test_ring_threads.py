"""Ring reads from another thread while the decoder writes (issue 8, item 1)."""
import struct
import threading
import time

import numpy as np

from fastfeed import FeedDecoder
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

FRAMES = 1_000_000
CAPACITY = 65536
MARK = 1234.5  # the template frame's ltp, overwritten with each frame's number


def ltp_frame() -> tuple[bytearray, int]:
    """A live one-instrument LTPC frame and the offset of its ltp's 8 bytes."""
    r = pb.FeedResponse(type=pb.live_feed, currentTs=1)
    r.feeds["NSE_EQ|X"].ltpc.ltp = MARK
    payload = r.SerializeToString()
    mark = struct.pack("<d", MARK)
    assert payload.count(mark) == 1
    return bytearray(payload), payload.index(mark)


def test_reader_thread_gets_exactly_the_updates_written():
    dec = FeedDecoder(max_instruments=1, ring_capacity=CAPACITY)
    reader = dec.reader()
    buf, offset = ltp_frame()
    done = threading.Event()
    failures: list[str] = []
    received = 0

    def write() -> None:
        try:
            for n in range(1, FRAMES + 1):
                struct.pack_into("<d", buf, offset, float(n))
                dec.decode(buf)
        finally:
            done.set()

    def check(recs: np.ndarray, missed_now: int, expected_first: int) -> None:
        seq = recs["seq"].astype(np.int64)
        if seq[0] != expected_first + missed_now:
            failures.append(f"batch starts at {seq[0]}, expected {expected_first + missed_now}")
        if np.any(np.diff(seq) != 1):
            failures.append("a batch skips")
        if np.any(recs["ltp"] != seq):
            failures.append(f"{int(np.sum(recs['ltp'] != seq))} records are not their seq's update")

    writer = threading.Thread(target=write)
    writer.start()
    next_seq = 1
    batches = 0
    while not failures:
        batches += 1
        if batches % 2:
            # Every other read lags more than the ring holds, so that the copy overlaps the
            # slots the writer is overwriting (the reader's wait lets go of the GIL).
            while not done.is_set() and reader.pending < CAPACITY + 4096:
                time.sleep(0.0005)
        finished = done.is_set()
        recs, missed_now = reader.read()
        if len(recs):
            check(recs, missed_now, next_seq)
            next_seq = int(recs["seq"][-1]) + 1
        else:
            next_seq += missed_now
        received += len(recs)
        if finished and reader.pending == 0:
            break
    writer.join()
    assert not failures, failures[:3]
    assert reader.missed > 0  # the lagging reads did overlap the writer
    assert dec.store.updates_written == FRAMES
    assert received + reader.missed == FRAMES
