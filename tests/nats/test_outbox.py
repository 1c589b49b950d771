"""The bridge's outbox: an update replaced before it was taken goes out from the spill, older
first; only a full spill drops, and counts it. Checked against protobuf's parser of the HPUBs."""
from __future__ import annotations

import re

from fastfeed import FeedDecoder
from fastfeed.nats._outbox import Outbox
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

HPUB = re.compile(rb"HPUB (\S+) (\d+) (\d+)\r\n")


def frame(ltps: dict[str, float], ts: int = 1700000000000) -> bytes:
    resp = pb.FeedResponse(type=pb.live_feed, currentTs=ts)
    for key, ltp in ltps.items():
        resp.feeds[key].ltpc.ltp = ltp
    return resp.SerializeToString()


def messages(data: bytes | None) -> list[tuple[str, int, float]]:
    """(subject, Fastfeed-Seq, ltp) of every HPUB in `data`, in order."""
    out: list[tuple[str, int, float]] = []
    at = 0
    while data is not None and at < len(data):
        m = HPUB.match(data, at)
        assert m is not None, data[at:at + 80]
        hlen, total = int(m[2]), int(m[3])
        body = data[m.end():m.end() + total]
        headers = dict(line.split(b": ", 1) for line in body[:hlen].split(b"\r\n")[1:] if line)
        resp = pb.FeedResponse.FromString(body[hlen:])
        (feed,) = resp.feeds.values()
        out.append((m[1].decode(), int(headers[b"Fastfeed-Seq"]), feed.ltpc.ltp))
        at = m.end() + total + 2
    return out


def feed(d: FeedDecoder, ob: Outbox, payload: bytes) -> None:
    n = d.decode(payload)
    assert ob.capture(d, n) == n


def test_replaced_before_taken_is_sent_from_the_spill_older_first() -> None:
    d, ob = FeedDecoder(16), Outbox("up")
    feed(d, ob, frame({"NSE_EQ|A": 1.0, "NSE_EQ|B": 2.0}))
    feed(d, ob, frame({"NSE_EQ|A": 1.5}))          # A again, before any take
    feed(d, ob, frame({"NSE_EQ|A": 1.75, "NSE_EQ|B": 2.5}))
    assert ob.pending == 5 and ob.dropped == 0
    got = messages(ob.take())
    assert ob.pending == 0 and ob.sent == 5 and ob.dropped == 0
    for key in ("A", "B"):
        mine = [(seq, ltp) for subject, seq, ltp in got if subject.split(".")[2] == f"NSE_EQ%7C{key}"]
        assert [ltp for _, ltp in mine] == ({"A": [1.0, 1.5, 1.75], "B": [2.0, 2.5]}[key])
        assert [seq for seq, _ in mine] == sorted(seq for seq, _ in mine)
    assert all(subject.startswith("up.live.") for subject, _, _ in got)
    # The stream's side still gets only the newest of each subject.
    stored = messages(ob.take_state())
    assert sorted(ltp for _, _, ltp in stored) == [1.75, 2.5] and ob.conflated == 3


def test_a_full_spill_drops_counts_and_keeps_the_newest() -> None:
    d, ob = FeedDecoder(16), Outbox("up", capacity=4096)
    for i in range(200):
        feed(d, ob, frame({"NSE_EQ|A": float(i)}))
        assert ob.updates == ob.sent + ob.dropped + ob.pending
    assert ob.dropped > 0
    got = []
    while (data := ob.take()) is not None:
        got += messages(data)
    assert ob.pending == 0 and ob.updates == ob.sent + ob.dropped == 200
    ltps = [ltp for _, _, ltp in got]
    assert len(ltps) == 200 - ob.dropped
    assert ltps == sorted(ltps) and ltps[-1] == 199.0
    # Nothing held back once taken: later updates go out as they come.
    feed(d, ob, frame({"NSE_EQ|A": 500.0}))
    assert [ltp for _, _, ltp in messages(ob.take())] == [500.0]
