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
