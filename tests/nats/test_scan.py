"""NatsFeed's receive scanner: NATS protocol bytes in any split, its subscription's messages
decoded, every other protocol unit handed on whole and in order."""
from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from fastfeed import FeedDecoder
from fastfeed.nats._scan import MsgScanner
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

SID = 7


def frame(key: str, ltp: float) -> bytes:
    resp = pb.FeedResponse(type=pb.live_feed, currentTs=1700000000000)
    resp.feeds[key].ltpc.ltp = ltp
    return resp.SerializeToString()


def hmsg(sid: int, payload: bytes, dseq: int, pending: int, recv_ns: int = 1_700_000_000_000_000_000) -> bytes:
    hdr = b"NATS/1.0\r\nFastfeed-Recv-Ns: %d\r\n\r\n" % recv_ns
    reply = b"$JS.ACK.S.C.1.%d.%d.1700000000000000000.%d" % (dseq + 10, dseq, pending)
    return b"HMSG up.x %d %s %d %d\r\n%s%s\r\n" % (sid, reply, len(hdr), len(hdr) + len(payload),
                                                    hdr, payload)


_HB = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 2\r\n\r\n"
HEARTBEAT = b"HMSG _INBOX.x %d %d %d\r\n%s\r\n" % (SID, len(_HB), len(_HB), _HB)
STREAM = [
    b"INFO {\"server_id\":\"x\"}\r\n",
    hmsg(SID, frame("NSE_EQ|A", 10.5), 1, 2),
    b"PING\r\n",
    b"MSG other.subject 3 5\r\nhello\r\n",
    b"MSG empty 3 0\r\n\r\n",
    hmsg(SID, frame("NSE_INDEX|Nifty 50", 22.25), 2, 1),
    HEARTBEAT,
    b"+OK\r\n",
    hmsg(SID, frame("NSE_EQ|A", 11.0), 3, 0),
    b"-ERR 'Slow Consumer'\r\n",
]
OTHERS = [u for u in STREAM if f" {SID} ".encode() not in u.split(b"\r\n")[0]]


def run_chunks(chunks: list[bytes]) -> tuple[MsgScanner, FeedDecoder, list[bytes]]:
    d = FeedDecoder(16)
    s = MsgScanner(d)
    s.watch(SID, False)
    out: list[bytes] = []
    for c in chunks:
        out.extend(s.scan(c) or [])
    return s, d, out


def test_one_chunk():
    s, d, out = run_chunks([b"".join(STREAM)])
    assert out == OTHERS
    assert d.quote("NSE_EQ|A").ltp == 11.0 and d.quote("NSE_INDEX|Nifty 50").ltp == 22.25
    assert d.quote("NSE_EQ|A").recv_ns == 1_700_000_000_000_000_000
    assert (s.messages, s.heartbeats, s.caught_up, s.gap, s.last_sseq) == (3, 1, True, False, 13)
    assert s.take_applied() == 3 and s.take_applied() == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(b"".join(STREAM))), max_size=12))
def test_every_split_gives_the_same_result(cuts):
    data = b"".join(STREAM)
    points = sorted(set(cuts))
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    s, d, out = run_chunks(chunks)
    assert b"".join(out) == b"".join(OTHERS)
    assert d.quote("NSE_EQ|A").ltp == 11.0 and s.messages == 3


def test_a_skipped_sequence_is_a_gap_and_garbage_is_counted_not_applied():
    s, d, out = run_chunks([hmsg(SID, frame("NSE_EQ|A", 1.0), 1, 5), hmsg(SID, frame("NSE_EQ|A", 2.0), 3, 4),
                            hmsg(SID, b"\x12\x05ab", 4, 3)])
    assert s.gap and not s.caught_up
    assert s.decode_errors == 1 and d.quote("NSE_EQ|A").ltp == 2.0 and d.errors == 1


def test_malformed_control_lines_are_handed_on_for_nats_py_to_refuse():
    bad = [b"MSG a b c d e f g\r\n", b"HMSG x 7 zz 9\r\n", b"MSG x 7 99999999999999999999\r\n"]
    s, d, out = run_chunks([b"".join(bad)])
    assert out == bad and s.messages == 0


def test_a_long_line_without_an_end_is_handed_on():
    junk = bytes(random.Random(1).randrange(65, 90) for _ in range(70_000))
    _, _, out = run_chunks([junk])
    assert out and b"".join(out) == junk[:len(b"".join(out))]
