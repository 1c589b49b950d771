"""The decoder tries, for each entry, the row found at the same position in the last frame
before it hashes the key: whatever the order of keys, each update lands on its own row."""
import random

from fastfeed import FeedDecoder
from fastfeed.proto import fastfeed_market_v3_pb2 as pb


def ltp_frame(pairs) -> bytes:
    # Entries written by hand, in the given order (protobuf would pick its own map order).
    out = b""
    for key, ltp in pairs:
        r = pb.FeedResponse()
        r.feeds[key].ltpc.ltp = ltp
        out += r.SerializeToString()
    return out


def test_updates_land_on_their_rows_whatever_the_order():
    keys = [f"NSE_FO|{40000 + i}" for i in range(50)] + ["NSE_FO|4000", "NSE_FO|400000", "B|1"]
    dec = FeedDecoder(64, 1024)
    rnd = random.Random(7)
    expected = {}
    for n in range(40):
        if n % 3 == 0:
            rnd.shuffle(keys)       # every third frame in a new order; same order otherwise
        chosen = keys[: rnd.randint(1, len(keys))]
        pairs = [(k, float(n * 1000 + i)) for i, k in enumerate(chosen)]
        assert dec.decode(ltp_frame(pairs)) == len(pairs)
        expected.update(pairs)
        for key, ltp in expected.items():
            assert dec.quote(key).ltp == ltp, (n, key)
    assert len(dec.store) == len(keys)


def test_a_key_of_the_same_length_differing_in_one_byte_is_not_taken_for_the_predicted_one():
    # The compare reads keys by words, with an overlapping last word: a difference at any
    # position, for any length, must still send the update to its own row.
    for size in range(1, 34):
        base = "K" * size
        others = [base[:i] + "x" + base[i + 1:] for i in range(size)]
        dec = FeedDecoder(64, 1024)
        dec.decode(ltp_frame([(base, 1.0)]))
        for n, other in enumerate(others):
            # `other` comes at the position where `base` was last seen: predicted, and wrong.
            dec.decode(ltp_frame([(other, 2.0 + n)]))
            assert dec.quote(other).ltp == 2.0 + n, (size, n)
            assert dec.quote(base).ltp == 1.0, (size, n)
            dec.decode(ltp_frame([(base, 1.0)]))
        assert len(dec.store) == size + 1


def test_ltpc_records_carry_the_book_only_of_rows_that_have_one():
    # LTPC updates skip reading a never-written book; a row with depth still reports its top.
    dec = FeedDecoder(8, 64)
    reader = dec.reader()
    full = pb.FeedResponse(type=pb.live_feed)
    level = full.feeds["A|1"].fullFeed.marketFF.marketLevel.bidAskQuote.add()
    level.bidQ, level.bidP, level.askQ, level.askP = 10, 99.5, 20, 100.5
    dec.decode(full.SerializeToString())
    live = pb.FeedResponse(type=pb.live_feed).SerializeToString() + ltp_frame(
        [("A|1", 100.0), ("B|1", 7.0)])
    dec.decode(live)
    recs, missed = reader.read()
    assert missed == 0 and len(recs) == 3
    a, b = recs[1], recs[2]
    assert (a["ltp"], a["bid_q"], a["bid_p"], a["ask_q"], a["ask_p"]) == (100.0, 10, 99.5, 20, 100.5)
    assert (b["ltp"], b["bid_q"], b["bid_p"], b["ask_q"], b["ask_p"]) == (7.0, 0, 0.0, 0, 0.0)
    # A snapshot clears the book: the row's next LTPC records carry none.
    dec.decode(pb.FeedResponse(type=pb.initial_feed).SerializeToString()
               + ltp_frame([("A|1", 101.0)]))
    dec.decode(live)
    recs, _ = reader.read()
    assert [(r["ltp"], r["bid_q"], r["ask_p"]) for r in recs] == [
        (101.0, 0, 0.0), (100.0, 0, 0.0), (7.0, 0, 0.0)]
